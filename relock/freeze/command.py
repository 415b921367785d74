"""The use cases of ``relock freeze`` and ``relock diff``: what their options ask, done.

``run_freeze`` chooses the source (a folder tree, an ``oci://`` image in a
registry, the engine's files or its SDK client), merges the platform's part
into the lock at the output and writes it. Build stages are built again by
a ``StageFreezer`` the caller hands in: building needs the build package,
which this one may not import (``relock.build.command.run_freeze`` hands
in the engine's). ``run_diff`` loads two sides (lock files, locks at git
revisions, images frozen in memory) and compares them.

Nothing here prints or exits: progress and warnings go to the callbacks
given, a misused command line is a ``UsageError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from relock.errors import UsageError
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.freeze.freeze import FreezeOptions, FreezeResult
    from relock.freeze.sides import Side
    from relock.image.engine import ImageSource
    from relock.image.registrysource import RegistrySource
    from relock.lock.diff import Category, LockDiff
    from relock.lock.lockfile import Lock
    from relock.template.dockerfile import Dockerfile


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
    from relock.lock.platform import spelled
    from relock.lock.reference import is_registry_ref, strip_prefix
    from relock.template import dockerfile as df

    image, rootfs = request.image, request.rootfs
    if (image is None) == (rootfs is None):
        raise UsageError("give either IMAGE or --rootfs DIR")
    label = strip_prefix(image) if image else str(rootfs)
    out = request.output or Path("locks") / f"{request.name or lock_name(label)}.lock"
    chosen = [spelled(p.strip())
              for text in request.platforms for p in text.split(",") if p.strip()]
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
            result = fz.FreezeResult(staged, result.warnings)
    if not from_registry:
        result = _with_platform(result, platform, existing, images)
    for line in result.warnings:
        warn(line)
    write(result.lock, out, image=image or f"--rootfs {rootfs}",
          platform="" if from_registry else platform or "")
    return FreezeOutcome(out, result.lock, tuple(result.warnings))


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
                         index=index, deb_entries=True, archive=archive)


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
    return fz.FreezeResult(fz.add_platform(part, platform, existing),
                           (*result.warnings, *more))


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


@dataclass(frozen=True)
class DiffOutcome:
    """The two sides and what changed between them."""

    old: Side
    new: Side
    result: LockDiff


def run_diff(request: DiffRequest, progress: Progress = quiet, warn: Progress = quiet, *,
             connect: Callable[[], ImageSource] | None = None) -> DiffOutcome:
    """Load both sides (the engine asked at most once) and compare them."""
    import functools
    from typing import cast

    from relock.freeze.sides import load_side
    from relock.lock import diff as core

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
    compare_base = a.has_bases and b.has_bases
    if not compare_base and (not request.only or "base" in request.only):
        warn(f"base images not compared: no {request.dockerfile} for the image side")
    categories = cast("tuple[Category, ...]", request.only) or core.CATEGORIES
    result = core.diff_platforms(a.lock, b.lock, only=categories, compare_base=compare_base,
                                 platforms=request.platforms)
    return DiffOutcome(a, b, result)
