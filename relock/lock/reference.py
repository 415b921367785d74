"""Image references: ``[registry/]name[:tag][@sha256:digest]``, parsed once.

``split`` cuts text into its parts and names its repository the way the
engine does in ``RepoDigests`` (``debian:12`` is ``docker.io/library/debian``);
``parse`` does the same and refuses what a registry would (a tag or a
repository path of other characters, a digest that is not sha256). The lock's
grammar of an image reference is made of the same patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relock.errors import RegistryError

DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")

# The patterns of a reference's parts (the distribution spec's).
PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
DIGEST = r"sha256:[0-9a-f]{64}"
_REPO = re.compile(rf"{PATH_COMPONENT}(?:/{PATH_COMPONENT})*")
_TAG = re.compile(TAG)
_DIGEST = re.compile(DIGEST)


class ReferenceError_(RegistryError):
    """Text that is not an image reference a registry takes."""


# What names an image in a registry rather than in the engine.
REGISTRY_PREFIX = "oci://"


def is_registry_ref(text: str) -> bool:
    """Whether ``text`` names an image in a registry (``oci://HOST/REPO:TAG``)."""
    return text.startswith(REGISTRY_PREFIX)


def strip_prefix(text: str) -> str:
    """``HOST/REPO:TAG`` of ``oci://HOST/REPO:TAG`` (other text as it is)."""
    return text[len(REGISTRY_PREFIX):] if is_registry_ref(text) else text


@dataclass(frozen=True)
class Reference:
    """The parts of an image reference; ``tag`` and ``digest`` may be ""."""

    name: str
    tag: str = ""
    digest: str = ""

    @property
    def without_digest(self) -> str:
        """``name[:tag]``: the reference as written, less its digest."""
        return f"{self.name}:{self.tag}" if self.tag else self.name

    def pinned(self, digest: str) -> str:
        """``name[:tag]@digest``: this reference pinned to ``digest``."""
        return f"{self.without_digest}@{digest}"

    @property
    def host(self) -> str:
        """The registry: ``docker.io`` for a name without one (``debian``, ``me/app``)."""
        return self._where[0]

    @property
    def repo(self) -> str:
        """The repository path in its registry: ``debian`` -> ``library/debian``."""
        return self._where[1]

    @property
    def _where(self) -> tuple[str, str]:
        first, _, rest = self.name.partition("/")
        if not rest or ("." not in first and ":" not in first and first != "localhost"):
            domain, path = DOCKER_HUB, self.name
        else:
            domain, path = first, rest
        if domain in _HUB_ALIASES:
            domain = DOCKER_HUB
        if domain == DOCKER_HUB and "/" not in path:
            path = "library/" + path
        return domain, path

    @property
    def repository(self) -> str:
        """The full repository name: ``debian`` -> ``docker.io/library/debian``."""
        return f"{self.host}/{self.repo}"

    @property
    def ref(self) -> str:
        """The tag or digest to ask the registry for (the digest wins; no tag is ``latest``)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        """The reference spelled out: ``docker.io/library/debian:12@sha256:...``."""
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        """The repository as the engine keys its tags (``docker.io/library/debian`` ->
        ``debian``, ``docker.io/me/app`` -> ``me/app``); other registries' names whole."""
        full = self.repository
        for prefix in ("docker.io/library/", "docker.io/"):
            if full.startswith(prefix):
                return full[len(prefix):]
        return full


def split(ref: str) -> Reference:
    """Split ``ref`` into name, tag and digest (a ``:port`` is not a tag), unchecked:
    for text that may name an image some other way (an ID, a path)."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        tag = last.split(":", 1)[1]
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return Reference(name=name, tag=tag, digest=digest)


def parse(ref: str) -> Reference:
    """``split(ref)``, checked as a registry would: ``ReferenceError_`` if its digest is
    not sha256, its tag or its repository path are not of their characters."""
    r = split(ref)
    if r.digest and not _DIGEST.fullmatch(r.digest):
        raise ReferenceError_(f"{ref}: {r.digest!r:.80} is not a sha256 digest "
                              "(sha256:<64 hex>)")
    if "@" in ref and not r.digest:
        raise ReferenceError_(f"{ref}: nothing after '@' (a digest is sha256:<64 hex>)")
    if ":" in ref.partition("@")[0].rsplit("/", 1)[-1] and not _TAG.fullmatch(r.tag):
        raise ReferenceError_(f"{ref}: {r.tag!r} is not a valid tag")
    if not _REPO.fullmatch(r.repo):
        raise ReferenceError_(f"{ref}: {r.repo!r} is not a valid repository name")
    return r


def normalize_repo(ref: str) -> str:
    """The full repository name of a reference: ``debian:12`` -> ``docker.io/library/debian``."""
    return split(ref).repository
