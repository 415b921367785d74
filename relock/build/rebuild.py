"""The pinned rebuild: template + lock -> an image holding exactly the lock.

1. the template is rendered (``relock.template.render``): FROM lines pinned, every RUN
   pointed at the locked view;
2. a ``ViewSource`` prepares the locked view (``relock.build.view``), which is
   served on loopback. ``Upstream`` is the one kept here: the locked ``.deb``
   files the base images do not already hold are fetched from an
   ``AptArchive`` and checked against the lock, the locked Python files come
   from a ``PackageIndex`` as the build asks. Another source (the store's,
   ``relock.store.storeview.FromStore``) is handed in by the caller that chose
   it: this module knows nothing of stores;
3. the engine builds the rendered Dockerfile from the user's context, with
   the rendered file added under a name that ``.dockerignore`` hides from
   ``COPY`` (``relock.image.buildcontext``): nothing of relock's is written into the
   user's folder or the image.

Verification (``relock.build.verify``) is the caller's next step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from relock.build.view import AptFile, IndexSource, LockedView, ViewServer
from relock.errors import RelockError
from relock.lock.lockfile import AptPackage, Lock
from relock.progress import Progress, quiet
from relock.template import render
from relock.template.dockerfile import Dockerfile

if TYPE_CHECKING:
    from relock.image.engine import Engine, ImageSource
    from relock.upstream.archive import AptArchive
    from relock.upstream.index import PackageIndex


@dataclass(frozen=True)
class RebuildOptions:
    """Choices for one pinned rebuild."""

    tag: str | None = None
    platform: str | None = None
    nocache: bool = False
    force: bool = False
    lock_path: str = "LOCK"
    view_port: int = render.DEFAULT_VIEW_PORT
    # Where .debs may come from besides the image's own sources.
    use_snapshot: bool = True
    snapshot_url: str | None = None
    mirrors: tuple[str, ...] = ()
    cache_dir: Path | None = None
    # A reproducible build (SOURCE_DATE_EPOCH the lock's snapshot time, the view on its
    # fixed port: the same image on every host).
    reproducible: bool = False


@dataclass
class RebuildResult:
    """The image built, and what the view saw."""

    image_id: str
    rendered: str
    notes: list[str] = field(default_factory=list)
    # (config, manifest) of a reproducible build's image.
    digest: tuple[str, str] | None = None


def effective_build_args(lock: Lock, given: Mapping[str, str]) -> dict[str, str]:
    """The lock's build arguments, overridden by those given now."""
    return {**lock.input.build_args, **given}


def installed_in_bases(source: ImageSource, lock: Lock,
                       progress: Progress) -> set[tuple[str, str, str]]:
    """(name, version, arch) of every package the pinned base images already hold."""
    from relock.inventory import apt

    out: set[tuple[str, str, str]] = set()
    for base in lock.base:
        # In a lock of several platforms, each platform's own base image.
        ref = base.by_manifest().pinned
        try:
            image = source.image(ref)
        except RelockError:
            progress(f"pulling {ref}")
            image = source.pull(ref)
        with source.open_rootfs(image) as fs:
            if apt.has_dpkg(fs):
                out |= {(p.name, p.version, p.arch) for p in apt.installed_packages(fs)}
    return out


def needed_debs(lock: Lock, installed: set[tuple[str, str, str]]) -> list[AptPackage]:
    """Locked packages the bases do not hold at the locked version (every stage's)."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for p in lock.apt:
        key = (p.name, p.version, p.arch)
        if key in installed or key in seen:
            continue
        seen.add(key)
        out.append(p)
    missing = [p for p in out if not p.sha256 or not p.filename]
    if missing:
        names = ", ".join(f"{p.name} {p.version}" for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise RelockError(
            f"the lock has no .deb hash or file name for {names}{more}: it was frozen with "
            "--no-archive, by an older relock, or the package was installed from a local "
            ".deb; re-freeze without --no-archive (a local .deb is on no archive: install "
            "it from an APT source instead)"
        )
    return out


def upstream_archive(options: RebuildOptions) -> AptArchive:
    """The APT archives of the lock's sources, and the mirrors of ``options``."""
    from relock.upstream.archive import Archive
    from relock.upstream.archive import default_cache_dir as apt_cache_dir

    return Archive(apt_cache_dir(), mirrors=options.mirrors)


def fetch_debs(lock: Lock, packages: list[AptPackage], options: RebuildOptions,
               progress: Progress, archive: AptArchive) -> list[AptFile]:
    """Each package's .deb from ``archive``, checked against the lock, with its control
    paragraph."""
    from concurrent.futures import ThreadPoolExecutor

    from relock.blobs import BlobCache
    from relock.build.view import deb_control
    from relock.upstream.archive import SNAPSHOT_URLS

    if not packages:
        return []
    cache = BlobCache(options.cache_dir)
    snapshot = lock.snapshot if options.use_snapshot else ""
    snapshot_url = options.snapshot_url or SNAPSHOT_URLS.get(lock.distro.id)
    progress(f"fetching {len(packages)} locked .deb files the base images do not hold")

    def one(p: AptPackage) -> tuple[AptFile, str]:
        path, where = archive.fetch_deb(p, lock.apt_sources, snapshot, cache,
                                        snapshot_url=snapshot_url)
        return AptFile(p, path, deb_control(path)), where

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(one, packages))
    counts: dict[str, int] = {}
    for _, where in done:
        counts[where] = counts.get(where, 0) + 1
    out = [f for f, _ in done]
    size = sum(f.path.stat().st_size for f in out)
    sources = ", ".join(f"{n} from {w}" for w, n in sorted(counts.items()))
    progress(f"{len(out)} .deb files ({size / 1e6:.1f} MB) checked against the lock: {sources}")
    return out


def source_date_epoch(lock: Lock) -> int:
    """The SOURCE_DATE_EPOCH of a reproducible build of ``lock``: its snapshot time, the
    same on every host and every day (the lock's own, not the clock's)."""
    from relock.inventory.apt import parse_snapshot

    if not lock.snapshot:
        raise RelockError("the lock has no snapshot time, which a reproducible build dates "
                          "its image by: freeze the image again")
    return int(parse_snapshot(lock.snapshot).timestamp())


@contextlib.contextmanager
def serve_view(view: LockedView, port: int, progress: Progress,
               fixed: bool = False) -> Iterator[ViewServer]:
    """Serve ``view`` on ``port``, or on a free port if that one is taken (unless ``fixed``:
    the view's address is in every RUN's text, which a reproducible image records)."""
    from relock.build.view import port_free

    if port and fixed and not port_free(port):
        raise RelockError(f"port {port} is taken: a reproducible build serves the locked "
                          "view on it (its address is part of the image's history); free it, "
                          "or pass --view-port (every build of the lock must use the same)")
    if port and not port_free(port):
        progress(f"port {port} is taken; serving the locked view on another port "
                 "(the build cache will not match earlier builds)")
        port = 0
    with view.serve(port) as server:
        progress(f"serving the locked view on {server.url}")
        yield server


def prepare_view(lock: Lock, installed: set[tuple[str, str, str]], options: RebuildOptions,
                 progress: Progress = quiet, *, archive: AptArchive | None = None,
                 index: PackageIndex | None = None) -> LockedView:
    """The locked view of ``lock``: its .debs fetched and checked, its Python files on call.

    ``archive`` and ``index`` default to the lock's sources (``upstream_archive``)
    and the configured Python index (``pip_source``).
    """
    from relock.build.view import LockedView, UpstreamDownloads

    debs = fetch_debs(lock, needed_debs(lock, installed), options, progress,
                      upstream_archive(options) if archive is None else archive)
    source = pip_source() if index is None else IndexSource(index)
    return LockedView(debs, lock, source, cache_dir=_pip_cache(options),
                      downloads=UpstreamDownloads(_pip_cache(options)))


class ViewSource(Protocol):
    """Where a rebuild's locked view comes from: it is prepared for ``lock`` before the build
    (every byte there and checked), so that a missing file fails before anything runs."""

    def __call__(self, engine: Engine, lock: Lock, progress: Progress) -> LockedView:
        ...


@dataclass(frozen=True)
class Upstream:
    """The locked view from upstream: the .debs the bases lack from ``archive``, the Python
    files from ``index`` (by default the lock's sources and the configured index)."""

    options: RebuildOptions
    archive: AptArchive | None = None
    index: PackageIndex | None = None

    def __call__(self, engine: Engine, lock: Lock, progress: Progress) -> LockedView:
        return prepare_view(lock, installed_in_bases(engine, lock, progress), self.options,
                            progress, archive=self.archive, index=self.index)


def pip_source() -> IndexSource:
    """The configured Python index, as the view's source of locked files."""
    from relock.upstream.index import Index, pip_config

    return IndexSource(Index(pip_config()))


def rebuild(engine: Engine, df: Dockerfile, lock: Lock, context: Path,
            options: RebuildOptions, build_args: Mapping[str, str], log: Progress = quiet,
            progress: Progress = quiet, *, view: ViewSource | None = None) -> RebuildResult:
    """Build ``df`` pinned to ``lock`` from ``context``, its view from ``view`` (by default
    ``Upstream(options)``); see the module docstring."""
    from relock.build import enginebuild as builder

    render.check_fresh(df, lock, render.RenderOptions(force=options.force,
                                                      lock_path=options.lock_path))
    epoch = source_date_epoch(lock) if options.reproducible else None
    locked = (view or Upstream(options))(engine, lock, progress)
    with serve_view(locked, options.view_port, progress, fixed=options.reproducible) as server:
        rendered = render.render(df, lock, render.RenderOptions(
            view_url=server.url, force=options.force, lock_path=options.lock_path,
            source_date_epoch=epoch))
        for note in rendered.notes:
            progress(note)
        args = render.pinned_build_args(lock, build_args)
        result = builder.build(engine, context, None, dockerfile_text=rendered.dockerfile,
                               tag=options.tag, build_args=args,
                               platform=options.platform, nocache=options.nocache, log=log,
                               misses=locked.misses, progress=progress,
                               source_date_epoch=epoch)
    return RebuildResult(image_id=result.image_id, rendered=rendered.dockerfile,
                         notes=list(rendered.notes), digest=result.digest)


def _pip_cache(options: RebuildOptions) -> Path:
    from relock.blobs import default_blob_dir

    return options.cache_dir or default_blob_dir()
