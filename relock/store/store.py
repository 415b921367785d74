"""A content-addressed store in the OCI image format, on disk or in a registry.

On disk a store is an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/<hex>``); in a registry (``oci://HOST[:PORT]/REPO``) it is one
repository holding the same blobs, manifests and tags. Any OCI tool can copy
one into the other. Every ``.deb``, wheel and sdist is a blob named by its
sha256; a lock manifest (an OCI image manifest with artifactType
``application/vnd.relock.lock.v1``: the lock file as its config, the files as
its layers) ties one lock's files together; a base image is kept as ordinary
image content, byte for byte, so its digests do not change.

Writes are atomic: a blob is written to a temp file inside the layout, hashed
on the way, checked and only then renamed into place; ``index.json`` is
rewritten the same way under a lock. A full disk or a killed process leaves
the old store as it was.

``Store`` is the one seam both kinds answer; what differs between them is
asked of it, not of their classes: a folder store's blobs are local files
(``local_path``), a registry store's repository can mount a blob from another
of the same registry (``registry_repo``, ``put(..., mount_from=)``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

from relock.errors import RegistryError, StoreError
from relock.lock.platform import from_descriptor
from relock.lock.reference import parse
from relock.upstream import registry as reg
from relock.upstream.registry import Manifest, check_digest, sha256_digest

LAYOUT_VERSION = "1.0.0"
REF_NAME = "org.opencontainers.image.ref.name"
TITLE = "org.opencontainers.image.title"
# On a tag in index.json: the platforms of an index that were kept (comma-separated).
PLATFORMS = "dev.relock.platforms"
LOCK_ARTIFACT = "application/vnd.relock.lock.v1"
LOCK_CONFIG = "application/vnd.relock.lock.v1+toml"
FILE_TYPES = {
    "deb": "application/vnd.debian.binary-package",
    "wheel": "application/vnd.relock.python.wheel.v1",
    "sdist": "application/vnd.relock.python.sdist.v1",
}
# Tags must be valid in a registry too, so that a layout can be pushed as is.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest or index.json says about content."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str = ""
    platform: Mapping[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.platform:
            out["platform"] = dict(self.platform)
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out

    @classmethod
    def from_json(cls, doc: object, where: str) -> Descriptor:
        if not isinstance(doc, dict):
            raise StoreError(f"{where}: a descriptor must be a JSON object")
        try:
            digest = check_digest(str(doc["digest"]), where)
            size = doc["size"]
            media_type = doc.get("mediaType", "")
        except KeyError as e:
            raise StoreError(f"{where}: descriptor has no {e.args[0]!r}") from None
        except RegistryError as e:
            raise StoreError(str(e)) from None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise StoreError(f"{where}: descriptor size {size!r} is not a byte count")
        annotations = doc.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
                isinstance(v, str) for v in annotations.values()):
            raise StoreError(f"{where}: annotations must map strings to strings")
        return cls(media_type=str(media_type), digest=digest, size=size,
                   annotations=annotations, artifact_type=str(doc.get("artifactType", "")),
                   platform=doc.get("platform") or {})


def manifest_type(data: bytes, declared: str = "") -> str:
    """The media type of manifest bytes: their ``mediaType``, else what they look like."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise StoreError("a manifest is not JSON") from None
    if not isinstance(doc, dict):
        raise StoreError("a manifest is not a JSON object")
    found = doc.get("mediaType") or declared
    if not found:
        found = reg.OCI_INDEX if "manifests" in doc else reg.OCI_MANIFEST
    return str(found)


def children(manifest: Manifest) -> tuple[list[Descriptor], list[Descriptor]]:
    """What a manifest points to: (manifests, blobs). An index has only the first."""
    doc = manifest.json()
    where = f"manifest {manifest.digest}"
    try:
        if manifest.media_type in reg.INDEX_TYPES:
            return [Descriptor.from_json(d, where) for d in manifest.array("manifests")], []
        if "config" not in doc:
            raise StoreError(f"{where}: an image manifest without a config")
        blobs = [Descriptor.from_json(doc["config"], where)]
        blobs += [Descriptor.from_json(d, where) for d in manifest.array("layers")]
    except RegistryError as e:
        raise StoreError(str(e)) from None
    return [], blobs


class Store(Protocol):
    """Content by digest, manifests, and tags: the same answers on disk or in a registry."""

    url: str

    def has(self, digest: str) -> bool:
        """Whether blob ``digest`` is in the store."""
        ...

    def open(self, digest: str) -> IO[bytes]:
        """A stream of blob ``digest`` that raises at its end if the bytes do not match."""
        ...

    def put(self, digest: str, source: Path | BinaryIO | bytes, size: int | None = None,
            *, mount_from: str = "") -> bool:
        """Add blob ``digest`` from ``source`` after checking it; False if it was there.

        A store that is not local needs ``size`` for a stream. ``mount_from``: a
        repository of the same registry to mount the blob from instead (a folder
        store ignores it).
        """
        ...

    def missing(self, digests: Iterable[str]) -> list[str]:
        """Those of ``digests`` whose blobs are not in the store, in order, once each."""
        ...

    def local_path(self, digest: str) -> Path | None:
        """The file blob ``digest`` lies in on this machine, there or not; None if the
        store keeps no local files (a registry)."""
        ...

    def blob_size(self, digest: str) -> int | None:
        """The size of blob ``digest``; None if it is not there."""
        ...

    def registry_repo(self) -> tuple[str, str] | None:
        """(registry host, repository) of a registry store; None for a folder."""
        ...

    def manifest(self, ref: str) -> Manifest:
        """The manifest ``ref`` (a tag or a digest): exact bytes and media type."""
        ...

    def has_manifest(self, digest: str) -> bool:
        ...

    def put_manifest(self, manifest: Manifest) -> Descriptor:
        """Add a manifest (its blobs and child manifests must be in already)."""
        ...

    def tag(self, name: str, descriptor: Descriptor) -> None:
        """Name the manifest ``descriptor`` ``name``, replacing what had that name."""
        ...

    def tags(self) -> dict[str, Descriptor]:
        """Every named manifest."""
        ...


def check_tag(name: str) -> str:
    if not _TAG.fullmatch(name):
        raise StoreError(f"{name!r} cannot name content in a store: use letters, digits, "
                         "'_', '.', '-' (at most 128, not starting with '.' or '-')")
    return name


def _missing(store: Store, digests: Iterable[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for d in digests:
        if d not in seen:
            seen.add(d)
            if not store.has(d):
                out.append(d)
    return out


# -- on disk -------------------------------------------------------------------

class _FileCheck:
    """Reads a local blob; raises at its end if the bytes do not have its digest."""

    def __init__(self, f: IO[bytes], digest: str, where: str) -> None:
        self._f = f
        self._hash = hashlib.sha256()
        self._digest = digest
        self._where = where
        self._checked = False

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._hash.update(data)
        if (not data or size < 0) and not self._checked:
            self._checked = True
            got = "sha256:" + self._hash.hexdigest()
            if got != self._digest:
                raise StoreError(f"{self._where}: blob content has digest {got}; "
                                 "the store is corrupt, remove the blob and re-vendor")
        return data

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> _FileCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DirStore:
    """An OCI image layout in a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    @classmethod
    def open_layout(cls, root: Path, create: bool = False) -> DirStore:
        layout = root / "oci-layout"
        if not layout.is_file():
            if not create:
                raise StoreError(f"{root}: not an OCI image layout (no oci-layout file); "
                                 "make it with `relock vendor`")
            try:
                (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"{root}: cannot make a store here: {e.strerror or e}"
                                 ) from None
            _atomic_write(root, "index.json", _index_bytes([]))
            _atomic_write(root, "oci-layout",
                          json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
        else:
            try:
                version = json.loads(layout.read_text()).get("imageLayoutVersion")
            except (OSError, ValueError, AttributeError):
                version = None
            if version != LAYOUT_VERSION:
                raise StoreError(f"{root}: unsupported OCI layout version {version!r}")
        return cls(root)

    def path(self, digest: str) -> Path:
        """Where blob ``digest`` lies (whether or not it is there)."""
        algo, _, hexd = _digest(digest).partition(":")
        return self.root / "blobs" / algo / hexd

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def local_path(self, digest: str) -> Path:
        return self.path(digest)

    def blob_size(self, digest: str) -> int | None:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def registry_repo(self) -> tuple[str, str] | None:
        return None

    def missing(self, digests: Iterable[str]) -> list[str]:
        return _missing(self, digests)

    def open(self, digest: str) -> IO[bytes]:
        try:
            f = self.path(digest).open("rb")
        except FileNotFoundError:
            raise StoreError(f"{self.root}: no blob {digest}") from None
        return _FileCheck(f, digest, f"{self.root}: {digest}")  # type: ignore[return-value]

    def put(self, digest: str, source: Path | BinaryIO | bytes, size: int | None = None,
            *, mount_from: str = "") -> bool:
        final = self.path(digest)
        if final.is_file():
            return False
        tmpdir = self.root / ".tmp"
        try:
            tmpdir.mkdir(exist_ok=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=final.name[:16] + ".", dir=tmpdir)
        except OSError as e:
            raise StoreError(f"{self.root}: cannot write here: {e.strerror or e}") from None
        h = hashlib.sha256()
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _chunks(source):
                    h.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            got = "sha256:" + h.hexdigest()
            if got != digest:
                raise StoreError(f"content for {digest} has digest {got}; refused")
            if size is not None and written != size:
                raise StoreError(f"{digest}: got {written} bytes, expected {size}; refused")
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreError(
                    f"{self.root}: disk full while writing {digest} ({written} bytes in); "
                    "nothing partial was kept; free space and run again"
                ) from None
            raise StoreError(f"{self.root}: cannot write {digest}: {e.strerror or e}") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def manifest(self, ref: str) -> Manifest:
        declared = ""
        if ref.startswith("sha256:"):
            digest = ref
            for desc in self._index():
                if desc.digest == digest:
                    declared = desc.media_type
        else:
            found = self.tags().get(ref)
            if found is None:
                raise StoreError(f"{self.root}: no manifest tagged {ref!r}")
            digest, declared = found.digest, found.media_type
        if not self.has(digest):
            raise StoreError(f"{self.root}: no manifest {digest}")
        data = self.path(digest).read_bytes()
        got = sha256_digest(data)
        if got != digest:
            raise StoreError(f"{self.root}: manifest {digest} has digest {got}; the store is "
                             "corrupt")
        return Manifest(media_type=manifest_type(data, declared), data=data, digest=digest)

    def has_manifest(self, digest: str) -> bool:
        return self.has(digest)

    def put_manifest(self, manifest: Manifest) -> Descriptor:
        self.put(manifest.digest, manifest.data)
        return _descriptor_of(manifest)

    def tag(self, name: str, descriptor: Descriptor) -> None:
        check_tag(name)
        if not self.has(descriptor.digest):
            raise StoreError(f"{self.root}: cannot tag {name!r}: no manifest {descriptor.digest}")
        annotations = {**descriptor.annotations, REF_NAME: name}
        entry = Descriptor(media_type=descriptor.media_type, digest=descriptor.digest,
                           size=descriptor.size, annotations=annotations,
                           artifact_type=descriptor.artifact_type,
                           platform=descriptor.platform)
        with self._locked():
            kept = [d for d in self._index() if d.annotations.get(REF_NAME) != name]
            _atomic_write(self.root, "index.json", _index_bytes([*kept, entry]))

    def tags(self) -> dict[str, Descriptor]:
        return {d.annotations[REF_NAME]: d for d in self._index() if REF_NAME in d.annotations}

    def _index(self) -> list[Descriptor]:
        where = f"{self.root}/index.json"
        try:
            doc = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            raise StoreError(f"{where}: missing; not an OCI image layout") from None
        except (OSError, ValueError) as e:
            raise StoreError(f"{where}: unreadable: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
            raise StoreError(f"{where}: not an OCI image index")
        return [Descriptor.from_json(d, where) for d in doc.get("manifests", [])]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise index.json updates between processes (flock on the layout folder)."""
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _index_bytes(descriptors: Sequence[Descriptor]) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": reg.OCI_INDEX,
           "manifests": [d.to_json() for d in descriptors]}
    return (json.dumps(doc, indent=2) + "\n").encode()


def _atomic_write(folder: Path, name: str, data: bytes) -> None:
    """``relock.files``' atomic write (signals held), failing as a StoreError."""
    from relock.errors import OutputError
    from relock.files import atomic_write_bytes

    try:
        atomic_write_bytes(folder / name, data)
    except OutputError as e:
        raise StoreError(str(e)) from None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(source: Path | BinaryIO | bytes | IO[bytes]) -> Iterator[bytes]:
    if isinstance(source, bytes):
        view = memoryview(source)
        for start in range(0, len(view), _CHUNK):
            yield bytes(view[start:start + _CHUNK])
        return
    if isinstance(source, Path):
        with source.open("rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk
        return
    while chunk := source.read(_CHUNK):
        yield chunk


def _digest(value: str) -> str:
    try:
        return check_digest(value)
    except RegistryError as e:
        raise StoreError(str(e)) from None


def _descriptor_of(manifest: Manifest) -> Descriptor:
    return Descriptor(media_type=manifest.media_type, digest=manifest.digest,
                      size=len(manifest.data), artifact_type=manifest.field("artifactType"))


# -- in a registry ---------------------------------------------------------------

class RegistryStore:
    """One repository of an OCI registry, used as a store (``oci://HOST/REPO``)."""

    def __init__(self, registry: reg.Registry, repo: str) -> None:
        self.registry = registry
        self.repo = repo
        self.url = f"oci://{registry.host}/{repo}"

    def has(self, digest: str) -> bool:
        return self.registry.has_blob(self.repo, _digest(digest))

    def local_path(self, digest: str) -> Path | None:
        return None

    def blob_size(self, digest: str) -> int | None:
        return self.registry.blob_size(self.repo, _digest(digest))

    def registry_repo(self) -> tuple[str, str]:
        return self.registry.host, self.repo

    def missing(self, digests: Iterable[str]) -> list[str]:
        return _missing(self, digests)

    def open(self, digest: str) -> IO[bytes]:
        return self.registry.blob(self.repo, _digest(digest))  # type: ignore[return-value]

    def put(self, digest: str, source: Path | BinaryIO | bytes, size: int | None = None,
            *, mount_from: str = "") -> bool:
        _digest(digest)
        if isinstance(source, bytes):
            import io

            if sha256_digest(source) != digest:
                raise StoreError(f"content for {digest} has another digest; refused")
            size, source = len(source), io.BytesIO(source)
        if size is None:
            if not isinstance(source, Path):
                raise StoreError(f"{self.url}: the size of {digest} must be known to upload it")
            size = source.stat().st_size
        how = self.registry.push_blob(self.repo, digest, source, size, mount_from=mount_from)
        return how != "exists"

    def manifest(self, ref: str) -> Manifest:
        return self.registry.manifest(self.repo, ref)

    def has_manifest(self, digest: str) -> bool:
        return self.registry.has_manifest(self.repo, digest)

    def put_manifest(self, manifest: Manifest) -> Descriptor:
        self.registry.push_manifest(self.repo, manifest.digest, manifest.media_type,
                                    manifest.data)
        return _descriptor_of(manifest)

    def tag(self, name: str, descriptor: Descriptor) -> None:
        check_tag(name)
        m = self.registry.manifest(self.repo, descriptor.digest)
        self.registry.push_manifest(self.repo, name, m.media_type, m.data)

    def tags(self) -> dict[str, Descriptor]:
        out = {}
        for name in self.registry.tags(self.repo):
            m = self.registry.manifest(self.repo, name)
            out[name] = _descriptor_of(m)
        return out


def open_store(where: str | Path, *, create: bool = False) -> Store:
    """The store at a folder (an OCI layout) or ``oci://HOST[:PORT]/REPO``."""
    text = str(where)
    if text.startswith("oci://"):
        rest = text[len("oci://"):].rstrip("/")
        host, _, repo = rest.partition("/")
        if not host or not repo:
            raise StoreError(f"{text}: a registry store is oci://HOST[:PORT]/REPO")
        try:
            ref = parse(f"{host}/{repo}")
        except RegistryError as e:
            raise StoreError(f"{text}: {e}") from None
        if ref.tag or ref.digest or ref.host != host:
            raise StoreError(f"{text}: name a repository, without tag or digest")
        return RegistryStore(reg.registry_for(host), ref.repo)
    if "://" in text:
        raise StoreError(f"{text}: a store is a folder or oci://HOST[:PORT]/REPO")
    return DirStore.open_layout(Path(text), create=create)


# -- copying -----------------------------------------------------------------------

@dataclass
class CopyStats:
    """What a copy moved: blobs and manifests written, bytes, and blobs already there."""

    blobs: int = 0
    manifests: int = 0
    bytes: int = 0
    skipped: int = 0

    def __iadd__(self, other: CopyStats) -> CopyStats:
        self.blobs += other.blobs
        self.manifests += other.manifests
        self.bytes += other.bytes
        self.skipped += other.skipped
        return self


def copy_blob(src: Store, dst: Store, desc: Descriptor) -> bool:
    """Copy one blob if ``dst`` lacks it; checked by digest on the way."""
    if dst.has(desc.digest):
        return False
    local = src.local_path(desc.digest)
    if local is not None:
        return dst.put(desc.digest, local, desc.size)
    here, there = src.registry_repo(), dst.registry_repo()
    if here is not None and there is not None and here[0] == there[0]:
        lazy = _Lazy(src, desc.digest)
        try:
            return dst.put(desc.digest, cast(BinaryIO, lazy), desc.size, mount_from=here[1])
        finally:
            lazy.close()
    stream = src.open(desc.digest)
    try:
        return dst.put(desc.digest, stream, desc.size)  # type: ignore[arg-type]
    finally:
        stream.close()


class _Lazy:
    """Opens the source blob only if the registry did not mount it."""

    def __init__(self, src: Store, digest: str) -> None:
        self._src, self._digest = src, digest
        self._stream: IO[bytes] | None = None

    def read(self, size: int = -1) -> bytes:
        if self._stream is None:
            self._stream = self._src.open(self._digest)
        return self._stream.read(size)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def _wanted(desc: Descriptor, platforms: Collection[str] | None) -> bool:
    """Whether the index entry ``desc`` is for one of ``platforms`` (None: any)."""
    if platforms is None:
        return True
    found = from_descriptor(desc.platform)
    return found is not None and any(found.matches(p) for p in platforms)


def copy_image(src: Store, dst: Store, digest: str, *, workers: int = 4,
               platforms: Collection[str] | None = None) -> CopyStats:
    """Copy manifest ``digest`` and all it points to, bytes unchanged.

    Blobs go first (``workers`` at a time), then the manifests, children
    before parents: an image manifest in ``dst`` means all below it is
    there, so a copy that was cut off is finished by running it again. With
    ``platforms`` (``linux/amd64``, ...) an index is copied whole but only
    the entries for those platforms are followed.
    """
    from concurrent.futures import ThreadPoolExecutor

    stats = CopyStats()
    order: list[Manifest] = []
    blobs: dict[str, Descriptor] = {}

    def walk(d: str) -> None:
        manifest = src.manifest(d)
        if any(m.digest == manifest.digest for m in order):
            return
        manifests, layers = children(manifest)
        there = dst.has_manifest(manifest.digest)
        if there and not manifests:
            stats.skipped += 1
            return
        # An index is small and may have been copied for fewer platforms: look inside.
        for child in manifests:
            if _wanted(child, platforms):
                walk(child.digest)
        for blob in layers:
            blobs.setdefault(blob.digest, blob)
        if there:
            stats.skipped += 1
        else:
            order.append(manifest)

    walk(digest)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = list(pool.map(lambda b: copy_blob(src, dst, b), blobs.values()))
    for blob, copied in zip(blobs.values(), done, strict=True):
        if copied:
            stats.blobs += 1
            stats.bytes += blob.size
        else:
            stats.skipped += 1
    for manifest in order:
        dst.put_manifest(manifest)
        stats.manifests += 1
        stats.bytes += len(manifest.data)
    return stats


def tag_platforms(desc: Descriptor) -> frozenset[str] | None:
    """The platforms a tag was copied for (``dev.relock.platforms``), or None for all."""
    text = desc.annotations.get(PLATFORMS)
    return frozenset(text.split(",")) if text else None


def copy_store(src: Store, dst: Store, names: Iterable[str] | None = None) -> CopyStats:
    """Copy every tag of ``src`` (or those named) with its content into ``dst``."""
    stats = CopyStats()
    tags = src.tags()
    for name in sorted(tags if names is None else names):
        if name not in tags:
            raise StoreError(f"{src.url}: no tag {name!r}")
        stats += copy_image(src, dst, tags[name].digest, platforms=tag_platforms(tags[name]))
        dst.tag(name, tags[name])
    return stats


# -- locks -------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredFile:
    """One file a lock names, as kept in a store."""

    kind: str  # deb, wheel or sdist
    name: str
    version: str
    filename: str
    digest: str
    size: int
    arch: str = ""

    def descriptor(self) -> Descriptor:
        if self.kind not in FILE_TYPES:
            raise StoreError(f"{self.filename}: unknown kind {self.kind!r}")
        annotations = {TITLE: self.filename, "dev.relock.kind": self.kind,
                       "dev.relock.name": self.name, "dev.relock.version": self.version}
        if self.arch:
            annotations["dev.relock.arch"] = self.arch
        return Descriptor(media_type=FILE_TYPES[self.kind], digest=self.digest,
                          size=self.size, annotations=annotations)


def lock_tag(lock_bytes: bytes) -> str:
    """The default tag of a lock's manifest: ``lock-<sha256 of the lock file>``."""
    return "lock-" + hashlib.sha256(lock_bytes).hexdigest()


def base_tag(digest: str) -> str:
    """The tag a vendored base image gets: ``base-<hex of its manifest digest>``."""
    return "base-" + _digest(digest).partition(":")[2]


def put_lock(store: Store, lock_bytes: bytes, files: Sequence[StoredFile], *,
             bases: Sequence[str] = (), tag: str = "") -> Descriptor:
    """Write a lock's manifest (its files must be in already) and tag it; its descriptor.

    ``bases`` are the base images' ``ref@digest``, kept as annotations (their
    content is tagged ``base-<hex>`` in the same store).
    """
    absent = store.missing(f.digest for f in files)
    if absent:
        first = next(f for f in files if f.digest == absent[0])
        raise StoreError(f"{store.url}: {first.filename} ({first.digest}) is not in the store")
    config_digest = sha256_digest(lock_bytes)
    store.put(config_digest, lock_bytes, len(lock_bytes))
    layers = sorted({f.digest: f for f in files}.values(),
                    key=lambda f: (f.kind, f.name, f.version, f.arch, f.filename))
    annotations = {f"dev.relock.base.{i}": b for i, b in enumerate(bases)}
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": reg.OCI_MANIFEST,
        "artifactType": LOCK_ARTIFACT,
        "config": {"mediaType": LOCK_CONFIG, "digest": config_digest,
                   "size": len(lock_bytes)},
        "layers": [f.descriptor().to_json() for f in layers],
    }
    if annotations:
        doc["annotations"] = annotations
    data = json.dumps(doc, indent=2, sort_keys=False).encode()
    manifest = Manifest(media_type=reg.OCI_MANIFEST, data=data, digest=sha256_digest(data))
    desc = store.put_manifest(manifest)
    store.tag(check_tag(tag or lock_tag(lock_bytes)), desc)
    return desc


def read_lock(store: Store, ref: str) -> tuple[bytes, list[StoredFile]]:
    """The lock file and files of the lock manifest ``ref`` (a tag or digest)."""
    manifest = store.manifest(ref)
    if manifest.field("artifactType") != LOCK_ARTIFACT:
        raise StoreError(f"{store.url}: {ref} is not a relock lock manifest")
    _, blobs = children(manifest)
    config, layers = blobs[0], blobs[1:]
    with store.open(config.digest) as f:
        lock_bytes = f.read()
    files = []
    for d in layers:
        a = d.annotations
        files.append(StoredFile(kind=a.get("dev.relock.kind", ""),
                                name=a.get("dev.relock.name", ""),
                                version=a.get("dev.relock.version", ""),
                                filename=a.get(TITLE, ""), digest=d.digest, size=d.size,
                                arch=a.get("dev.relock.arch", "")))
    return lock_bytes, files


# -- looking -----------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    """What a tag names: a lock, an image or an index, with its blob count and bytes."""

    kind: str
    manifests: int
    blobs: int
    bytes: int


def summarize(store: Store, digest: str, platforms: Collection[str] | None = None) -> Summary:
    """Walk the manifests under ``digest`` (reading no blob) and count what they name."""
    seen: set[str] = set()
    counts = {"manifests": 0, "blobs": 0, "bytes": 0}

    def walk(d: str) -> None:
        manifest = store.manifest(d)
        counts["manifests"] += 1
        counts["bytes"] += len(manifest.data)
        manifests, blobs = children(manifest)
        for child in manifests:
            if child.digest not in seen and _wanted(child, platforms):
                seen.add(child.digest)
                walk(child.digest)
        for b in blobs:
            if b.digest not in seen:
                seen.add(b.digest)
                counts["blobs"] += 1
                counts["bytes"] += b.size

    top = store.manifest(digest)
    if top.field("artifactType") == LOCK_ARTIFACT:
        kind = "lock"
    elif top.media_type in reg.INDEX_TYPES:
        kind = "index"
    else:
        kind = "image"
    walk(digest)
    return Summary(kind=kind, **counts)


# -- checking ----------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    digest: str
    what: str


def verify(store: Store) -> tuple[int, list[Problem]]:
    """Re-hash everything reachable from the store's tags; (blobs checked, problems)."""
    problems: list[Problem] = []
    seen: set[str] = set()

    def blob(d: Descriptor) -> None:
        if d.digest in seen:
            return
        seen.add(d.digest)
        try:
            with store.open(d.digest) as f:
                n = 0
                while chunk := f.read(_CHUNK):
                    n += len(chunk)
            if n != d.size:
                problems.append(Problem(d.digest, f"size {n}, descriptor says {d.size}"))
        except (StoreError, RegistryError) as e:
            problems.append(Problem(d.digest, str(e)))

    def walk(digest: str, platforms: frozenset[str] | None) -> None:
        if digest in seen:
            return
        seen.add(digest)
        try:
            m = store.manifest(digest)
            manifests, blobs = children(m)
        except (StoreError, RegistryError) as e:
            problems.append(Problem(digest, str(e)))
            return
        for child in manifests:
            if _wanted(child, platforms):
                walk(child.digest, platforms)
        for b in blobs:
            blob(b)

    for desc in store.tags().values():
        walk(desc.digest, tag_platforms(desc))
    return len(seen), problems
