"""The use cases of ``relock update`` and ``relock outdated``: what their options ask, done.

``run_update`` reads what can move, plans the move (pip-tools for the pip
side), builds the template pinned to the candidate lock, freezes and
verifies the image, and only then replaces the lock. ``run_outdated``
lists what has newer versions. Nothing here prints or exits: progress and
warnings go to the callbacks given, and the CLI prints the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from relock.build.command import RebuildFlags
from relock.errors import UsageError
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.build.rebuild import RebuildOptions
    from relock.image.engine import Engine
    from relock.lock.diff import LockDiff
    from relock.lock.lockfile import Lock
    from relock.template.dockerfile import Dockerfile
    from relock.update.outdated import Report
    from relock.update.update import Move, Plan
    from relock.upstream.archive import AptArchive
    from relock.upstream.index import PackageIndex


@dataclass(frozen=True)
class UpdateRequest:
    """What ``relock update``'s options say: what to move, how to build it."""

    names: tuple[str, ...] = ()
    lock_path: Path | None = None
    dockerfile: Path | None = None
    security: bool = False
    everything: bool = False
    dry_run: bool = False
    context: Path | None = None
    tag: str | None = None
    flags: RebuildFlags = field(default_factory=RebuildFlags)
    build_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateOutcome:
    """The plan, and (when it was carried out) the new lock written at ``path``."""

    path: Path
    plan: Plan
    old: Lock
    new: Lock | None = None
    change: LockDiff | None = None


def run_update(request: UpdateRequest, progress: Progress = quiet, warn: Progress = quiet,
               log: Progress = quiet) -> UpdateOutcome:
    """Plan the update; unless a dry run or nothing moves, build, freeze, verify, write.

    ``log`` gets the build's log lines; a failed build is a ``BuildError``
    carrying the log's tail, and the old lock stays.
    """
    if request.flags.store is not None:
        raise UsageError("update takes new versions from the archives and the index; "
                         "--store (the locked files only) does not apply")
    from relock.build.command import load_template
    from relock.lock.locate import default_lock
    from relock.update import outdated as od
    from relock.update import update as core
    from relock.upstream.archive import Archive
    from relock.upstream.archive import default_cache_dir as apt_cache_dir
    from relock.upstream.index import Index, default_cache_dir, pip_config

    if not (request.names or request.security or request.everything):
        raise UsageError("name the packages to update, or pass --security or --all")
    path = default_lock(request.lock_path)
    lock, parsed, args = load_template(request.dockerfile, path, request.build_args)
    template_path = Path(parsed.path)
    config = pip_config()
    index = Index(config, default_cache_dir())
    archive = Archive(apt_cache_dir())
    keyrings = od.local_keyrings(lock.apt_sources)
    template = od.template_requirements(template_path)
    report = od.outdated(lock, archive=archive, index=index if lock.pip else None,
                         template=template, keyrings=keyrings, pip_cache=od.default_cache_dir())
    if report.problems:
        for line in report.problems:
            warn(f"not read: {line}")
        raise core.UpdateError("some package indexes could not be read; nothing updated")
    progress("planning the update")
    client, in_base = _in_base(lock, request.dry_run, progress, warn)
    plan = core.plan(lock, report, request.names, security=request.security,
                     everything=request.everything, archive=archive, keyrings=keyrings,
                     template=template, index_urls=config.urls, in_base=in_base)
    for line in plan.stuck:
        warn(f"not moved: {line}")
    if request.dry_run or not plan.moves:
        return UpdateOutcome(path, plan, lock)
    assert client is not None  # without an engine only a dry run gets here
    for move in plan.moves:
        progress(f"moving {move_text(move)}")
    options = request.flags.options(path, tag=request.tag)
    new = _build(client, request, path, plan, parsed, args, options, index, archive,
                 progress, log)
    from relock.lock import diff

    return UpdateOutcome(path, plan, lock, new, diff.diff_locks(lock, new))


def _build(client: Engine, request: UpdateRequest, path: Path, plan: Plan, parsed: Dockerfile,
           args: dict[str, str], options: RebuildOptions, index: PackageIndex,
           archive: AptArchive, progress: Progress, log: Progress) -> Lock:
    """Build, freeze and verify the candidate, then write the new lock over the old."""
    from relock.lock import lockfile
    from relock.update import update as core

    new, image = core.build_and_freeze(
        client, parsed, plan, request.context or Path(parsed.path).parent, options, args,
        index=index, archive=archive, log=log, progress=progress)
    text = path.read_text("utf-8", "replace")
    lockfile.write(new, path, image=lockfile.header_image(text))
    progress(f"wrote {path} (from image {image[:19]})")
    return new


def _in_base(lock: Lock, dry_run: bool, progress: Progress,
             warn: Progress) -> tuple[Engine | None, set[tuple[str, str, str]]]:
    """The engine (connected once for the whole update) and what the lock's base images
    hold; a dry run without an engine guesses nothing (and has no engine)."""
    from relock.build.rebuild import installed_in_bases
    from relock.errors import EngineError
    from relock.image import engine

    try:
        client = engine.connect()
        return client, installed_in_bases(client, lock, progress)
    except EngineError as e:
        if not dry_run:
            raise
        warn(f"no engine ({e}); packages of the base image are planned as if they could move")
        return None, set()


def move_text(move: Move) -> str:
    """One move, as the progress lines and the dry run's plan name it."""
    note = " (security)" if move.security else (" (needed)" if move.why == "needed" else "")
    return f"{move.kind} {move.name} {move.locked or '(new)'} -> {move.target}{note}"


# -- relock outdated ------------------------------------------------------------------

@dataclass(frozen=True)
class OutdatedRequest:
    """What ``relock outdated``'s options say."""

    lock_path: Path | None = None
    dockerfile: Path = Path("Dockerfile.in")
    only: tuple[str, ...] = ()
    snapshot: str | None = None
    apt_snapshot_url: str | None = None
    refresh: bool = False


def run_outdated(request: OutdatedRequest) -> Report:
    """What of the lock has newer versions (``Report.problems``: what could not be read)."""
    import re

    from relock.lock import lockfile
    from relock.lock.locate import default_lock
    from relock.update import outdated as core
    from relock.upstream.archive import Archive
    from relock.upstream.archive import default_cache_dir as apt_cache_dir

    snapshot = request.snapshot
    if snapshot is not None and not re.fullmatch(r"\d{8}T\d{6}Z", snapshot):
        # As click words a bad option value.
        raise UsageError(f"Invalid value for --snapshot: {snapshot!r} is not YYYYMMDDTHHMMSSZ")
    path = default_lock(request.lock_path)
    kinds = request.only or ("apt", "pip")
    lock = lockfile.read(path)
    archive = Archive(apt_cache_dir()) if "apt" in kinds else None
    index = None
    if "pip" in kinds and lock.pip:
        from relock.upstream.index import Index, pip_config

        index = Index(pip_config())
    keyrings = core.local_keyrings(lock.apt_sources)
    return core.outdated(
        lock, archive=archive, index=index,
        template=core.template_requirements(request.dockerfile) if "pip" in kinds else {},
        pip_cache=None if request.refresh else core.default_cache_dir(),
        keyrings=keyrings, only=kinds, snapshot=snapshot or "",
        snapshot_url=request.apt_snapshot_url)
