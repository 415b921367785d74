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

from relock import bounds
from relock.errors import LimitError, RegistryError, StoreError, one_line
from relock.files import NotInsideError, Stopped, TooBigError, Tree, check_stopping
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
    "download": "application/vnd.relock.download.v1",  # a plain download: name is its URL
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


def manifest_type(data: bytes, declared: str = "", where: str = "a manifest") -> str:
    """The media type of manifest bytes: their ``mediaType``, else what they look like."""
    try:
        doc = reg.json_object(data, where)
    except RegistryError as e:
        raise StoreError(str(e)) from None
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

    def open_checked(self, digest: str, size: int | None = None) -> BinaryIO:
        """Blob ``digest`` as a file whose bytes (and ``size``) were checked before its
        first byte is handed out: for what leaves relock (an upload, a build step)."""
        ...

    def intact(self, digest: str) -> bool:
        """Whether blob ``digest`` is there with its bytes: a folder re-hashes its
        file; a registry checked them when they were uploaded."""
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

# What a folder store's files may hold is bounded by relock.bounds: MANIFEST (as a
# registry's), STORE_INDEX (index.json grows by some 300 bytes a tag), STORE_LAYOUT.


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
            if "sha256:" + self._hash.hexdigest() != self._digest:
                raise StoreError(f"{self._where}: {_CHANGED}")
        return data

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> _FileCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# A blob's own hash is never shown: it may be of a file that was put there.
_CHANGED = ("its bytes do not have this digest; refused (the store is corrupt: remove the "
            "blob and re-vendor)")


def _hash_file(f: IO[bytes]) -> str:
    h = hashlib.sha256()
    while chunk := f.read(_CHUNK):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


class DirStore:
    """An OCI image layout in a folder.

    Nothing below the folder is followed: ``blobs``, ``blobs/sha256``,
    ``.tmp``, ``index.json``, ``oci-layout`` and each blob must be a real
    folder or regular file (``relock.files.Tree``); a symbolic link, device
    or FIFO among them is refused in one line naming it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)
        self._tree = Tree(root)

    @classmethod
    def open_layout(cls, root: Path, create: bool = False) -> DirStore:
        store = cls(root)
        with _as_store_error(root):
            kind = store._tree.kind(("oci-layout",)) if root.is_dir() else "missing"
            if kind == "missing":
                if not create:
                    raise StoreError(f"{root}: not an OCI image layout (no oci-layout file); "
                                     "make it with `relock vendor`")
                root.mkdir(parents=True, exist_ok=True)
                with store._tree.folder(("blobs", "sha256"), create=True):
                    pass
                store._write(("index.json",), _index_bytes([]))
                store._write(("oci-layout",),
                             json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
                return store
            # The layout's folders are checked once here, so that a link among
            # them stops every command before it reads or writes anything.
            for folder in (("blobs",), ("blobs", "sha256"), (".tmp",)):
                with contextlib.suppress(FileNotFoundError), store._tree.folder(folder):
                    pass
            try:
                doc = bounds.load_json(store._tree.read(("oci-layout",), bounds.STORE_LAYOUT))
                version = doc.get("imageLayoutVersion")
            except (ValueError, AttributeError, TooBigError):
                version = None
        if version != LAYOUT_VERSION:
            raise StoreError(f"{root}: unsupported OCI layout version {version!r:.40}")
        return store

    def _parts(self, digest: str) -> tuple[str, str, str]:
        algo, _, hexd = _digest(digest).partition(":")
        return "blobs", algo, hexd

    def path(self, digest: str) -> Path:
        """Where blob ``digest`` lies (whether or not it is there)."""
        return self.root.joinpath(*self._parts(digest))

    def has(self, digest: str) -> bool:
        with _as_store_error(self.root):
            return self._tree.kind(self._parts(digest)) == "file"

    def intact(self, digest: str) -> bool:
        """Whether blob ``digest`` is there with its bytes (re-hashed now)."""
        with _as_store_error(self.root):
            parts = self._parts(digest)
            if self._tree.kind(parts) == "missing":
                return False
            with self._tree.open(parts) as f:
                return _hash_file(f) == digest

    def local_path(self, digest: str) -> Path:
        return self.path(digest)

    def blob_size(self, digest: str) -> int | None:
        with _as_store_error(self.root):
            try:
                with self._tree.open(self._parts(digest)) as f:
                    return os.fstat(f.fileno()).st_size
            except FileNotFoundError:
                return None

    def registry_repo(self) -> tuple[str, str] | None:
        return None

    def missing(self, digests: Iterable[str]) -> list[str]:
        return _missing(self, digests)

    def _open_file(self, digest: str) -> BinaryIO:
        with _as_store_error(self.root):
            try:
                return self._tree.open(self._parts(digest))
            except FileNotFoundError:
                raise StoreError(f"{self.root}: no blob {digest}") from None

    def open(self, digest: str) -> IO[bytes]:
        f = self._open_file(digest)
        return _FileCheck(f, digest, f"{self.root}: {digest}")  # type: ignore[return-value]

    def open_checked(self, digest: str, size: int | None = None) -> BinaryIO:
        f = self._open_file(digest)
        try:
            with _as_store_error(self.root):
                found = os.fstat(f.fileno()).st_size
                if size is not None and found != size:
                    raise StoreError(f"{self.root}: {digest}: {found} bytes, its descriptor "
                                     f"says {size}; refused (the store is corrupt: remove "
                                     "the blob and re-vendor)")
                if _hash_file(f) != digest:
                    raise StoreError(f"{self.root}: {digest}: {_CHANGED}")
                f.seek(0)
        except BaseException:
            f.close()
            raise
        return f

    def put(self, digest: str, source: Path | BinaryIO | bytes, size: int | None = None,
            *, mount_from: str = "") -> bool:
        parts = self._parts(digest)
        if self.intact(digest):
            return False
        # Absent, or there with other bytes: written (again) from ``source``.
        try:
            with _as_store_error(self.root):
                with self._tree.folder(parts[:-1], create=True):
                    pass
                out, name = self._tree.temp((".tmp",), parts[-1][:16] + ".")
        except StoreError:
            raise
        except OSError as e:
            raise StoreError(f"{self.root}: cannot write here: {e.strerror or e}") from None
        h = hashlib.sha256()
        written = 0
        try:
            with out:
                for chunk in _chunks(source):
                    check_stopping(str(self.root))
                    h.update(chunk)
                    if size is not None and written + len(chunk) > size:
                        # Longer than its descriptor says: not one byte more is written.
                        raise LimitError(bounds.over(f"{self.root}: {digest}", "the blob",
                                                     f"the {size} bytes its descriptor says"))
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            got = "sha256:" + h.hexdigest()
            if got != digest:
                raise StoreError(f"content for {digest} has digest {got}; refused")
            if size is not None and written != size:
                raise StoreError(f"{digest}: got {written} bytes, expected {size}; refused")
            with _as_store_error(self.root):
                self._tree.replace((".tmp", name), parts)
        except Stopped:
            self._tree.unlink((".tmp", name))
            raise
        except OSError as e:
            self._tree.unlink((".tmp", name))
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreError(
                    f"{self.root}: disk full while writing {digest} ({written} bytes in); "
                    "nothing partial was kept; free space and run again"
                ) from None
            raise StoreError(f"{self.root}: cannot write {digest}: {e.strerror or e}") from None
        except BaseException:
            self._tree.unlink((".tmp", name))
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
        with _as_store_error(self.root):
            try:
                data = self._tree.read(self._parts(digest), bounds.MANIFEST)
            except FileNotFoundError:
                raise StoreError(f"{self.root}: no manifest {digest}") from None
            except TooBigError:
                raise bounds.too_big(f"{self.root}: manifest {digest}", "the manifest",
                                     bounds.MANIFEST) from None
        if sha256_digest(data) != digest:
            raise StoreError(f"{self.root}: manifest {digest}: {_CHANGED}")
        return Manifest(media_type=manifest_type(data, declared,
                                                 f"{self.root}: manifest {digest}"),
                        data=data, digest=digest)

    def has_manifest(self, digest: str) -> bool:
        return self.intact(digest)

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
            self._write(("index.json",), _index_bytes([*kept, entry]))

    def tags(self) -> dict[str, Descriptor]:
        return {d.annotations[REF_NAME]: d for d in self._index() if REF_NAME in d.annotations}

    def _index(self) -> list[Descriptor]:
        where = f"{self.root}/index.json"
        with _as_store_error(self.root):
            try:
                doc = bounds.load_json(self._tree.read(("index.json",), bounds.STORE_INDEX))
            except FileNotFoundError:
                raise StoreError(f"{where}: missing; not an OCI image layout") from None
            except TooBigError:
                raise bounds.too_big(where, "the file", bounds.STORE_INDEX) from None
            except bounds.JSONTooDeep as e:
                raise LimitError(f"{where}: {e}; refused") from None
            except ValueError as e:
                raise StoreError(f"{where}: unreadable: {one_line(e)}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
            raise StoreError(f"{where}: not an OCI image index")
        return [Descriptor.from_json(d, where) for d in doc.get("manifests", [])]

    def _write(self, parts: tuple[str, ...], data: bytes) -> None:
        """Write one layout file whole (its temp file in ``.tmp``), failing as a StoreError."""
        with _as_store_error(self.root):
            try:
                self._tree.write_atomic(parts, data, (".tmp",))
            except NotInsideError:
                raise
            except OSError as e:
                raise StoreError(f"{self._tree.show(parts)}: cannot write: "
                                 f"{e.strerror or e}; the old file is kept") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise index.json updates between processes (flock on the layout folder)."""
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


@contextlib.contextmanager
def _as_store_error(root: Path) -> Iterator[None]:
    """A layout entry that is a link (or not what it should be) as one StoreError line."""
    try:
        yield
    except NotInsideError as e:
        raise StoreError(f"{e.filename}: {e.strerror}") from None
    except (NotADirectoryError, PermissionError) as e:
        raise StoreError(f"{e.filename or root}: {e.strerror or e}") from None


def _index_bytes(descriptors: Sequence[Descriptor]) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": reg.OCI_INDEX,
           "manifests": [d.to_json() for d in descriptors]}
    return (json.dumps(doc, indent=2) + "\n").encode()


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

    def open_checked(self, digest: str, size: int | None = None) -> BinaryIO:
        return spooled(self.open(digest), f"{self.url}@{digest}", size)

    def intact(self, digest: str) -> bool:
        return self.has(digest)

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


def spooled(stream: IO[bytes], where: str, size: int | None = None) -> BinaryIO:
    """The bytes of a checking ``stream`` in an unnamed temp file (in the cache's
    folder), at offset 0, once all of them were read and checked."""
    from relock.files import cache_home

    folder = cache_home()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # No name: nothing is left behind, whatever ends the run.
        out = cast(BinaryIO, tempfile.TemporaryFile(dir=folder))  # noqa: SIM115
    except OSError as e:
        stream.close()
        raise StoreError(f"cannot stage {where} in {folder}: {e.strerror or e}") from None
    try:
        with stream:
            n = 0
            while chunk := stream.read(_CHUNK):
                check_stopping(where)
                out.write(chunk)
                n += len(chunk)
                if size is not None and n > size:
                    break
        if size is not None and n != size:
            raise StoreError(f"{where}: not the {size} bytes its descriptor says; refused")
        out.seek(0)
    except Stopped:
        out.close()
        raise
    except OSError as e:
        out.close()
        raise StoreError(f"cannot stage {where} in {folder}: {e.strerror or e}") from None
    except BaseException:
        out.close()
        raise
    return out


def copy_blob(src: Store, dst: Store, desc: Descriptor) -> bool:
    """Copy one blob if ``dst`` lacks it (or holds other bytes under its digest).

    Into a folder the bytes stream straight: the folder hashes them before
    they enter. Into a registry no byte is sent before the whole blob was
    checked (``open_checked``: a folder's file re-hashed, a registry's blob
    staged), so a store's file that is not what its digest says never leaves.
    """
    if dst.intact(desc.digest):
        return False
    here, there = src.registry_repo(), dst.registry_repo()
    if there is None:
        stream = src.open(desc.digest)
        try:
            return dst.put(desc.digest, stream, desc.size)  # type: ignore[arg-type]
        finally:
            stream.close()
    if here is not None and here[0] == there[0]:
        lazy = _Lazy(src, desc)
        try:
            return dst.put(desc.digest, cast(BinaryIO, lazy), desc.size, mount_from=here[1])
        finally:
            lazy.close()
    with src.open_checked(desc.digest, desc.size) as f:
        return dst.put(desc.digest, f, desc.size)


class _Lazy:
    """Opens the source blob, checked, only if the registry did not mount it."""

    def __init__(self, src: Store, desc: Descriptor) -> None:
        self._src, self._desc = src, desc
        self._stream: IO[bytes] | None = None

    def read(self, size: int = -1) -> bytes:
        if self._stream is None:
            self._stream = self._src.open_checked(self._desc.digest, self._desc.size)
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
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        done = list(pool.map(lambda b: copy_blob(src, dst, b), blobs.values()))
    except BaseException:
        # A failed blob, Ctrl-C or SIGTERM: start no other; the running ones
        # end whole or give up (relock.files.STOPPING), leaving no temp file.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
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

    kind: str  # deb, wheel, sdist or download
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
    """The default tag of a lock's manifest: ``lock-<sha256 of the lock file>``, the
    ``[[image]]`` records a reproducible build adds left out (they change no file)."""
    from relock.lock.lockfile import inputs_text

    return "lock-" + hashlib.sha256(inputs_text(lock_bytes)).hexdigest()


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
    if config.size > bounds.LOCK_FILE:
        raise bounds.too_big(f"{store.url}: {ref}", "the lock", bounds.LOCK_FILE)
    with store.open(config.digest) as f:
        lock_bytes = f.read(config.size + 1)
        if len(lock_bytes) > config.size:
            raise LimitError(bounds.over(f"{store.url}: {ref}", "the lock",
                                         f"the {config.size} bytes its descriptor says"))
        f.read(1)  # its end, where its digest is checked
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
