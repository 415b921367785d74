"""OCI 1.1 artifacts that refer to an image: pushed with a ``subject``, found again.

An artifact is an image manifest whose ``artifactType`` says what it holds
(``application/vnd.relock.lock.v1+toml`` for a lock), whose config is the
empty descriptor (``application/vnd.oci.empty.v1+json``, the two bytes
``{}``) and whose one layer is the artifact's bytes; its ``subject`` is the
descriptor of the image's manifest (or index). A registry with the
referrers API (``GET /v2/<name>/referrers/<digest>``) lists such artifacts
itself; for one without it (it answers that request with 404, as
docker-registry 2.8 does) the pusher keeps the list in an image index under
the tag ``sha256-<hex>`` of the image's digest: the referrers tag schema.

Everything read back is checked: the list is bounded (``Registry.referrers``
and ``relock.bounds.MANIFEST``), the artifact's manifest is read by its digest (its
bytes hashed), its ``subject`` must be the image asked about, and its blob
is read up to a limit and refused if its bytes do not have its digest.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from relock.errors import RegistryError
from relock.upstream.registry import (
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    ManifestUnknown,
    VerifiedStream,
    check_digest,
    sha256_digest,
)

EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"
LOCK_TYPE = "application/vnd.relock.lock.v1+toml"
CYCLONEDX_TYPE = "application/vnd.cyclonedx+json"
SPDX_TYPE = "application/spdx+json"
TITLE = "org.opencontainers.image.title"


class ArtifactRegistry(Protocol):
    """What pushing and finding artifacts needs of a registry
    (``relock.upstream.registry.Registry``)."""

    host: str

    def manifest(self, repo: str, ref: str) -> Manifest: ...

    def blob(self, repo: str, digest: str, size: int | None = None) -> VerifiedStream: ...

    def referrers(self, repo: str, digest: str) -> list[dict[str, object]] | None: ...

    def push_blob(self, repo: str, digest: str, source: BinaryIO, size: int) -> str: ...

    def push_manifest(self, repo: str, ref: str, media_type: str, data: bytes) -> str: ...


@dataclass(frozen=True)
class Artifact:
    """Bytes to attach: their media type (also the manifest's ``artifactType``) and title."""

    media_type: str
    data: bytes
    title: str
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Attached:
    """Artifacts pushed: (artifact type, manifest digest) each, and how they are listed."""

    subject: str
    artifacts: tuple[tuple[str, str], ...]
    listed_by: str  # "the referrers API" or "the tag sha256-<hex>"


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest``: ``sha256-<hex>``."""
    return check_digest(digest).replace(":", "-", 1)


def descriptor(manifest: Manifest) -> dict[str, object]:
    """The descriptor of ``manifest`` (a ``subject``, an index entry)."""
    return {"mediaType": manifest.media_type, "digest": manifest.digest,
            "size": len(manifest.data)}


def _dumps(doc: Mapping[str, object]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def artifact_manifest(artifact: Artifact, subject: Manifest) -> bytes:
    """The bytes of ``artifact``'s manifest, referring to ``subject`` (the same every time)."""
    doc: dict[str, object] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact.media_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": sha256_digest(EMPTY_DATA),
                   "size": len(EMPTY_DATA), "data": base64.b64encode(EMPTY_DATA).decode()},
        "layers": [{"mediaType": artifact.media_type, "digest": sha256_digest(artifact.data),
                    "size": len(artifact.data), "annotations": {TITLE: artifact.title}}],
        "subject": descriptor(subject),
    }
    if artifact.annotations:
        doc["annotations"] = dict(artifact.annotations)
    return _dumps(doc)


def attach(registry: ArtifactRegistry, repo: str, subject: Manifest,
           artifacts: Sequence[Artifact]) -> Attached:
    """Push ``artifacts`` into ``repo`` referring to ``subject``; without a referrers API the
    tag ``sha256-<hex>`` is updated, earlier artifacts of the same types left out of it."""
    api = registry.referrers(repo, subject.digest) is not None
    registry.push_blob(repo, sha256_digest(EMPTY_DATA), io.BytesIO(EMPTY_DATA), len(EMPTY_DATA))
    pushed: list[tuple[str, dict[str, object]]] = []
    for artifact in artifacts:
        registry.push_blob(repo, sha256_digest(artifact.data), io.BytesIO(artifact.data),
                           len(artifact.data))
        data = artifact_manifest(artifact, subject)
        digest = registry.push_manifest(repo, sha256_digest(data), OCI_MANIFEST, data)
        entry: dict[str, object] = {"mediaType": OCI_MANIFEST, "digest": digest,
                                    "size": len(data), "artifactType": artifact.media_type}
        if artifact.annotations:
            entry["annotations"] = dict(artifact.annotations)
        pushed.append((artifact.media_type, entry))
    done = tuple((kind, str(entry["digest"])) for kind, entry in pushed)
    if api:
        return Attached(subject.digest, done, "the referrers API")
    tag = fallback_tag(subject.digest)
    replaced = {kind for kind, _ in pushed}
    kept = [e for e in _tag_entries(registry, repo, subject.digest)
            if e.get("artifactType") not in replaced]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [*kept, *(entry for _, entry in pushed)]}
    registry.push_manifest(repo, tag, OCI_INDEX, _dumps(index))
    return Attached(subject.digest, done, f"the tag {tag}")


def _tag_entries(registry: ArtifactRegistry, repo: str, digest: str) -> list[dict[str, object]]:
    """The descriptors the fallback tag of ``digest`` lists ([] when there is no such tag)."""
    tag = fallback_tag(digest)
    try:
        index = registry.manifest(repo, tag)
    except ManifestUnknown:
        return []
    if index.media_type not in INDEX_TYPES:
        raise RegistryError(f"{registry.host}/{repo}:{tag}: the referrers tag is not an "
                            "image index")
    return index.objects("manifests")


def referrers(registry: ArtifactRegistry, repo: str, digest: str
              ) -> tuple[list[dict[str, object]], str]:
    """The descriptors that refer to ``digest`` and where they were listed: the referrers
    API, else the fallback tag."""
    found = registry.referrers(repo, digest)
    if found is not None:
        return found, "the referrers API"
    return _tag_entries(registry, repo, digest), f"the tag {fallback_tag(digest)}"


@dataclass(frozen=True)
class Found:
    """An artifact's bytes, checked, and the digest of the manifest that holds them."""

    data: bytes
    manifest: str
    listed_by: str


def read_artifact(registry: ArtifactRegistry, repo: str, subject: str, artifact_type: str,
                  max_bytes: int, what: str = "artifact") -> Found:
    """The one artifact of ``artifact_type`` that refers to ``subject``; a ``RegistryError``
    when there is none or several, or when it is not what it says (its subject, its
    type, its blob's size or digest)."""
    where = f"{registry.host}/{repo}@{subject}"
    entries, listed_by = referrers(registry, repo, subject)
    mine = [e for e in entries if e.get("artifactType") == artifact_type]
    if not mine:
        raise RegistryError(f"{where}: no {what} is attached to the image ({listed_by} lists "
                            f"no {artifact_type})")
    digests = sorted({str(e.get("digest", "")) for e in mine})
    if len(digests) > 1:
        raise RegistryError(f"{where}: {len(digests)} {what}s are attached to the image "
                            f"({listed_by}); cannot tell which one holds")
    digest = check_digest(digests[0], f"{where}: the {what}'s manifest")
    manifest = registry.manifest(repo, digest)  # its bytes are hashed against the digest
    place = f"{registry.host}/{repo}@{digest}"
    blob = _the_blob(manifest, artifact_type, subject, place, max_bytes)
    with registry.blob(repo, blob) as stream:
        data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise RegistryError(f"{place}: the {what} is over {max_bytes} bytes; refused")
        stream.read(-1)  # to its end, where the digest is checked
    return Found(data, digest, listed_by)


def _the_blob(manifest: Manifest, artifact_type: str, subject: str, place: str,
              max_bytes: int) -> str:
    """The digest of the artifact manifest's one blob, once the manifest is checked."""
    if manifest.media_type != OCI_MANIFEST:
        raise RegistryError(f"{place}: the artifact is a {manifest.media_type}, not an OCI "
                            "image manifest")
    if manifest.field("artifactType") != artifact_type:
        raise RegistryError(f"{place}: the artifact's type is "
                            f"{manifest.field('artifactType')!r:.80}, not {artifact_type}")
    refers = manifest.json().get("subject")
    got = refers.get("digest") if isinstance(refers, dict) else None
    if got != subject:
        raise RegistryError(f"{place}: the artifact refers to {str(got)!r:.80}, not to the "
                            f"image {subject}; refused")
    layers = manifest.objects("layers")
    if len(layers) != 1 or len(manifest.array("layers")) != 1:
        raise RegistryError(f"{place}: the artifact has {len(manifest.array('layers'))} "
                            "blobs, not one")
    layer = layers[0]
    if layer.get("mediaType") != artifact_type:
        raise RegistryError(f"{place}: the artifact's blob is of type "
                            f"{str(layer.get('mediaType'))!r:.80}, not {artifact_type}")
    size = layer.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= max_bytes:
        raise RegistryError(f"{place}: the artifact's blob size {str(size)!r:.40} is not one "
                            f"of 0 to {max_bytes} bytes")
    return check_digest(str(layer.get("digest", "")), f"{place}: the artifact's blob")
