"""A new lock in which only the packages asked for move (``relock update``).

1. plan: ``relock.update.outdated`` says what is newer; the names asked for (or
   every security update, or everything movable) are chosen;
2. pip is resolved before anything is built, with pip-tools: the lock's
   pins of each environment are pip-compile's existing output, so it keeps
   every pin it can and re-resolves only ``--upgrade-package NAME==TARGET``
   (a dependency moves only when the new version needs it); hashes are
   generated. A conflict stops here, with the resolver's words;
3. a candidate lock: the moving APT entries replaced by the new versions'
   index entries (.deb sha256 and pool path), the pip entries by
   pip-compile's; the locked view serves exactly that to the pinned build;
4. build (``relock.build.rebuild``), freeze the image, verify it against what was
   frozen; the caller writes the new lock only when all of that passed.

A hard constraint on every other locked dist (pip-compile ``-c``) would
forbid the dependency moves an update may need, so the lock's pins are
pip-tools' preferences instead; every move is listed in the plan with why.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from relock.errors import EXIT_DIFFERS, RelockError
from relock.lock.lockfile import AptPackage, Lock, PipPackage
from relock.progress import Progress, quiet
from relock.update.outdated import Outdated, Report
from relock.upstream.pipcompile import Run, parse_compiled, pip_compile, resolver_words

if TYPE_CHECKING:
    from relock.build.rebuild import RebuildOptions
    from relock.image.engine import Engine
    from relock.template.dockerfile import Dockerfile
    from relock.upstream.archive import AptArchive
    from relock.upstream.index import PackageIndex

class UpdateError(RelockError):
    """An update cannot be planned, resolved or built."""


class UpdateDrift(UpdateError):
    """The updated image does not hold what the plan moved to."""

    exit_code = EXIT_DIFFERS


@dataclass(frozen=True)
class Move:
    """One package that an update moves."""

    kind: str  # "apt" or "pip"
    name: str
    locked: str  # "" when the package is new
    target: str
    where: str  # suite or environment
    security: bool = False
    why: str = "asked"  # or "needed"


@dataclass(frozen=True)
class Plan:
    moves: tuple[Move, ...]
    candidate: Lock
    # Names asked for that cannot move, with the reason.
    stuck: tuple[str, ...] = ()


def choose(report: Report, lock: Lock, names: Sequence[str], *, security: bool,
           everything: bool, in_base: Collection[tuple[str, str, str]] = (),
           ) -> tuple[list[Outdated], list[str]]:
    """The outdated entries an update moves, and why asked-for names cannot move.

    An APT package the base image holds at the locked version (``in_base``:
    name, version, arch) is not moved: the template's installs do not
    upgrade it, only a new base image does.
    """
    apt_names = {p.name for p in lock.apt}
    pip_names = {p.name for p in lock.pip}
    stuck: list[str] = []
    wanted: set[str] = set()
    for name in names:
        pip_name = str(canonicalize_name(name))
        if name not in apt_names and pip_name not in pip_names:
            raise UpdateError(f"{name} is not in the lock; `relock outdated` lists what can move")
        wanted |= {name, pip_name}
    chosen: list[Outdated] = []
    for o in report.packages:
        asked = everything or o.name in wanted or (security and o.security)
        if not asked:
            continue
        if o.kind == "apt" and not o.stage and (o.name, o.locked, o.arch) in in_base:
            stuck.append(f"{o.name}: {o.locked} comes with the base image; a new base "
                         f"digest (re-freeze) moves it to {o.newest}")
            continue
        if not o.movable:
            stuck.append(f"{o.name}: newest {o.newest} is held back by {o.held_back_by}")
            continue
        chosen.append(o)
    found = {o.name for o in report.packages}
    for name in names:
        if name not in found and str(canonicalize_name(name)) not in found:
            stuck.append(f"{name}: already the newest version")
    return chosen, stuck


# -- APT ---------------------------------------------------------------------

def apt_moves(lock: Lock, chosen: Sequence[Outdated], archive: AptArchive | None,
              keyrings: Mapping[str, bytes] | None) -> dict[tuple[str, str, str], AptPackage]:
    """The new entries (version, .deb sha256, pool path) of the moving APT packages."""
    from relock.update.outdated import lock_arch

    out: dict[tuple[str, str, str], AptPackage] = {}
    by_key = {(p.stage, p.name, p.arch): p for p in lock.apt}
    for o in chosen:
        if o.kind != "apt":
            continue
        if archive is None:
            raise UpdateError(f"{o.name}: moving an APT package needs the archives")
        arch = o.arch if o.arch != "all" else lock_arch(lock)
        found = archive.candidates(lock.apt_sources, arch, [o.name], keyrings)
        entry = next((e for _s, (n, v, _a), e in found if n == o.name and v == o.newest), None)
        if entry is None:
            raise UpdateError(f"{o.name} {o.newest} vanished from the indexes while planning; "
                              "run the update again")
        old = by_key[(o.stage, o.name, o.arch)]
        out[(o.stage, o.name, o.arch)] = dataclasses.replace(
            old, version=o.newest, sha256=entry.sha256, filename=entry.filename,
            source_version="")
    return out


# -- pip ---------------------------------------------------------------------

def compile_env(lock: Lock, env: str, upgrades: Mapping[str, str],
                template: Mapping[str, list[str]], index_urls: Sequence[str],
                run: Run = subprocess.run) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Resolve one environment with pip-compile: the lock's pins kept, ``upgrades`` moved."""
    dists = [p for p in lock.pip if p.env == env and not p.stage]
    top = [p.name for p in dists if p.requested] or [p.name for p in dists]
    with tempfile.TemporaryDirectory(prefix="relock-update-") as tmp:
        folder = Path(tmp)
        lines = []
        for name in sorted(top):
            specs = template.get(name, [])
            lines += specs or [name]
        (folder / "requirements.in").write_text("\n".join(lines) + "\n")
        # The existing output: pip-compile keeps each of these pins it can.
        (folder / "requirements.txt").write_text(
            "".join(f"{p.name}=={p.version}\n" for p in sorted(dists, key=lambda p: p.name)))
        upgrade = [a for name, version in sorted(upgrades.items())
                   for a in ("--upgrade-package", f"{name}=={version}")]
        proc = pip_compile(folder, index_urls, "relock update", upgrade, run)
        if proc.returncode != 0:
            raise UpdateError(f"pip cannot resolve the update of {', '.join(sorted(upgrades))} "
                              f"in {env}: {resolver_words(proc.stderr)}")
        return parse_compiled((folder / "requirements.txt").read_text())


def pip_moves(lock: Lock, chosen: Sequence[Outdated], template: Mapping[str, list[str]],
              index_urls: Sequence[str], run: Run = subprocess.run,
              ) -> tuple[dict[tuple[str, str], PipPackage], list[Move]]:
    """New pip entries by (env, name), from pip-compile, and every pip move with why."""
    targets: dict[str, dict[str, str]] = {}
    for o in chosen:
        if o.kind == "pip" and not o.stage:
            targets.setdefault(o.where, {})[o.name] = o.target
    entries: dict[tuple[str, str], PipPackage] = {}
    moves: list[Move] = []
    for env, upgrades in sorted(targets.items()):
        compiled = compile_env(lock, env, upgrades, template, index_urls, run)
        locked = {p.name: p for p in lock.pip if p.env == env and not p.stage}
        for name, (version, hashes) in sorted(compiled.items()):
            old = locked.get(name)
            if old is not None and old.version == version:
                continue
            new = (dataclasses.replace(old, version=version, hashes=hashes) if old
                   else PipPackage(name, version, env, hashes=hashes))
            entries[(env, name)] = new
            moves.append(Move("pip", name, old.version if old else "", version, env,
                              why="asked" if name in upgrades else "needed"))
        _no_downgrade(lock, env, moves)
        for name, target in upgrades.items():
            got = compiled.get(name, ("", ()))[0]
            if got != target:
                raise UpdateError(f"pip resolved {name} to {got or 'nothing'}, not {target}, "
                                  f"in {env}; pin it in the template or update it alone")
    return entries, moves


def _no_downgrade(lock: Lock, env: str, moves: Sequence[Move]) -> None:
    """pip-compile resolves for the Python it runs on: a downgrade means it is not the image's."""
    from packaging.version import Version

    for m in moves:
        if m.where == env and m.locked and Version(m.target) < Version(m.locked):
            python = next((e.python for e in lock.python if e.prefix == env), "")
            here = f"{sys.version_info.major}.{sys.version_info.minor}"
            why = (f"pip-compile runs on Python {here}, {env} is Python {python}: run relock "
                   f"with Python {python}" if python and not python.startswith(here)
                   else "pin it in the template or update it too")
            raise UpdateError(f"the resolution would downgrade {m.name} {m.locked} -> "
                              f"{m.target}; {why}")


# -- the plan ------------------------------------------------------------------

def plan(lock: Lock, report: Report, names: Sequence[str], *, security: bool = False,
         everything: bool = False, archive: AptArchive | None = None,
         keyrings: Mapping[str, bytes] | None = None,
         template: Mapping[str, list[str]] | None = None,
         index_urls: Sequence[str] = (), run: Run = subprocess.run,
         in_base: Collection[tuple[str, str, str]] = ()) -> Plan:
    """What an update moves, and the candidate lock the pinned build is given."""
    chosen, stuck = choose(report, lock, names, security=security, everything=everything,
                           in_base=in_base)
    apt_new = apt_moves(lock, chosen, archive, keyrings) if any(
        o.kind == "apt" for o in chosen) else {}
    pip_new, pip_moved = pip_moves(lock, chosen, template or {}, index_urls, run) if any(
        o.kind == "pip" for o in chosen) else ({}, [])
    stuck += [f"{o.name}: stage {o.stage} is not updated (a build stage's pins move with "
              "a re-freeze)" for o in chosen if o.kind == "pip" and o.stage]
    moves = [Move("apt", o.name, o.locked, o.newest, o.where, o.security)
             for o in chosen if o.kind == "apt"] + pip_moved
    apt = tuple(apt_new.get((p.stage, p.name, p.arch), p) for p in lock.apt)
    pip = [pip_new.pop((p.env, p.name), p) if not p.stage else p for p in lock.pip]
    pip += pip_new.values()  # distributions the update newly needs
    candidate = dataclasses.replace(lock, apt=apt, pip=tuple(pip)).sorted()
    return Plan(tuple(moves), candidate, tuple(stuck))


# -- build, freeze, verify --------------------------------------------------------

def build_and_freeze(engine: Engine, df: Dockerfile, plan_: Plan, context: Path,
                     options: RebuildOptions, build_args: Mapping[str, str], *,
                     index: PackageIndex | None, archive: AptArchive | None, log: Progress = quiet,
                     progress: Progress = quiet) -> tuple[Lock, str]:
    """Build the template pinned to the candidate, freeze the image, verify it.

    Returns the new lock (the frozen image, plus the candidate's build-stage
    entries, which this build does not re-read) and the image ID.
    """
    from relock.build import rebuild
    from relock.build.verify import compare, verify_image
    from relock.freeze.freeze import FreezeOptions, freeze_image

    # The engine's layer cache keys a RUN on its text, which does not change
    # with the lock the view serves: a layer built from another lock must not
    # be reused.
    options = dataclasses.replace(options, nocache=True)
    result = rebuild.rebuild(engine, df, plan_.candidate, context, options, build_args,
                             log=log, progress=progress)
    progress(f"freezing the updated image {result.image_id[:19]}")
    frozen = freeze_image(engine, result.image_id, df, FreezeOptions(
        index=index, deb_entries=True, archive=archive), progress).lock
    staged = plan_.candidate
    new = dataclasses.replace(
        frozen,
        apt=(*frozen.apt, *(p for p in staged.apt if p.stage)),
        pip=(*frozen.pip, *(p for p in staged.pip if p.stage)),
        python=(*frozen.python, *(e for e in staged.python if e.stage)),
    ).sorted()
    drift = verify_image(engine, result.image_id, new, progress)
    # The image must hold what the plan moved to, not only match its own freeze.
    drift += compare(plan_.candidate.final(), new.final())
    if drift:
        raise UpdateDrift(f"the updated image does not match the plan: {drift[0].describe()}"
                          + (f" (and {len(drift) - 1} more)" if len(drift) > 1 else ""))
    return new, result.image_id
