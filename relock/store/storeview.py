"""The locked view backed by a store: a rebuild with nothing upstream.

``relock build --store`` and ``relock serve --store`` serve the same locked
view (``relock.build.view``) as the upstream rebuild, but every byte comes from a
store that ``relock vendor`` filled: the ``.deb`` files (each re-hashed
before the view serves it), the Python files (``StoreSource``, from the lock
manifest's layers; the view checks them as they stream), and the base images,
published from the store into the registry the engine pulls from, so that
``FROM name@digest`` resolves to the same digest. No Archive, no Index: a
file missing from the store is an error before anything is built.
``FromStore`` is the rebuild's ``ViewSource`` for a store; the caller that
chose the store hands it to ``relock.build.rebuild``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

from packaging.utils import canonicalize_name

from relock import bounds
from relock.blobs import BlobCache
from relock.errors import BaseImageError, HashMismatchError, RelockError, StoreError
from relock.files import TooBigError, read_regular
from relock.lock.lockfile import AptPackage, Download, Lock
from relock.progress import Progress, quiet
from relock.store.store import Store, StoredFile, lock_tag, open_store, read_lock

if TYPE_CHECKING:
    from relock.build.view import AptFile, LockedView, PipFile
    from relock.image.engine import Engine


class MissingFromStoreError(StoreError):
    """A file the rebuild needs is not in the store."""


class StoreSource:
    """The Python files of a lock manifest, as the view's ``PipSource``."""

    def __init__(self, store: Store, files: Sequence[StoredFile]) -> None:
        self.store = store
        self.by_name: dict[str, list[StoredFile]] = {}
        for f in files:
            if f.kind in ("wheel", "sdist"):
                self.by_name.setdefault(str(canonicalize_name(f.name)), []).append(f)

    def files(self, name: str, versions: Mapping[str, frozenset[str]]) -> list[PipFile]:
        from relock.build.view import PipFile

        version_of = {h: v for v, hashes in versions.items() for h in hashes}
        out = {}
        for f in self.by_name.get(name, []):
            sha = f.digest.partition(":")[2]
            if sha in version_of:
                out[sha] = PipFile(name, version_of[sha], f.filename, sha)
        return sorted(out.values(), key=lambda f: f.filename)

    def open(self, file: PipFile) -> tuple[BinaryIO, int | None]:
        size = next((f.size for f in self.by_name.get(file.name, [])
                     if f.digest == "sha256:" + file.sha256), None)
        # Checked whole before the view relays a byte of it into the build.
        try:
            return self.store.open_checked("sha256:" + file.sha256, size), size
        except StoreError as e:
            raise HashMismatchError(f"{file.filename} in the store: {e}") from None


class StoreDownloads:
    """The lock's plain downloads from the store, as the view's ``DownloadSource``."""

    def __init__(self, store: Store, files: Sequence[StoredFile]) -> None:
        self.store = store
        self.sizes = {f.digest: f.size for f in files if f.kind == "download"}

    def open(self, download: Download) -> tuple[IO[bytes], int]:
        digest = "sha256:" + download.sha256
        size = self.sizes.get(digest, download.size)
        try:
            return self.store.open_checked(digest, size), size
        except StoreError as e:
            raise HashMismatchError(f"{download.url} in the store: {e}") from None


def lock_files(store: Store, lock_path: str) -> list[StoredFile]:
    """The files of the lock manifest ``relock vendor`` wrote for the lock at ``lock_path``."""
    try:
        data = read_regular(Path(lock_path), bounds.LOCK_FILE)
    except TooBigError:
        raise bounds.too_big(lock_path, "the lock file", bounds.LOCK_FILE) from None
    except OSError as e:
        raise StoreError(f"{lock_path}: cannot read: {e.strerror or e}") from None
    tag = lock_tag(data)
    if tag not in store.tags():
        raise MissingFromStoreError(
            f"{store.url} has nothing for {lock_path} (no tag {tag}); fill it with: "
            f"relock vendor --lock {lock_path} --store {store.url}")
    _, files = read_lock(store, tag)
    return files


def check_complete(store: Store, files: Sequence[StoredFile], lock: Lock) -> None:
    """Every file of the lock manifest and every locked Python version is in the store."""
    absent = set(store.missing(f.digest for f in files))
    problems = [f"{f.name} {f.version}" + (f" ({f.arch})" if f.arch else f" ({f.filename})")
                for f in files if f.digest in absent]
    stored = {(str(canonicalize_name(f.name)), f.version) for f in files
              if f.kind in ("wheel", "sdist")}
    problems += sorted({f"{p.name} {p.version} (no file vendored)" for p in lock.pip
                        if p.kind != "context"
                        and (str(canonicalize_name(p.name)), p.version) not in stored})
    vendored = {f.digest for f in files if f.kind == "download"}
    problems += [f"{d.url[:200]} (a plain download, not vendored)" for d in lock.download
                 if "sha256:" + d.sha256 not in vendored]
    if problems:
        _missing(store, problems)


def _missing(store: Store, problems: Sequence[str]) -> None:
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    raise MissingFromStoreError(
        f"not in the store {store.url}: {', '.join(problems[:5])}{more}; re-run relock "
        "vendor where the sources are reachable, then build again")


def publish_bases(client: Engine, lock: Lock, store: Store,
                  progress: Progress = quiet) -> None:
    """Put each locked base image, and the frontend, where the engine pulls it, from the
    store, same digest."""
    from relock.lock import reference
    from relock.store.baseimage import publish_base
    from relock.upstream import registry

    mirrors: list[str] | None = None
    seen: set[str] = set()
    images = [(b.pinned, b.digest, "base") for b in lock.base]
    if lock.frontend is not None:
        # BuildKit pulls the frontend as a pull of a base would (through the mirrors).
        images.append((lock.frontend.pinned, lock.frontend.digest, "frontend"))
    for ref, digest, what in images:
        if not digest or digest in seen:
            continue
        seen.add(digest)
        try:
            client.image(ref)
            continue  # the engine has it by digest already
        except RelockError:
            pass
        parsed = reference.parse(ref)
        if parsed.host == reference.DOCKER_HUB:
            if mirrors is None:
                mirrors = client.registry_mirrors()
            hosts = registry.mirror_hosts(mirrors)
            if not hosts:
                raise BaseImageError(
                    f"{ref}: the engine has no registry mirror to publish this {what} into from "
                    "the store (it would ask Docker Hub); give it one (registry-mirrors in "
                    "daemon.json) or load the image into the engine")
            host = hosts[0]
        else:
            host = parsed.host
        stats = publish_base(store, parsed.digest, host, parsed.repo)
        progress(f"published {what} {ref} from the store into {host}/{parsed.repo} "
                 f"({stats.blobs} blobs, {stats.bytes / 1e6:.1f} MB)")


def store_debs(store: Store, packages: Sequence[AptPackage], files: Sequence[StoredFile],
               cache: BlobCache, workers: int = 4) -> list[AptFile]:
    """Each package's .deb from the store, re-hashed, with its control paragraph."""
    from relock.build.view import AptFile, deb_control

    held = {f.digest for f in files}
    sizes = {f.digest: f.size for f in files}
    absent = [p for p in packages if "sha256:" + p.sha256 not in held
              and not store.has("sha256:" + p.sha256)]
    if absent:
        _missing(store, [f"{p.name} {p.version} ({p.arch})" for p in absent])

    def one(p: AptPackage) -> AptFile:
        digest = "sha256:" + p.sha256
        what = f"{p.name} {p.version} ({p.arch})"
        local = store.local_path(digest)
        if local is not None:
            path = local
            try:
                there = store.has(digest)
                if there:
                    store.open_checked(digest).close()  # re-hashed, never through a link
            except StoreError as e:
                raise HashMismatchError(f"{what}: its .deb in the store: {e}") from None
            if not there:
                _missing(store, [what])
        else:
            path = _from_registry(store, p, what, cache, sizes.get(digest))
        return AptFile(p, path, deb_control(path))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, packages))


def _from_registry(store: Store, p: AptPackage, what: str, cache: BlobCache,
                   size: int | None = None) -> Path:
    """The .deb of ``p`` from a registry store into the cache, hashed; with ``size`` (what
    the lock's manifest says) not one byte more is taken."""
    from relock.errors import LimitError

    hit = cache.path(p.sha256)
    if hit is not None:
        return hit
    stream = store.open("sha256:" + p.sha256)
    try:
        def chunks() -> Iterator[bytes]:
            taken = 0
            try:
                while chunk := stream.read(1 << 16):
                    taken += len(chunk)
                    if size is not None and taken > size:
                        raise LimitError(bounds.over(f"{what} from the store {store.url}",
                                                     "the .deb",
                                                     f"the {size} bytes its descriptor says"))
                    yield chunk
            except LimitError:
                raise
            except RelockError as e:
                raise HashMismatchError(f"{what} from the store {store.url}: {e}") from None
        return cache.put_stream(p.sha256, chunks(), f"{what} from the store {store.url}")
    finally:
        stream.close()


def prepare(client: Engine, lock: Lock, lock_path: str, where: str,
            progress: Progress = quiet, cache_dir: Path | None = None) -> LockedView:
    """The locked view of ``lock`` served from the store ``where`` alone.

    In order, all before any build: the store's files for this lock are all
    there, the bases are published where the engine pulls them, the .debs the
    bases do not hold are re-hashed.
    """
    from relock.build.rebuild import installed_in_bases, needed_debs
    from relock.build.view import LockedView

    store = open_store(where)
    files = lock_files(store, lock_path)
    check_complete(store, files, lock)
    progress(f"the store {store.url} holds all {len(files)} files of the lock")
    publish_bases(client, lock, store, progress)
    installed = installed_in_bases(client, lock, progress)
    packages = needed_debs(lock, installed)
    debs = store_debs(store, packages, files, BlobCache(cache_dir))
    size = sum(f.path.stat().st_size for f in debs)
    progress(f"{len(debs)} .deb files ({size / 1e6:.1f} MB) from the store, checked against "
             "the lock")
    return LockedView(debs, lock, StoreSource(store, files), cache_dir=None,
                      downloads=StoreDownloads(store, files))


@dataclass(frozen=True)
class FromStore:
    """The rebuild's ``ViewSource`` for the store ``where`` (see ``prepare``)."""

    where: str
    lock_path: str
    cache_dir: Path | None = None

    def __call__(self, engine: Engine, lock: Lock, progress: Progress) -> LockedView:
        return prepare(engine, lock, self.lock_path, self.where, progress,
                       cache_dir=self.cache_dir)
