"""In-memory stand-ins for relock's seams, for unit tests of logic (never evidence that a
feature works): one per outside system, each typed as the seam's Protocol.

* ``FakeSource`` (``ImageSource``): images are ``ImageInfo`` values registered
  under names (tags); a digest reference ``repo@sha256:...`` finds the image
  whose ``repo_digests`` has it; an ID finds the image with that ID.
  ``pullable`` holds what ``pull`` can fetch, as a registry would. Files of an
  image are a ``{path: bytes}`` dict.
* ``FakeBuilder`` (``ImageBuilder``) and ``FakeEngine`` (``Engine``: a source,
  a builder and registry mirrors; a build is what ``on_build`` makes of it).
* ``FakeRegistry`` (``RegistryReader``), ``FakeIndex`` (``PackageIndex``),
  ``FakeArchive`` (``AptArchive``).
* ``FakeLayers`` (``LayerSource``): images as archives ``docker save`` would
  write, made in memory by ``image_archive`` from layers of ``Member`` entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import posixpath
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

from relock.blobs import BlobCache
from relock.errors import DebNotFoundError, EngineError, ImageNotFoundError, IndexError_
from relock.image.engine import BuildEvent, BuildRequest, ImageInfo
from relock.image.layers import ImageLayers, archive_layers
from relock.image.rootfs import RootFS
from relock.lock.lockfile import AptPackage, AptSource
from relock.lock.reference import normalize_repo, split
from relock.upstream.debindex import DebEntry, Key
from relock.upstream.index import IndexConfig, IndexLink
from relock.upstream.registry import Manifest, VerifiedStream

if TYPE_CHECKING:
    from relock.image.engine import Engine, ImageBuilder, ImageSource
    from relock.image.layers import LayerSource
    from relock.image.registrysource import RegistryReader
    from relock.upstream.archive import AptArchive
    from relock.upstream.index import PackageIndex


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
        # What registry_has answers by reference (True where not given).
        self.in_registry: dict[str, bool | None] = {}

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
    def open_rootfs(self, image: ImageInfo, also: tuple[str, ...] = ()) -> Iterator[RootFS]:
        yield MemFS(self.files.get(image.id, {}))

    def registry_has(self, ref: str) -> bool | None:
        return self.in_registry.get(ref, True)


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


class FakeEngine(FakeSource):
    """An ``Engine`` in memory: ``FakeSource``'s images, its ``mirrors``, and builds.

    A build hands its request to ``on_build``, which says what the engine would
    (and may ``add`` the image it makes); without one, ``events`` are replayed.
    """

    def __init__(self, *events: BuildEvent, mirrors: Sequence[str] = (),
                 on_build: Callable[[BuildRequest], Iterable[BuildEvent]] | None = None
                 ) -> None:
        super().__init__()
        self.events = events
        self.mirrors = list(mirrors)
        self.on_build = on_build
        self.requests: list[BuildRequest] = []
        self.layered = FakeLayers()
        self.containerd = False
        self.saved: dict[str, bytes] = {}  # docker save of an image, by the name asked

    def registry_mirrors(self) -> list[str]:
        return list(self.mirrors)

    def containerd_store(self) -> bool:
        return self.containerd

    def image_layers(self, ref: str) -> contextlib.AbstractContextManager[ImageLayers]:
        return self.layered.image_layers(ref)

    def image_archive(self, ref: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """``saved[ref]``'s bytes, as ``docker save`` of the image would give them."""
        self.image(ref)  # ImageNotFoundError as the engine's
        return contextlib.nullcontext(io.BytesIO(self.saved[ref]))

    def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
        self.requests.append(request)
        yield from (self.on_build(request) if self.on_build is not None else self.events)


class FakeIndex:
    """A ``PackageIndex`` in memory: each project's files (``add``), their bytes by URL."""

    def __init__(self, url: str = "http://127.0.0.1:1/simple/") -> None:
        self.config = IndexConfig((url,))
        self.cache_hits = 0
        self.requests_made = 0
        self.projects: dict[str, list[IndexLink]] = {}
        self.data: dict[str, bytes] = {}
        self.asked: list[str] = []
        self.opened: list[str] = []

    def add(self, name: str, filename: str, data: bytes = b"", *, requires_python: str = "",
            sha256: str | None = None) -> IndexLink:
        """List ``filename`` (with ``data``) under project ``name``; its sha256 is that of
        ``data`` unless given (``""``: a page without hashes)."""
        from packaging.utils import canonicalize_name

        url = urllib.parse.urljoin(self.config.urls[0], f"../files/{filename}")
        link = IndexLink(filename, url, hashlib.sha256(data).hexdigest() if sha256 is None
                         else sha256, requires_python)
        self.projects.setdefault(str(canonicalize_name(name)), []).append(link)
        self.data[url] = data
        return link

    def links(self, name: str) -> list[IndexLink]:
        self.asked.append(name)
        self.requests_made += 1
        return list(self.projects.get(name, []))

    def hashes_many(self, wanted: Iterable[tuple[str, str]],
                    progress: Callable[[int, int], None] | None = None
                    ) -> dict[tuple[str, str], tuple[str, ...]]:
        from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
        from packaging.version import Version

        out = {}
        for name, version in sorted(set(wanted)):
            found = set()
            for link in self.projects.get(str(canonicalize_name(name)), []):
                parsed = (parse_wheel_filename(link.filename)[1]
                          if link.filename.endswith(".whl")
                          else parse_sdist_filename(link.filename)[1])
                if parsed == Version(version) and link.sha256:
                    found.add("sha256:" + link.sha256)
            if not found:
                raise IndexError_(f"{name}=={version} has no files with hashes on the index")
            out[(name, version)] = tuple(sorted(found))
        return out

    def open(self, url: str) -> tuple[BinaryIO, int | None]:
        if url not in self.data:
            raise IndexError_(f"cannot download {url}: HTTP 404")
        self.opened.append(url)
        return io.BytesIO(self.data[url]), len(self.data[url])


class FakeArchive:
    """An ``AptArchive`` in memory: .deb files by (name, version, arch), each listed in a
    suite (``add``); ``fetch_deb`` checks their bytes into the cache as the archive does."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.cache_hits = 0
        self.requests_made = 0
        self.retries = 0
        self.waited = 0.0
        self.entries: dict[Key, tuple[str, DebEntry]] = {}
        self.debs: dict[Key, bytes] = {}
        self.fetched: list[Key] = []
        self.down: dict[str, str] = {}

    def add(self, name: str, version: str, arch: str, data: bytes = b"", *,
            suite: str = "stable", filename: str = "", sha256: str | None = None) -> DebEntry:
        """Serve ``data`` as the .deb of ``name`` ``version`` (listed with its sha256 unless
        another is given, as an index that changed would)."""
        key = (name, version, arch)
        entry = DebEntry(filename or f"pool/main/{name}_{version}_{arch}.deb",
                         hashlib.sha256(data).hexdigest() if sha256 is None else sha256,
                         len(data))
        self.entries[key] = (suite, entry)
        self.debs[key] = data
        return entry

    def deb_entries(self, sources: Sequence[AptSource], arch: str,
                    wanted: Collection[Key], snapshot: str = "",
                    snapshot_url: str | None = None,
                    keyrings: Mapping[str, bytes] | None = None) -> dict[Key, DebEntry]:
        self.requests_made += 1
        return {k: self.entries[k][1] for k in wanted if k in self.entries}

    def candidates(self, sources: Sequence[AptSource], arch: str, names: Collection[str],
                   keyrings: Mapping[str, bytes] | None = None, snapshot: str = "",
                   snapshot_url: str | None = None) -> list[tuple[str, Key, DebEntry]]:
        self.requests_made += 1
        return [(suite, key, entry) for key, (suite, entry) in sorted(self.entries.items())
                if key[0] in names and key[2] in (arch, "all")]

    def fetch_deb(self, pkg: AptPackage, sources: Sequence[AptSource], snapshot: str,
                  cache: BlobCache, progress: Callable[[int], None] | None = None,
                  snapshot_url: str | None = None) -> tuple[Path, str]:
        key = (pkg.name, pkg.version, pkg.arch)
        hit = cache.path(pkg.sha256)
        if hit is not None:
            return hit, "cache"
        what = f"{pkg.name} {pkg.version} ({pkg.arch})"
        if key not in self.debs:
            raise DebNotFoundError(f"{what} is in no source of the fake archive")
        self.fetched.append(key)
        return cache.put_stream(pkg.sha256, iter([self.debs[key]]),
                                f"{what} from the fake archive"), "live"

    def down_hosts(self) -> dict[str, str]:
        return dict(self.down)


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

    def blob(self, repo: str, digest_: str, size: int | None = None) -> VerifiedStream:
        from relock.upstream.registry import BlobUnknown

        if digest_ not in self.blobs:
            raise BlobUnknown(f"{self.host}/{repo}: no blob {digest_}")
        self.blob_reads.append(digest_)
        return VerifiedStream(iter([self.blobs[digest_]]), digest_, f"{self.host}/{repo}",
                              limit=size)

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


def oci_layout(registry: FakeRegistry, repo: str, ref: str, *, leave_out: Collection[str] = (),
               name: str = "docker.io/library/app:1") -> bytes:
    """``docker save`` of ``repo:ref`` as the containerd image store writes it: a tar of an
    OCI layout, ``index.json`` naming the image (an index: every platform's manifest,
    config and layers under ``blobs/sha256/``), ``leave_out`` digests missing (a platform
    the engine does not hold), ``manifest.json`` beside it as the engine adds one."""
    import json
    import tarfile

    top = registry.manifests[(repo, ref)]
    files: dict[str, bytes] = {}

    def put(manifest: Manifest) -> None:
        if manifest.digest in leave_out:
            return
        files[f"blobs/sha256/{manifest.digest[7:]}"] = manifest.data
        doc = manifest.json()
        for entry in manifest.objects("manifests"):
            put(registry.manifests[(repo, str(entry["digest"]))])
        config = doc.get("config")
        for blob in [config] if isinstance(config, dict) else []:
            files[f"blobs/sha256/{str(blob['digest'])[7:]}"] = registry.blobs[str(blob["digest"])]
        for layer in manifest.objects("layers"):
            files[f"blobs/sha256/{str(layer['digest'])[7:]}"] = registry.blobs[
                str(layer["digest"])]

    put(top)
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": top.media_type, "digest": top.digest, "size": len(top.data),
        "annotations": {"io.containerd.image.name": name}}]}).encode()
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    files["manifest.json"] = b"[]"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@dataclass(frozen=True)
class Member:
    """One entry of a layer tar: ``kind`` is file, dir, symlink, hardlink, char or fifo."""

    name: str
    data: bytes = b""
    kind: str = "file"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    link: str = ""
    mtime: int = 0


def build_layer(members: Iterable[Member | str]) -> bytes:
    """A plain layer tar of ``members`` (a bare name is an empty file), in the order given."""
    import tarfile

    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            m = Member(m) if isinstance(m, str) else m
            info = tarfile.TarInfo(m.name)
            info.type, info.mode, info.uid, info.gid = types[m.kind], m.mode, m.uid, m.gid
            info.linkname, info.mtime = m.link, m.mtime
            if m.kind == "char":
                info.devmajor, info.devminor = 1, 3
            if m.kind == "file":
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    return raw.getvalue()


def image_archive(layers_: Sequence[Iterable[Member | str] | bytes],
                  steps: Sequence[str] | None = None, *, gzip_layers: bool = True,
                  oci: bool = False, history: list[dict[str, object]] | None = None) -> bytes:
    """An image archive as ``docker save`` writes it (``manifest.json``; with ``oci`` an
    OCI layout's ``index.json`` only). A layer is its members or its plain tar's bytes;
    ``steps`` are the layers' ``created_by`` (an empty CMD step between them, as builders
    write); ``history`` replaces the history whole."""
    import gzip
    import json
    import tarfile

    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return d

    diff_ids, layer_digests = [], []
    for layer in layers_:
        plain = layer if isinstance(layer, bytes) else build_layer(layer)
        diff_ids.append("sha256:" + hashlib.sha256(plain).hexdigest())
        layer_digests.append(put(gzip.compress(plain, mtime=0) if gzip_layers else plain))
    if history is None:
        history = []
        for step in steps or [f"/bin/sh -c step {i}" for i in range(len(layers_))]:
            history += [{"created_by": step}, {"created_by": "/bin/sh -c #(nop)  CMD [\"x\"]",
                                               "empty_layer": True}]
    config = json.dumps({"architecture": "amd64", "os": "linux", "history": history,
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_digest = put(config)
    media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else "")
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": f"sha256:{config_digest}"},
                           "layers": [{"mediaType": media, "digest": f"sha256:{d}"}
                                      for d in layer_digests]}).encode()
    files = {f"blobs/sha256/{d}": data for d, data in blobs.items()}
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    files[f"blobs/sha256/{manifest_digest}"] = manifest
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
        {"digest": f"sha256:{manifest_digest}"}]}).encode()
    if not oci:
        files["manifest.json"] = json.dumps([{
            "Config": f"blobs/sha256/{config_digest}", "RepoTags": ["x:latest"],
            "Layers": [f"blobs/sha256/{d}" for d in layer_digests]}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class FakeLayers:
    """A ``LayerSource`` of image archives by name (``image_archive``'s bytes)."""

    def __init__(self, **archives: bytes) -> None:
        self.archives = dict(archives)
        self.asked: list[str] = []

    def add(self, ref: str, archive: bytes) -> None:
        self.archives[ref] = archive

    def image_layers(self, ref: str) -> contextlib.AbstractContextManager[ImageLayers]:
        self.asked.append(ref)
        if ref not in self.archives:
            raise ImageNotFoundError(f"image {ref!r} not found in the engine")
        return archive_layers(io.BytesIO(self.archives[ref]), ref)


def _seams() -> tuple[Engine, ImageSource, ImageBuilder, RegistryReader, PackageIndex,
                      AptArchive, LayerSource]:
    """Each fake as its seam's Protocol, so that ``mypy tests/fakes.py`` checks they fit."""
    return (FakeEngine(), FakeSource(), FakeBuilder(), FakeRegistry(), FakeIndex(),
            FakeArchive(), FakeLayers())
