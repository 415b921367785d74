"""Image references: ``[registry/]name[:tag][@sha256:digest]``, parsed once.

Not a validator of every rule a registry has: enough to split a reference
into its parts and to name its repository the way the engine does in
``RepoDigests`` (``debian:12`` is ``docker.io/library/debian``).
"""

from __future__ import annotations

from dataclasses import dataclass

_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")

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
    def repository(self) -> str:
        """The full repository name: ``debian`` -> ``docker.io/library/debian``."""
        first, _, rest = self.name.partition("/")
        if not rest or ("." not in first and ":" not in first and first != "localhost"):
            domain, path = "docker.io", self.name
        else:
            domain, path = first, rest
        if domain in _HUB_ALIASES:
            domain = "docker.io"
        if domain == "docker.io" and "/" not in path:
            path = "library/" + path
        return f"{domain}/{path}"

    @property
    def familiar(self) -> str:
        """The repository as the engine keys its tags (``docker.io/library/debian`` ->
        ``debian``, ``docker.io/me/app`` -> ``me/app``); other registries' names whole."""
        full = self.repository
        for prefix in ("docker.io/library/", "docker.io/"):
            if full.startswith(prefix):
                return full[len(prefix):]
        return full


def parse(ref: str) -> Reference:
    """Split ``ref`` into name, tag and digest (a ``:port`` is not a tag)."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        tag = last.split(":", 1)[1]
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return Reference(name=name, tag=tag, digest=digest)


def normalize_repo(ref: str) -> str:
    """The full repository name of a reference: ``debian:12`` -> ``docker.io/library/debian``."""
    return parse(ref).repository
