"""An OCI image layout in a tar, read as a registry: what ``docker save`` writes.

The containerd image store saves an image of several platforms as an OCI
image layout (``index.json`` naming the image index, ``blobs/sha256/...``
holding the index, each platform's manifest, config and layers). ``OciArchive``
answers for it as a registry does (``RegistryReader``): a manifest by digest
(or the one the layout names, by any tag), a blob by digest, each checked
against its digest as it is read, every read bounded. ``RegistrySource`` over
it then gives each platform's image (``relock verify`` of an index an engine
holds). A platform whose blobs the archive lacks (the engine pulled another
platform only) is a manifest the archive does not have.
"""

from __future__ import annotations

import contextlib
import re
import tarfile
from collections.abc import Iterator
from typing import IO, BinaryIO, Protocol

from relock import bounds
from relock.errors import LayerError, LimitError, RegistryError
from relock.upstream import registry as reg

# The host an archive answers for in an ``oci://`` reference (``.invalid``: no
# registry anywhere has this name, RFC 2606).
HOST = "engine-archive.relock.invalid"
_BLOB = re.compile(r"blobs/sha256/([0-9a-f]{64})")
_CHUNK = 1 << 20


class OciArchive:
    """A ``RegistryReader`` of one image archive (a seekable tar of an OCI layout)."""

    def __init__(self, archive: IO[bytes], label: str, host: str = HOST) -> None:
        self.host = host
        self.label = label
        try:
            self._tar = tarfile.TarFile(fileobj=archive, mode="r")
        except (tarfile.TarError, EOFError, OSError) as e:
            raise LayerError(f"{label}: not a readable image archive ({e})") from None
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            for count, member in enumerate(self._tar):
                if count >= bounds.ARCHIVE_ENTRIES:
                    raise LimitError(bounds.over(label, "the number of the archive's entries",
                                                 f"{bounds.ARCHIVE_ENTRIES} entries"))
                self._members["/".join(p for p in member.name.split("/") if p and p != ".")
                              ] = member
        except (tarfile.TarError, EOFError, OSError) as e:
            raise LayerError(f"{label}: not a readable image archive ({e})") from None
        self.top = self._top()  # (media type, digest) of the image index.json names

    def _read(self, name: str, what: str) -> bytes:
        member = self._members.get(name)
        if member is None or not member.isfile():
            raise LayerError(f"{self.label}: the archive has no {what} ({name})")
        if member.size > bounds.CONFIG:
            raise LimitError(bounds.over(self.label, f"the {what}",
                                         bounds.size_text(bounds.CONFIG)))
        handle = self._tar.extractfile(member)
        if handle is None:
            raise LayerError(f"{self.label}: {name} is not a file in the archive")
        return handle.read(bounds.CONFIG + 1)

    def _top(self) -> tuple[str, str]:
        """The one image ``index.json`` names (its descriptor's media type and digest)."""
        index = reg.json_object(self._read("index.json", "index.json"),
                                f"{self.label}: index.json")
        found = index.get("manifests")
        if not isinstance(found, list) or len(found) != 1 or not isinstance(found[0], dict):
            raise LayerError(f"{self.label}: index.json must name exactly one image")
        entry = found[0]
        digest = reg.check_digest(str(entry.get("digest", "")), f"{self.label}: index.json")
        media = str(entry.get("mediaType") or "")
        return media, digest

    def manifest(self, repo: str, ref: str) -> reg.Manifest:
        """The manifest of digest ``ref``; a tag is the image the archive names."""
        top_media, top = self.top
        digest = ref if ref.startswith("sha256:") else top
        name = f"blobs/sha256/{digest.removeprefix('sha256:')}"
        if name not in self._members:
            raise reg.ManifestUnknown(f"{self.label}: no manifest {digest} in the archive "
                                      "(the engine holds no such image)")
        data = self._read(name, f"manifest {digest}")
        if reg.sha256_digest(data) != digest:
            raise RegistryError(f"{self.label}: manifest {digest} has another digest; "
                                    "refused")
        media = str(reg.json_object(data, f"{self.label}: manifest {digest}").get(
            "mediaType") or "")
        if not media and digest == top:
            media = top_media
        if media not in reg.MANIFEST_TYPES:
            raise RegistryError(f"{self.label}: manifest {digest} is of type "
                                    f"{media[:80]!r}, not an image or an index")
        return reg.Manifest(media_type=media, data=data, digest=digest)

    def platforms(self) -> list[str]:
        """The platforms whose image the archive holds, sorted: of an image index, those
        whose manifest is in it (the engine may hold only some); of one image, []."""
        from relock.lock.platform import descriptor_text

        top = self.manifest("", self.top[1])
        if top.media_type not in reg.INDEX_TYPES:
            return []
        out = set()
        for entry in top.objects("manifests"):
            text = descriptor_text(entry.get("platform"))
            digest = str(entry.get("digest", ""))
            if text and "unknown" not in text.split("/") and \
                    f"blobs/sha256/{digest.removeprefix('sha256:')}" in self._members:
                out.add(text)
        return sorted(out)

    def blob(self, repo: str, digest: str, size: int | None = None) -> reg.VerifiedStream:
        """The blob ``digest``, checked against it as it is read."""
        m = _BLOB.fullmatch(f"blobs/sha256/{digest.removeprefix('sha256:')}")
        member = self._members.get(m.group(0)) if m else None
        if member is None or not member.isfile():
            raise reg.BlobUnknown(f"{self.label}: no blob {digest[:80]} in the archive")
        handle = self._tar.extractfile(member)
        if handle is None:
            raise reg.BlobUnknown(f"{self.label}: blob {digest} is not a file in the archive")
        return reg.VerifiedStream(_chunks(handle), digest, f"{self.label} blob {digest}",
                                  size=member.size, limit=size)

    def blob_file(self, digest: str) -> tuple[IO[bytes], int]:
        """Blob ``digest``'s bytes as stored (unchecked: the registry they go to checks them)
        and their size."""
        member = self._members.get(f"blobs/sha256/{digest.removeprefix('sha256:')}")
        handle = self._tar.extractfile(member) if member is not None and member.isfile() \
            else None
        if member is None or handle is None:
            raise reg.BlobUnknown(f"{self.label}: no blob {digest[:80]} in the archive")
        return handle, member.size

    def close(self) -> None:
        self._tar.close()


class RegistryWriter(Protocol):
    """What ``push`` needs of a registry (``relock.upstream.registry.Registry``)."""

    host: str

    def push_blob(self, repo: str, digest: str, source: BinaryIO, size: int) -> str: ...

    def push_manifest(self, repo: str, ref: str, media_type: str, data: bytes) -> str: ...


def push(archive: OciArchive, registry: RegistryWriter, repo: str, tag: str) -> str:
    """The image ``archive`` holds (an index: every platform of it) pushed to ``repo:tag``,
    blobs first, then each manifest by digest, the index last; its digest."""
    def put(manifest: reg.Manifest) -> None:
        for entry in manifest.objects("manifests"):
            put(archive.manifest(repo, reg.check_digest(str(entry.get("digest", "")),
                                                        f"{archive.label} index")))
        config = manifest.json().get("config")
        blobs = [config] if isinstance(config, dict) else []
        for blob in [*blobs, *manifest.objects("layers")]:
            digest = reg.check_digest(str(blob.get("digest", "")), f"{archive.label} blob")
            handle, size = archive.blob_file(digest)
            registry.push_blob(repo, digest, handle, size)  # type: ignore[arg-type]
        registry.push_manifest(repo, manifest.digest, manifest.media_type, manifest.data)

    top = archive.manifest(repo, archive.top[1])
    put(top)
    return registry.push_manifest(repo, tag, top.media_type, top.data)


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


@contextlib.contextmanager
def reading(archive: IO[bytes], label: str) -> Iterator[OciArchive]:
    """``OciArchive`` of ``archive`` while the context lasts."""
    found = OciArchive(archive, label)
    try:
        yield found
    finally:
        found.close()
