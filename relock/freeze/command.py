"""The use cases of ``relock freeze`` and ``relock diff``: what their options ask, done.

``run_freeze`` chooses the source (a folder tree, an ``oci://`` image in a
registry, the engine's files or its SDK client), merges the platform's part
into the lock at the output and writes it. Build stages are built again by
a ``StageFreezer`` the caller hands in: building needs the build package,
which this one may not import (``relock.build.command.run_freeze`` hands
in the engine's). ``run_diff`` loads two sides (lock files, locks at git
revisions, images frozen in memory) and compares them; with ``files`` it
compares two images file by file instead (``relock.image.filediff``).

Nothing here prints or exits: progress and warnings go to the callbacks
given, a misused command line is a ``UsageError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from relock.errors import UsageError
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.freeze.freeze import FreezeOptions, FreezeResult
    from relock.freeze.sides import Side
    from relock.image.engine import ImageSource
    from relock.image.filediff import FileDifference
    from relock.image.layers import ImageFiles, ImageLayers, LayerSource
    from relock.image.registrysource import RegistrySource
    from relock.lock.diff import Category, LockDiff
    from relock.lock.lockfile import Lock
    from relock.template.dockerfile import Dockerfile
    from relock.upstream.index import PackageIndex


class StageFreezer(Protocol):
    """Adds what a template's build stages installed to the final image's lock."""

    def __call__(self, images: ImageSource, dockerfile: Dockerfile, context: Path,
                 final: Lock, options: FreezeOptions, progress: Progress) -> Lock: ...


@dataclass(frozen=True)
class FreezeRequest:
    """What ``relock freeze``'s options say: what to read, where the lock goes."""

    image: str | None = None
    dockerfile: Path = Path("Dockerfile.in")
    output: Path | None = None
    name: str | None = None
    rootfs: Path | None = None
    snapshot: str | None = None
    allow_local_base: bool = False
    no_index: bool = False
    no_archive: bool = False
    context: Path | None = None
    final_only: bool = False
    platforms: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FreezeOutcome:
    """The lock written, and where."""

    path: Path
    lock: Lock
    warnings: tuple[str, ...]


def run_freeze(request: FreezeRequest, progress: Progress = quiet, warn: Progress = quiet,
               *, stages: StageFreezer | None = None,
               images: ImageSource | None = None) -> FreezeOutcome:
    """Freeze what ``request`` names and write its lock (atomically; on error the old stays).

    ``images`` is the engine to read an engine image from (``local_images()``
    when None); without ``stages`` no build stage is read.
    """
    from relock.files import writable_target
    from relock.freeze import freeze as fz
    from relock.lock.locate import lock_name
    from relock.lock.lockfile import read, write
    from relock.lock.platform import PlatformError, chosen_list
    from relock.lock.reference import is_registry_ref, strip_prefix
    from relock.template import dockerfile as df

    image, rootfs = request.image, request.rootfs
    if (image is None) == (rootfs is None):
        raise UsageError("give either IMAGE or --rootfs DIR")
    label = strip_prefix(image) if image else str(rootfs)
    out = request.output or Path("locks") / f"{request.name or lock_name(label)}.lock"
    try:
        chosen = chosen_list(request.platforms)  # "" is refused, never "every platform"
    except PlatformError as e:
        raise UsageError(f"Invalid value for '--platform': {e}") from None
    from_registry = image is not None and is_registry_ref(image)
    if len(chosen) > 1 and not from_registry:
        raise UsageError("an image in the engine is of one platform: give one --platform, "
                         "or name a multi-platform image in a registry (oci://HOST/REPO:TAG)")
    platform = chosen[0] if chosen else None
    writable_target(out)  # a device or folder there: refuse before the work
    dockerfile = request.dockerfile
    parsed = df.load(dockerfile, dict(request.build_args)) \
        if image is not None or dockerfile.exists() else None
    options = _freeze_options(request)
    existing = read(out) if chosen and out.exists() else None
    if rootfs is not None:
        result = fz.freeze_rootfs(rootfs, parsed, options, progress)
    elif from_registry:
        assert image is not None
        source = registry_source(parsed, warn)
        result = fz.freeze_index(source, image, parsed, options, chosen, existing, progress)
    else:
        assert parsed is not None and image is not None
        if images is None:
            from relock.image.enginefiles import local_images

            images = local_images()
        result = fz.freeze_image(images, image, parsed, options, progress)
        if not request.final_only and stages is not None:
            staged = stages(images, parsed, request.context or dockerfile.parent,
                            result.lock, options, progress)
            result = dataclasses.replace(result, lock=staged)
    if not from_registry:
        result = _with_platform(result, platform, existing, images)
    if parsed is not None:
        result = _python_locks(result, parsed, request.context or dockerfile.parent, progress)
        result = _plain_downloads(result, parsed, platform, request.no_index, progress)
    result = _own_packages(result, request.context or dockerfile.parent, options.index,
                           progress)
    for line in result.warnings:
        warn(line)
    write(result.lock, out, image=image or f"--rootfs {rootfs}",
          platform="" if from_registry else platform or "")
    return FreezeOutcome(out, result.lock, tuple(result.warnings))


def _python_locks(result: FreezeResult, parsed: Dockerfile, context: Path,
                  progress: Progress) -> FreezeResult:
    """The pylock.toml or uv.lock the template installs from, held against the image: a
    note each, a warning per package that disagrees (``relock.freeze.installs``)."""
    from relock.freeze import installs

    found = installs.check(result.lock, parsed, context)
    for line in found.notes:
        progress(line)
    return dataclasses.replace(result, warnings=(*result.warnings, *found.warnings))


def _plain_downloads(result: FreezeResult, parsed: Dockerfile, platform: str | None,
                     no_index: bool, progress: Progress) -> FreezeResult:
    """A ``[[download]]`` entry per plain download of the template: the image's file, else
    what the URL gives now (``relock.freeze.downloads``)."""
    from relock.freeze import downloads
    from relock.freeze import freeze as fz

    fetch = None
    if not no_index:
        from relock.blobs import BlobCache
        from relock.upstream.download import fetch as fetch_url

        cache = BlobCache()

        def fetch(url: str) -> tuple[str, int]:
            progress(f"fetching {url[:200]} (a plain download the image does not keep)")
            return fetch_url(url, cache)

    held = {d.url: d for d in result.held}
    lock, found = downloads.lock_downloads(result.lock, parsed, held, fetch,
                                           platform or result.lock.platform or "linux/amd64")
    for line in found.notes:
        progress(line)
    return fz.FreezeResult(lock, (*result.warnings, *found.warnings))


def _own_packages(result: FreezeResult, context: Path, index: PackageIndex | None,
                  progress: Progress) -> FreezeResult:
    """The build requirements of the project's own packages (``pip install .``), resolved
    against the configured index (``relock.freeze.ownpackage``)."""
    from relock.freeze import freeze as fz

    own = [p for p in result.lock.pip if p.kind == "context"]
    names = ", ".join(sorted({p.name for p in own}))
    if index is None:
        if not own:
            return result
        return fz.FreezeResult(result.lock, (*result.warnings,
            f"{names}: built from the build context; with --no-index their build "
            "requirements are not resolved, and a pinned build fails naming them"))
    from relock.files import cache_home
    from relock.freeze import ownpackage

    sdists = ownpackage.sdist_requirements(result.lock, index, cache_home())
    if not own and not sdists:
        return result
    what = [f"{names} (built from the build context)"] if own else []
    if sdists:
        what.append("the distributions pip built from an sdist")
    progress(f"resolving the build requirements of {' and '.join(what)}")
    lock, warnings = ownpackage.add_build_requirements(result.lock, context,
                                                       index.config.urls, sdists=sdists)
    added = sum(1 for p in lock.pip if p.kind == "build")
    progress(f"build requirements: {added} distributions locked")
    return fz.FreezeResult(lock, (*result.warnings, *warnings))


def _freeze_options(request: FreezeRequest) -> FreezeOptions:
    """The core's options: the Python index and the APT archive unless turned off."""
    from relock.freeze.freeze import FreezeOptions
    from relock.upstream.archive import Archive
    from relock.upstream.archive import default_cache_dir as apt_cache_dir

    index = None
    if not request.no_index:
        from relock.upstream.index import Index, default_cache_dir, pip_config

        index = Index(pip_config(), default_cache_dir())
    archive = None if request.no_archive else Archive(apt_cache_dir())
    return FreezeOptions(snapshot=request.snapshot, allow_local_base=request.allow_local_base,
                         index=index, deb_entries=True, archive=archive,
                         frontends=frontend_digest)


def frontend_digest(ref: str, warn: Progress = quiet) -> str:
    """The registry digest of the frontend image ``ref`` (a ``# syntax=`` line's): a Docker
    Hub name through the engine's registry mirrors, as BuildKit pulls it."""
    from relock.image.registrysource import RegistrySource
    from relock.lock.reference import DOCKER_HUB, parse

    mirrors = hub_mirrors(warn) if parse(ref).host == DOCKER_HUB else []
    return RegistrySource(mirrors=mirrors).digest(ref)


def _with_platform(result: FreezeResult, platform: str | None, existing: Lock | None,
                   images: ImageSource | None) -> FreezeResult:
    """One platform's part (an engine image, a folder tree) merged into the lock at the output."""
    from relock.freeze import freeze as fz

    part, more = result.lock, list[str]()
    if platform is not None and part.platform == platform:
        from relock.image.enginefiles import sdk_engine
        from relock.image.platforms import with_manifests

        # The engine's mirrors: only an engine client can ask for them.
        mirrors = sdk_engine(images).registry_mirrors() if images is not None else []
        part, more = with_manifests(part, platform, mirrors=mirrors)
    return dataclasses.replace(result, lock=fz.add_platform(part, platform, existing),
                               warnings=(*result.warnings, *more))


def registry_source(parsed: Dockerfile | None, warn: Progress = quiet) -> RegistrySource:
    """A registry source; Docker Hub names go through the engine's registry mirrors, as
    the engine's own pulls do (none when no engine answers)."""
    from relock.image.registrysource import RegistrySource
    from relock.lock.reference import DOCKER_HUB, parse

    hub = parsed is not None and any(
        s.external and parse(s.ref).host == DOCKER_HUB for s in parsed.stages)
    return RegistrySource(mirrors=hub_mirrors(warn) if hub else [])


def hub_mirrors(warn: Progress = quiet) -> list[str]:
    """The engine's registry mirrors, which it asks for Docker Hub names first; none (and a
    warning) when no engine answers."""
    from relock.errors import RelockError
    from relock.image import engine

    try:
        return engine.connect().registry_mirrors()
    except RelockError as e:
        warn(f"no engine to ask for registry mirrors ({e}); Docker Hub is asked directly")
        return []


# -- relock diff ----------------------------------------------------------------------

@dataclass(frozen=True)
class DiffRequest:
    """What ``relock diff``'s options say: two sides, what of them to compare."""

    old: str
    new: str
    only: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    dockerfile: Path = Path("Dockerfile.in")
    build_args: Mapping[str, str] = field(default_factory=dict)
    files: bool = False  # two images compared file by file, not as locks
    mtimes: bool = False  # with files: mtimes compared too
    env: str | None = None  # with a pylock.toml side: the lock's environment it is of


@dataclass(frozen=True)
class DiffOutcome:
    """The two sides and what changed between them."""

    old: Side
    new: Side
    result: LockDiff

    @property
    def identical(self) -> bool:
        return self.result.identical


@dataclass(frozen=True)
class FilesOutcome:
    """Two images' files and every one that differs (``relock diff --files``)."""

    old: ImageFiles
    new: ImageFiles
    differences: tuple[FileDifference, ...]
    mtimes: bool

    @property
    def identical(self) -> bool:
        return not self.differences


def run_diff(request: DiffRequest, progress: Progress = quiet, warn: Progress = quiet, *,
             connect: Callable[[], ImageSource] | None = None,
             layers: Callable[[], LayerSource] | None = None) -> DiffOutcome | FilesOutcome:
    """Load both sides (the engine asked at most once) and compare them.

    With ``request.files`` both sides are images compared file by file;
    ``layers`` gives the engine to read them from (the Docker engine by default).
    """
    import functools
    from typing import cast

    from relock.freeze.sides import load_side
    from relock.lock import diff as core

    if request.files:
        return diff_files(request, progress, layers)
    if connect is None:
        from relock.image.engine import connect as engine_connect

        connect = engine_connect
    engine = functools.cache(connect)
    sides = []
    for arg in (request.old, request.new):
        side = load_side(arg, dockerfile=request.dockerfile, build_args=dict(request.build_args),
                         connect=engine, progress=progress)
        for line in side.warnings:
            warn(f"{arg}: {line}")
        sides.append(side)
    a, b = sides
    if "pylock" in (a.kind, b.kind):
        return _diff_python(a, b, request, warn)
    if request.env is not None:
        raise UsageError("--env picks the environment a pylock.toml side is compared with; "
                         "neither side is one")
    compare_base = a.has_bases and b.has_bases
    if not compare_base and (not request.only or "base" in request.only):
        warn(f"base images not compared: no {request.dockerfile} for the image side")
    categories = cast("tuple[Category, ...]", request.only) or core.CATEGORIES
    result = core.diff_platforms(a.lock, b.lock, only=categories, compare_base=compare_base,
                                 platforms=request.platforms)
    return DiffOutcome(a, b, result)


def _diff_python(a: Side, b: Side, request: DiffRequest, warn: Progress) -> DiffOutcome:
    """A lock (or image) and a pylock.toml, or two pylocks: their Python distributions, in
    one environment of one platform (``relock.freeze.sides.pair_python``)."""
    from relock.freeze.sides import pair_python
    from relock.lock import diff as core

    if request.only and "pip" not in request.only:
        raise UsageError("a pylock.toml side holds Python distributions only: compare them "
                         "with --only pip, or without --only")
    a, b = pair_python(a, b, env=request.env, platforms=request.platforms)
    for side in (a, b):
        for line in side.warnings:
            warn(line)
    pip_only: tuple[Category, ...] = ("pip",)
    result = core.diff_locks(a.lock, b.lock, only=pip_only, compare_base=False,
                             hashes="subset")
    return DiffOutcome(a, b, result)


def diff_files(request: DiffRequest, progress: Progress = quiet,
               layers: Callable[[], LayerSource] | None = None) -> FilesOutcome:
    """Two images (the engine's, ``oci://`` ones, image archives) compared file by file.

    Each image's layers are read and merged in turn; the steps of its history
    are the template's (relock's view prefix taken off a pinned build's RUN).
    """
    import functools

    from relock.image import filediff
    from relock.image import layers as lay
    from relock.template.render import template_command

    if request.only:
        raise UsageError("--only chooses what of two locks to compare; --files compares "
                         "every file")
    if len(request.platforms) > 1:
        raise UsageError("--files compares one image with one other: give one --platform "
                         "(it picks an oci:// image index's image)")
    if layers is None:
        from relock.image.engine import connect

        layers = connect
    engine = functools.cache(layers)
    sides = []
    for arg in (request.old, request.new):
        with _image_layers(arg, engine, request.platforms[0] if request.platforms else None
                           ) as found:
            progress(f"reading the files of {arg} ({len(found.layers)} layers)")
            sides.append(lay.read_image(lay.with_steps(found, template_command)))
    a, b = sides
    return FilesOutcome(a, b, tuple(filediff.compare(a, b, mtimes=request.mtimes)),
                        request.mtimes)


def _image_layers(arg: str, engine: Callable[[], LayerSource], platform: str | None
                  ) -> contextlib.AbstractContextManager[ImageLayers]:
    """``arg``'s layers: an ``oci://`` image, an image archive (a file), or the engine's."""
    from relock.errors import EngineError, ImageNotFoundError
    from relock.lock.reference import is_registry_ref

    if is_registry_ref(arg):
        from relock.image.registrysource import RegistrySource

        return RegistrySource(platform=platform).image_layers(arg)
    if Path(arg).is_file():
        return _archive(Path(arg))
    neither = f"{arg!r} is neither an image archive (a file), an oci:// image nor an image " \
              "in the engine"
    try:
        source = engine()
    except EngineError as e:
        raise EngineError(f"{neither}; and the engine cannot be asked: {e}") from None
    try:
        return source.image_layers(arg)
    except ImageNotFoundError:
        raise ImageNotFoundError(neither) from None


@contextlib.contextmanager
def _archive(path: Path) -> Iterator[ImageLayers]:
    from relock.image.layers import archive_layers

    try:
        f = path.open("rb")
    except OSError as e:
        raise UsageError(f"{path}: cannot be read ({e.strerror})") from None
    with f, archive_layers(f, str(path)) as found:
        yield found
