"""``relock vendor``: every byte a lock's rebuild needs, into a store.

Into a store (``relock.store.store``: an OCI layout folder or ``oci://HOST/REPO``)
go, each checked against the lock's sha256 before it enters:

* every locked ``.deb`` the base images do not already hold (all of them
  when the engine cannot say), through ``AptArchive.fetch_deb``: the store
  itself first, then the snapshot, the image's live sources, the mirrors;
* every locked Python file that installs on the lock's platform and
  interpreter (``relock.store.wheeltags``), from the configured index;
* the base images, byte for byte (``relock.store.baseimage.vendor_base``), and
  the frontend image a ``# syntax=`` line names, pinned in the lock, beside them;

and then a lock manifest ties them together (``store.put_lock``). What the
store has is re-hashed and not fetched again; a blob the store holds with
other bytes than its digest is fetched again and replaced (with a warning),
so that ``relock store verify`` afterwards agrees; a blob enters whole or not
at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from packaging.utils import canonicalize_name

from relock.blobs import BlobCache
from relock.errors import HashMismatchError, RelockError, StoreError
from relock.lock.lockfile import AptPackage, Base, Download, Lock
from relock.progress import Progress, quiet
from relock.store.store import Store, StoredFile

if TYPE_CHECKING:
    from packaging.tags import Tag

    from relock.build.view import PipFile, PipSource
    from relock.upstream.archive import AptArchive


class VendorError(RelockError):
    """A lock cannot be vendored as asked."""


@dataclass(frozen=True)
class VendorOptions:
    """Where files may come from, and how hard to try."""

    use_snapshot: bool = True
    snapshot_url: str | None = None
    mirrors: tuple[str, ...] = ()
    allow_missing: bool = False
    workers: int = 4
    tag: str = ""  # the lock manifest's tag [default: lock-<sha256 of the lock file>]
    # The engine's registry mirrors, asked first for Docker Hub base images.
    registry_mirrors: tuple[str, ...] = ()


@dataclass
class VendorReport:
    """What a vendor run did, for its summary."""

    files: dict[str, int] = field(default_factory=dict)  # source -> count
    bytes: dict[str, int] = field(default_factory=dict)  # source -> bytes
    base_blobs: int = 0
    base_bytes: int = 0
    base_skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    retries: int = 0
    waited: float = 0.0
    down: dict[str, str] = field(default_factory=dict)  # origin -> why
    tag: str = ""
    seconds: float = 0.0

    def add(self, source: str, size: int) -> None:
        self.files[source] = self.files.get(source, 0) + 1
        self.bytes[source] = self.bytes.get(source, 0) + size

    @property
    def total_files(self) -> int:
        return sum(self.files.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    @property
    def fetched_bytes(self) -> int:
        """Bytes that came from outside the store."""
        return sum(n for s, n in self.bytes.items() if s != "store")


@dataclass(frozen=True)
class _Job:
    """One file to put into the store."""

    stored: StoredFile
    what: str  # how a person names it: "libfoo 1.2-3 (amd64)", "six 1.17.0 (six-...whl)"
    fetch: Callable[[], str]  # puts the file into the store; returns where it came from


# -- what the lock names ------------------------------------------------------------

def debs_to_vendor(lock: Lock, installed: set[tuple[str, str, str]] | None,
                   allow_missing: bool, warnings: list[str]) -> list[AptPackage]:
    """The locked .debs the bases do not hold (all if ``installed`` is None), hashed."""
    from relock.build.rebuild import needed_debs

    unhashed = [p for p in lock.apt if not p.sha256 or not p.filename]
    if unhashed and (installed is None or any(
            (p.name, p.version, p.arch) not in installed for p in unhashed)):
        todo = [p for p in unhashed
                if installed is None or (p.name, p.version, p.arch) not in installed]
        names = ", ".join(f"{p.name} {p.version} ({p.arch})" for p in todo[:5])
        more = f" and {len(todo) - 5} more" if len(todo) > 5 else ""
        text = (f"the lock has no .deb sha256 for {names}{more} (installed from a local "
                "file?)")
        if not allow_missing:
            raise VendorError(f"{text}; re-freeze without --no-archive if it was frozen so "
                              "(a local .deb is on no archive), or vendor the rest with "
                              "--allow-missing")
        warnings.append(f"{text}: not vendored; a rebuild from the store will lack it")
    kept = tuple(p for p in lock.apt if p.sha256 and p.filename)
    return needed_debs(dataclasses.replace(lock, apt=kept), installed or set())


def _pip_wanted(lock: Lock) -> dict[tuple[str, str], tuple[frozenset[str], list[str]]]:
    """(name, version) -> (locked sha256s, environments it is installed in)."""
    out: dict[tuple[str, str], tuple[frozenset[str], list[str]]] = {}
    for p in lock.pip:
        if p.kind == "context":  # the project's own: built from the context, on no index
            continue
        key = (str(canonicalize_name(p.name)), p.version)
        hashes = frozenset(h.split(":", 1)[1] for h in p.hashes if h.startswith("sha256:"))
        old_hashes, envs = out.get(key, (frozenset(), []))
        out[key] = (old_hashes | hashes, [*envs, p.env])
    return out


def pip_files(lock: Lock, source: PipSource, allow_missing: bool, warnings: list[str],
              workers: int = 4) -> list[PipFile]:
    """The locked Python files that install in the image (``relock.store.wheeltags``)."""
    from relock.store.wheeltags import installable, lock_tags

    wanted = _pip_wanted(lock)
    problems: list[str] = []
    unhashed = sorted(f"{n} {v}" for (n, v), (h, _) in wanted.items() if not h)
    if unhashed:
        problems.append(f"no sha256 for {', '.join(unhashed[:5])}"
                        + (f" and {len(unhashed) - 5} more" if len(unhashed) > 5 else ""))
    tags_of: dict[str, list[Tag]] = {}

    def tags(env: str) -> list[Tag]:
        if env not in tags_of:
            tags_of[env] = lock_tags(lock, env)
        return tags_of[env]

    def one(key: tuple[str, str]) -> tuple[tuple[str, str], list[PipFile]]:
        hashes, _ = wanted[key]
        return key, source.files(key[0], {key[1]: hashes})

    todo = [k for k, (h, _) in sorted(wanted.items()) if h]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = list(pool.map(one, todo))
    out: list[PipFile] = []
    for (name, version), files in found:
        envs = wanted[(name, version)][1]
        if not files:
            problems.append(f"{name} {version}: no file with a locked sha256 is on the index")
            continue
        fits: dict[str, PipFile] = {}
        for env in envs:
            for f in installable(files, tags(env)):
                fits[f.sha256] = f
        if not fits:
            names = ", ".join(f.filename for f in files[:3])
            problems.append(f"{name} {version}: none of its locked files ({names}) installs "
                            f"on {lock.platform} with the image's Python")
            continue
        out += sorted(fits.values(), key=lambda f: f.filename)
    if problems:
        if not allow_missing:
            raise VendorError("cannot vendor every Python file: " + "; ".join(problems)
                              + "; re-freeze, or vendor the rest with --allow-missing")
        warnings += [f"not vendored: {p}" for p in problems]
    return out


# -- putting files into the store -------------------------------------------------------

class _HashingReader:
    """A file-like over chunks that hashes what it hands out."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = b""
        self.sha256 = hashlib.sha256()
        self.exhausted = False

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.exhausted = True
                break
            self._buf += chunk
        if size < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:size], self._buf[size:]
        self.sha256.update(data)
        return data


def put_chunks(store: Store, sha256: str, chunks: Iterable[bytes], where: str,
               staging: BlobCache) -> None:
    """Put the bytes of ``chunks`` into ``store`` as blob ``sha256`` if they hash to it.

    A store of local files (a folder) takes them straight (written to its
    ``.tmp``, checked, renamed); any other (a registry) needs the size up front,
    so they are staged in the local blob cache first.
    """
    digest = "sha256:" + sha256
    if store.local_path(digest) is not None:
        reader = _HashingReader(chunks)
        try:
            store.put(digest, reader)  # type: ignore[arg-type]
        except StoreError:
            got = reader.sha256.hexdigest()
            if reader.exhausted and got != sha256:
                raise HashMismatchError(f"{where}: the bytes have sha256 {got[:16]}..., "
                                        f"the lock says {sha256[:16]}...; refused") from None
            raise
        return
    path = staging.put_stream(sha256, chunks, where)
    store.put(digest, path, path.stat().st_size)


class VendorInterrupted(RelockError):
    """The run was interrupted; a file being written was dropped."""


def until(stop: threading.Event, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks``, cut off (with VendorInterrupted) as soon as ``stop`` is set."""
    for chunk in chunks:
        if stop.is_set():
            raise VendorInterrupted("interrupted")
        yield chunk


class StoreBlobs(BlobCache):
    """A store of local files (a folder) seen as the ``BlobCache`` that
    ``AptArchive.fetch_deb`` fills."""

    def __init__(self, store: Store, stop: threading.Event, root: Path) -> None:
        super().__init__(root)  # the store's blobs folder: BlobCache names it in errors
        self.store = store
        self.stop = stop

    def _file(self, sha256: str) -> Path:
        found = self.store.local_path("sha256:" + sha256)
        if found is None:
            raise StoreError(f"{self.store.url}: keeps no local files to fill")
        return found

    def path(self, sha256: str) -> Path | None:
        found = self._file(sha256)
        return found if self.store.intact("sha256:" + sha256) else None

    def put_stream(self, sha256: str, chunks: Iterable[bytes], where: str) -> Path:
        put_chunks(self.store, sha256, until(self.stop, chunks), where, self)
        return self._file(sha256)


class _Stoppable(BlobCache):
    """The local blob cache, its writes cut off when the run is interrupted."""

    def __init__(self, inner: BlobCache, stop: threading.Event) -> None:
        super().__init__(inner.root)
        self.inner = inner
        self.stop = stop

    def path(self, sha256: str) -> Path | None:
        return self.inner.path(sha256)

    def put_stream(self, sha256: str, chunks: Iterable[bytes], where: str) -> Path:
        return self.inner.put_stream(sha256, until(self.stop, chunks), where)


def _deb_job(p: AptPackage, lock: Lock, store: Store, archive: AptArchive,
             options: VendorOptions, staging: BlobCache, stop: threading.Event) -> _Job:
    from relock.upstream.archive import SNAPSHOT_URLS

    version = p.version.split(":", 1)[-1]
    stored = StoredFile(kind="deb", name=p.name, version=p.version,
                        filename=f"{p.name}_{version}_{p.arch}.deb",
                        digest="sha256:" + p.sha256, size=0, arch=p.arch)
    snapshot = lock.snapshot if options.use_snapshot else ""
    snapshot_url = options.snapshot_url or SNAPSHOT_URLS.get(lock.distro.id)

    def fetch() -> str:
        local = store.local_path(stored.digest)  # .../blobs/sha256/<hex>, or None
        cache = staging if local is None else StoreBlobs(store, stop, local.parents[1])
        path, where = archive.fetch_deb(p, lock.apt_sources, snapshot, cache,
                                        snapshot_url=snapshot_url)
        if local is None:
            store.put(stored.digest, path, path.stat().st_size)
        return "local cache" if where == "cache" else where

    return _Job(stored, f"{p.name} {p.version} ({p.arch})", fetch)


def _pip_job(f: PipFile, store: Store, source: PipSource, staging: BlobCache,
             stop: threading.Event) -> _Job:
    kind = "wheel" if f.filename.endswith(".whl") else "sdist"
    stored = StoredFile(kind=kind, name=f.name, version=f.version, filename=f.filename,
                        digest="sha256:" + f.sha256, size=0)

    def fetch() -> str:
        hit = staging.path(f.sha256)
        if hit is not None:
            put_chunks(store, f.sha256, until(stop, _file_chunks(hit)), f.filename, staging)
            return "local cache"
        stream, _ = source.open(f)
        try:
            put_chunks(store, f.sha256, until(stop, _stream_chunks(stream)),
                       f"{f.filename} from the index", staging)
        finally:
            stream.close()
        return "index"

    return _Job(stored, f"{f.name} {f.version} ({f.filename})", fetch)


def _download_job(d: Download, store: Store, staging: BlobCache,
                  stop: threading.Event) -> _Job:
    from relock.upstream.download import fetch_checked

    name = posixpath.basename(urllib.parse.urlsplit(d.url).path) or "download"
    stored = StoredFile(kind="download", name=d.url, version="", filename=name,
                        digest="sha256:" + d.sha256, size=0)

    def fetch() -> str:
        hit = staging.path(d.sha256)
        where = "local cache"
        if hit is None:
            hit, where = fetch_checked(d.url, d.sha256, staging), "its URL"
        put_chunks(store, d.sha256, until(stop, _file_chunks(hit)), d.url, staging)
        return where

    return _Job(stored, f"{d.url} (a plain download)", fetch)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            yield chunk


def _stream_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(1 << 16):
        yield chunk


def _size(store: Store, digest: str) -> int:
    return store.blob_size(digest) or 0


def _run(jobs: Sequence[_Job], store: Store, workers: int, report: VendorReport,
         progress: Progress, stop: threading.Event) -> list[StoredFile]:
    """Each job once, ``workers`` at a time; the store first. Stops all on the first error."""
    lock = threading.Lock()
    done: list[StoredFile] = []
    counter = {"n": 0, "bytes": 0}
    total = len(jobs)

    def one(job: _Job) -> None:
        if stop.is_set():
            return
        # What the store holds is re-hashed, not taken on its name: a blob with
        # other bytes is fetched again and replaced.
        if store.intact(job.stored.digest):
            where = "store"
        else:
            if store.has(job.stored.digest):
                with lock:
                    report.warnings.append(f"{job.what}: the store's copy did not have its "
                                           "sha256; fetched again and replaced")
            where = job.fetch()
        size = _size(store, job.stored.digest)
        with lock:
            report.add(where, size)
            counter["n"] += 1
            counter["bytes"] += size
            done.append(dataclasses.replace(job.stored, size=size))
            n, mb = counter["n"], counter["bytes"] / 1e6
        if where != "store":
            progress(f"[{n}/{total}] {mb:.1f} MB: {job.what} from {where}")

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vendor")
    futures: list[Future[None]] = []
    try:
        futures = [pool.submit(one, j) for j in jobs]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for fut in finished:
            err = fut.exception()
            if err is not None:
                raise err
        for fut in futures:
            fut.result()
    except BaseException:
        # Ctrl-C, SIGTERM or a failed file: start nothing new, let running
        # writes finish or clean up (a blob enters whole or not at all).
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return done


# -- the whole run ----------------------------------------------------------------------

def vendor(lock: Lock, lock_bytes: bytes, store: Store, options: VendorOptions,
           installed: set[tuple[str, str, str]] | None, *,
           pip_source: PipSource | None = None, archive: AptArchive | None = None,
           staging: BlobCache | None = None, progress: Progress = quiet) -> VendorReport:
    """Fetch into ``store`` what a rebuild of ``lock`` needs, then tie it with a lock manifest.

    ``installed``: (name, version, arch) of the packages the base images
    hold (those .debs are not needed); None when the engine could not say,
    which vendors every locked .deb. ``pip_source`` defaults to the
    configured index, ``archive`` to the image's sources and the mirrors.
    """
    from relock.store.baseimage import vendor_base
    from relock.store.store import put_lock
    from relock.upstream.archive import Archive
    from relock.upstream.archive import default_cache_dir as apt_cache_dir

    started = time.monotonic()
    report = VendorReport()
    stop = threading.Event()
    staging = _Stoppable(staging or BlobCache(), stop)
    if archive is None:
        archive = Archive(apt_cache_dir(), mirrors=options.mirrors)
    debs = debs_to_vendor(lock, installed, options.allow_missing, report.warnings)
    if lock.pip:
        if pip_source is None:
            from relock.build.view import IndexSource
            from relock.upstream.index import Index, pip_config

            pip_source = IndexSource(Index(pip_config()))
        wheels = pip_files(lock, pip_source, options.allow_missing, report.warnings,
                           options.workers)
    else:
        wheels = []
    bases = _bases(lock, options.allow_missing, report.warnings)
    images = [(b.pinned, "base") for b in bases]
    if lock.frontend is not None and lock.frontend.pinned not in {r for r, _ in images}:
        images.append((lock.frontend.pinned, "frontend"))
    frontend = " and the frontend image" if lock.frontend is not None else ""
    plain = f", {len(lock.download)} plain downloads" if lock.download else ""
    progress(f"vendoring {len(debs)} .deb files, {len(wheels)} Python files{plain} and "
             f"{len(bases)} base image(s){frontend} into {store.url}")

    jobs = [_deb_job(p, lock, store, archive, options, staging, stop) for p in debs]
    if pip_source is not None:
        jobs += [_pip_job(f, store, pip_source, staging, stop) for f in wheels]
    jobs += [_download_job(d, store, staging, stop) for d in lock.download]
    files = _run(jobs, store, options.workers, report, progress, stop)

    refs = []
    for ref, what in images:
        # A multi-platform base (or frontend) is kept whole: a registry the build pulls
        # from takes an image index only with every image it names.
        _, stats = vendor_base(ref, store, mirrors=options.registry_mirrors)
        report.base_blobs += stats.blobs + stats.manifests
        report.base_bytes += stats.bytes
        report.base_skipped += stats.skipped
        progress(f"{what} {ref}: {stats.blobs + stats.manifests} blobs "
                 f"({stats.bytes / 1e6:.1f} MB) copied, {stats.skipped} already in the store")
        refs.append(ref)
    desc = put_lock(store, lock_bytes, files, bases=refs, tag=options.tag)
    report.tag = options.tag or _tag_of(store, desc.digest)
    report.retries = archive.retries
    report.waited = archive.waited
    report.down = archive.down_hosts()
    report.warnings += archive.warnings
    report.seconds = time.monotonic() - started
    return report


def _bases(lock: Lock, allow_missing: bool, warnings: list[str]) -> list[Base]:
    seen: set[str] = set()
    out = []
    for base in lock.base:
        if not base.digest:
            text = f"base image {base.ref} has no registry digest in the lock"
            if not allow_missing:
                raise VendorError(f"{text}; push it to a registry and re-freeze, or vendor "
                                  "the rest with --allow-missing")
            warnings.append(f"{text}: not vendored")
            continue
        if base.digest not in seen:
            seen.add(base.digest)
            out.append(base)
    return out


def _tag_of(store: Store, digest: str) -> str:
    for name, desc in store.tags().items():
        if desc.digest == digest and name.startswith("lock-"):
            return name
    return ""


def summary(report: VendorReport) -> list[str]:
    """The lines a person reads at the end of a vendor run."""
    sources = ", ".join(f"{report.files[s]} from {s} ({report.bytes[s] / 1e6:.1f} MB)"
                        for s in sorted(report.files, key=lambda s: (s != "store", s)))
    lines = [f"{report.total_files} files ({report.total_bytes / 1e6:.1f} MB) in the store: "
             f"{sources or 'none'}",
             f"base images: {report.base_blobs} blobs ({report.base_bytes / 1e6:.1f} MB) "
             f"copied, {report.base_skipped} already there"]
    if report.retries:
        lines.append(f"{report.retries} requests answered 429/503 and were retried "
                     f"(waited {report.waited:.1f} s, as Retry-After asked)")
    for origin, why in sorted(report.down.items()):
        lines.append(f"{origin} was down ({why}); the next source served instead")
    lines.append(f"lock manifest tagged {report.tag}; "
                 f"{report.fetched_bytes / 1e6:.1f} MB fetched in {report.seconds:.1f} s")
    return lines
