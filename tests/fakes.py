"""An in-memory ``ImageSource`` for unit tests of logic (never evidence that a feature works).

Images are ``ImageInfo`` values registered under names (tags); a digest
reference ``repo@sha256:...`` finds the image whose ``repo_digests`` has it;
an ID finds the image with that ID. ``pullable`` holds what ``pull`` can
fetch, as a registry would. Files of an image are a ``{path: bytes}`` dict.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator, Mapping

from relock.errors import EngineError, ImageNotFoundError
from relock.image.engine import BuildEvent, BuildRequest, ImageInfo
from relock.image.rootfs import RootFS
from relock.lock.reference import normalize_repo, split
from relock.upstream.registry import Manifest, VerifiedStream


def layers(*names: str) -> tuple[str, ...]:
    """Layer diff IDs from short names: ``layers("a", "b")``."""
    return tuple(f"sha256:{n * (64 // len(n))}"[:71] for n in names)


def digest(name: str) -> str:
    return f"sha256:{(name * 64)[:64]}"


class MemFS:
    """A ``RootFS`` over a dict of file paths to their bytes (no symlinks)."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = {"/" + p.strip("/"): data for p, data in files.items()}
        self.dirs: dict[str, set[str]] = {"/": set()}
        for path in self.files:
            parts = path.strip("/").split("/")
            for i in range(len(parts)):
                parent = "/" + "/".join(parts[:i])
                self.dirs.setdefault(parent, set()).add(parts[i])

    def _norm(self, path: str) -> str:
        return posixpath.normpath("/" + path.lstrip("/"))

    def read_bytes(self, path: str) -> bytes | None:
        return self.files.get(self._norm(path))

    def listdir(self, path: str) -> list[str] | None:
        names = self.dirs.get(self._norm(path))
        return None if names is None else sorted(names)

    def is_dir(self, path: str) -> bool:
        return self._norm(path) in self.dirs

    def is_symlink(self, path: str) -> bool:
        return False

    def subdirs(self, path: str) -> list[str] | None:
        folder = self._norm(path)
        names = self.dirs.get(folder)
        if names is None:
            return None
        return sorted(n for n in names if posixpath.join(folder, n) in self.dirs)


class FakeSource:
    """Images in memory, found by tag, digest reference or ID."""

    def __init__(self) -> None:
        self.tags: dict[str, ImageInfo] = {}
        self.held: dict[str, ImageInfo] = {}
        self.pullable: dict[str, ImageInfo] = {}
        self.files: dict[str, Mapping[str, bytes]] = {}
        self.pulled: list[str] = []

    def add(self, image: ImageInfo, *tags: str, files: Mapping[str, bytes] | None = None
            ) -> ImageInfo:
        """Hold ``image`` under ``tags`` (which move to it if another image had them)."""
        self.held[image.id] = image
        for tag in tags:
            self.tags[tag] = image
        if files is not None:
            self.files[image.id] = files
        return image

    def image(self, ref: str) -> ImageInfo:
        if ref in self.held:
            return self.held[ref]
        if ref in self.tags:
            return self.tags[ref]
        parsed = split(ref)
        if parsed.digest:
            for img in self.held.values():
                if parsed.digest in img.digests_for(ref):
                    return img
        raise ImageNotFoundError(f"image {ref!r} not found in the engine; build or pull it first")

    def images(self) -> list[ImageInfo]:
        return list(self.held.values())

    def pull(self, ref: str) -> ImageInfo:
        found = self.pullable.get(ref)
        if found is None:
            raise EngineError(f"cannot pull {ref}: manifest unknown")
        self.pulled.append(ref)
        return self.add(found)

    @contextlib.contextmanager
    def open_rootfs(self, image: ImageInfo) -> Iterator[RootFS]:
        yield MemFS(self.files.get(image.id, {}))


def repo_digest(ref: str, digest_: str) -> str:
    """A ``RepoDigests`` entry the way the engine writes it."""
    return f"{normalize_repo(ref)}@{digest_}"


class FakeBuilder:
    """An ``ImageBuilder`` that replays ``events`` and keeps the requests it got."""

    def __init__(self, *events: BuildEvent) -> None:
        self.events = events
        self.requests: list[BuildRequest] = []

    def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
        self.requests.append(request)
        yield from self.events


def layer_tar(entries: Mapping[str, bytes | str | None]) -> tuple[bytes, str]:
    """A gzipped layer tar and its diff ID. An entry is a file's bytes, ``"/"`` for a
    folder, ``"->target"`` for a symlink; names may be whiteouts (``.wh.x``)."""
    import gzip
    import hashlib
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, value in entries.items():
            info = tarfile.TarInfo(name)
            if value == "/":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(value, str) and value.startswith("->"):
                info.type, info.linkname = tarfile.SYMTYPE, value[2:]
                tar.addfile(info)
            else:
                data = value if isinstance(value, bytes) else b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest()


class FakeRegistry:
    """A registry in memory (``RegistryReader``): manifests by repo and tag or digest,
    blobs by digest. ``blob_reads`` counts the blobs served."""

    def __init__(self, host: str = "127.0.0.1:5999") -> None:
        self.host = host
        self.manifests: dict[tuple[str, str], Manifest] = {}
        self.blobs: dict[str, bytes] = {}
        self.blob_reads: list[str] = []

    def manifest(self, repo: str, ref: str) -> Manifest:
        from relock.upstream.registry import ManifestUnknown

        found = self.manifests.get((repo, ref))
        if found is None:
            raise ManifestUnknown(f"{self.host}/{repo}:{ref}: no such manifest in the registry")
        return found

    def blob(self, repo: str, digest_: str) -> VerifiedStream:
        from relock.upstream.registry import BlobUnknown

        if digest_ not in self.blobs:
            raise BlobUnknown(f"{self.host}/{repo}: no blob {digest_}")
        self.blob_reads.append(digest_)
        return VerifiedStream(iter([self.blobs[digest_]]), digest_, f"{self.host}/{repo}")

    def put_blob(self, data: bytes) -> str:
        from relock.upstream.registry import sha256_digest

        self.blobs[sha256_digest(data)] = data
        return sha256_digest(data)

    def put_manifest(self, repo: str, doc: Mapping[str, object], *tags: str) -> str:
        import json

        from relock.upstream.registry import sha256_digest

        data = json.dumps(doc).encode()
        m = Manifest(media_type=str(doc["mediaType"]), data=data, digest=sha256_digest(data))
        for ref in (m.digest, *tags):
            self.manifests[(repo, ref)] = m
        return m.digest

    def put_image(self, repo: str, layers_: list[Mapping[str, bytes | str | None]], *tags: str,
                  arch: str = "amd64", created: str = "2026-11-01T00:00:00Z") -> str:
        """An image of these layers (bottom first); its manifest's digest."""
        import json

        from relock.upstream.registry import OCI_MANIFEST

        blobs, diff_ids = [], []
        for entries in layers_:
            data, diff_id = layer_tar(entries)
            blobs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                          "digest": self.put_blob(data), "size": len(data)})
            diff_ids.append(diff_id)
        config = json.dumps({"architecture": arch, "os": "linux", "created": created,
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        return self.put_manifest(repo, {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self.put_blob(config), "size": len(config)},
            "layers": blobs}, *tags)

    def put_index(self, repo: str, images: Mapping[str, str], *tags: str) -> str:
        """An image index of ``{platform: manifest digest}``; its digest."""
        from relock.upstream.registry import OCI_INDEX

        entries = []
        for platform, digest_ in images.items():
            os_, arch = platform.split("/", 1)
            m = self.manifests[(repo, digest_)]
            entries.append({"mediaType": m.media_type, "digest": digest_, "size": len(m.data),
                            "platform": {"os": os_, "architecture": arch}})
        return self.put_manifest(repo, {"schemaVersion": 2, "mediaType": OCI_INDEX,
                                        "manifests": entries}, *tags)
