"""Comparing two locks: what changed between two builds of an image.

A side of a diff is a lock file, a lock at a git revision (``REV:PATH``) or
an image frozen in memory; ``load_side`` tells them apart. ``diff_locks``
compares two locks and returns a ``LockDiff``: base digests, distro,
snapshot and platform, then APT and pip packages, each added, removed,
upgraded, downgraded or rebuilt (same version, different bytes). Versions
are ordered by the rules of their world: Debian's for APT (python-debian),
PEP 440 for pip (packaging). Turning a ``LockDiff`` into text, Markdown or
JSON is ``relock.diffformat``'s job.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from relock.errors import (
    EngineError,
    GitRevisionError,
    ImageNotFoundError,
    LockfileError,
)
from relock.lockfile import AptPackage, AptSource, Base, Distro, Lock, PipPackage

Category = Literal["apt", "pip", "base"]
CATEGORIES: tuple[Category, ...] = ("apt", "pip", "base")

# The kinds of package change, in the order summaries list them.
# ``changed``: the version text differs but the ordering rules cannot tell
# up from down (equal under them, like PEP 440's 1.0 and 1.0.0, or not a
# valid version at all).
CHANGES = ("upgraded", "downgraded", "added", "removed", "rebuilt", "changed")
BASE_CHANGES = ("changed", "added", "removed")
SOURCE_CHANGES = ("added", "removed")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- the result ----------------------------------------------------------------


@dataclass(frozen=True)
class PackageChange:
    """One APT or pip package that differs between the two locks.

    ``where`` is the architecture of an APT package and the environment
    prefix of a pip one. ``old``/``new`` are versions, "" for the side that
    lacks the package; for ``rebuilt`` they are equal and the hashes differ.
    """

    name: str
    where: str
    change: str
    old: str = ""
    new: str = ""
    old_hashes: tuple[str, ...] = ()
    new_hashes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaseChange:
    """A FROM image whose pin differs: its digest (or local image ID) moved."""

    ref: str
    change: str
    old: str = ""
    new: str = ""


@dataclass(frozen=True)
class SourceChange:
    """An APT source (a one-line entry or a deb822 stanza) that only one side has.

    A source whose URIs, suites or options (``trusted``, ``signed-by``)
    changed shows as the old one removed and the new one added: every field
    reaches the build.
    """

    change: str
    source: AptSource

    @property
    def line(self) -> str:
        """The source on one line, as sources.list(5) spells it."""
        return source_line(self.source)


def source_line(s: AptSource) -> str:
    """``deb [key=value ...] URI... SUITE... COMPONENT...`` for one source."""
    options = " ".join(f"{k}={v}" for k, v in sorted(s.options.items()))
    words = [" ".join(s.types), f"[{options}]" if options else "", " ".join(s.uris),
             " ".join(s.suites), " ".join(s.components)]
    return " ".join(w for w in words if w)


@dataclass(frozen=True)
class ValueChange:
    """A single value (distro, snapshot, platform) that differs."""

    old: str
    new: str


@dataclass(frozen=True)
class LockDiff:
    """Everything that differs between two locks, in a stable order.

    A category left out by ``only`` (or base pins that one side cannot
    have) is ``None`` rather than empty: not compared is not the same as
    unchanged.
    """

    apt: tuple[PackageChange, ...] | None
    pip: tuple[PackageChange, ...] | None
    base: tuple[BaseChange, ...] | None
    distro: ValueChange | None = None
    snapshot: ValueChange | None = None
    platform: ValueChange | None = None
    # APT sources only one side has; compared with ``apt``.
    sources: tuple[SourceChange, ...] | None = None
    # How many entries each compared category held (the larger side), for
    # the summary of a diff without changes.
    sizes: dict[str, int] = field(default_factory=dict)
    # Whether several architectures / environments are involved, so that
    # formatters know to show them.
    multi_arch: bool = False
    multi_env: bool = False

    @property
    def identical(self) -> bool:
        """True when nothing compared differs."""
        return not (self.apt or self.pip or self.base or self.distro or self.snapshot
                    or self.platform or self.sources)

    def counts(self, category: Category) -> dict[str, int] | None:
        """Changes of ``category`` by kind (every kind present), or None if not compared."""
        rows: tuple[PackageChange, ...] | tuple[BaseChange, ...] | None = getattr(self, category)
        if rows is None:
            return None
        kinds = BASE_CHANGES if category == "base" else CHANGES
        seen = Counter(r.change for r in rows)
        return {k: seen.get(k, 0) for k in kinds}

    def source_counts(self) -> dict[str, int] | None:
        """APT sources added and removed, or None if not compared."""
        if self.sources is None:
            return None
        seen = Counter(r.change for r in self.sources)
        return {k: seen.get(k, 0) for k in SOURCE_CHANGES}

    def apt_counts_by_arch(self) -> dict[str, dict[str, int]]:
        """APT changes by architecture and kind; architectures with changes only."""
        out: dict[str, dict[str, int]] = {}
        for row in self.apt or ():
            counts = out.setdefault(row.where, dict.fromkeys(CHANGES, 0))
            counts[row.change] += 1
        return dict(sorted(out.items()))


# -- ordering versions ---------------------------------------------------------


def compare_apt_versions(old: str, new: str) -> str:
    """``upgraded``, ``downgraded``, ``same`` or ``changed`` under Debian's rules.

    Epochs, ``~`` (sorts before anything, even the end) and revisions count
    as dpkg counts them. Text that is not a Debian version is ``changed``.
    """
    if old == new:
        return "same"
    from debian.debian_support import Version

    try:
        a, b = Version(old), Version(new)
    except ValueError:
        return "changed"
    return _order(a, b)


def compare_pip_versions(old: str, new: str) -> str:
    """``upgraded``, ``downgraded``, ``same`` or ``changed`` under PEP 440."""
    if old == new:
        return "same"
    from packaging.version import InvalidVersion, Version

    try:
        a, b = Version(old), Version(new)
    except InvalidVersion:
        return "changed"
    return _order(a, b)


def _order(a: Any, b: Any) -> str:
    if b > a:
        return "upgraded"
    if b < a:
        return "downgraded"
    # Equal under the rules but spelt differently (1.0 and 1.0.0).
    return "changed"


# -- comparing -----------------------------------------------------------------


def diff_locks(old: Lock, new: Lock, *, only: Collection[Category] = CATEGORIES,
               compare_base: bool = True) -> LockDiff:
    """What differs from ``old`` to ``new``.

    ``only`` picks the categories compared; distro, snapshot, platform and
    the APT sources go with ``apt`` (they are the system the packages come
    from).
    ``compare_base=False`` skips base pins, for a side that cannot have them
    (an image frozen without its Dockerfile.in).
    """
    # Build stages' entries feed the locked view; the images compared are final stages.
    old, new = old.final(), new.final()
    sizes: dict[str, int] = {}
    apt = pip = None
    base = None
    distro = snapshot = platform = None
    sources = None
    multi_arch = multi_env = False
    if "apt" in only:
        apt = _diff_apt(old.apt, new.apt)
        sizes["apt"] = max(len(old.apt), len(new.apt))
        arches = {p.arch for p in old.apt} | {p.arch for p in new.apt}
        # "all" goes with every architecture; several real ones is multiarch
        # (or two platforms). A name on two rows also needs its arch shown.
        multi_arch = len(arches - {"all"}) > 1 or len({r.name for r in apt}) < len(apt)
        distro = _value(_distro_text(old.distro), _distro_text(new.distro))
        # A snapshot guessed from an image's creation time says when it was
        # built, not what it holds: two builds of the same packages differ
        # there by nature. Only dated snapshots (Release files, --snapshot) count.
        guessed = "image-created" in (old.snapshot_from, new.snapshot_from)
        snapshot = None if guessed else _value(old.snapshot, new.snapshot)
        platform = _value(old.platform, new.platform)
        sources = _diff_sources(old.apt_sources, new.apt_sources)
    if "pip" in only:
        pip = _diff_pip(old.pip, new.pip)
        sizes["pip"] = max(len(old.pip), len(new.pip))
        multi_env = len({p.env for p in old.pip} | {p.env for p in new.pip}) > 1
    if "base" in only and compare_base:
        base = _diff_base(old.base, new.base)
        sizes["base"] = max(len(old.base), len(new.base))
    return LockDiff(apt=apt, pip=pip, base=base, distro=distro, snapshot=snapshot,
                    platform=platform, sources=sources, sizes=sizes, multi_arch=multi_arch,
                    multi_env=multi_env)


def _source_identity(s: AptSource) -> tuple[Any, ...]:
    return (s.file, s.types, s.uris, s.suites, s.components, tuple(sorted(s.options.items())))


def _diff_sources(old: Iterable[AptSource], new: Iterable[AptSource]
                  ) -> tuple[SourceChange, ...]:
    a = {_source_identity(s): s for s in old}
    b = {_source_identity(s): s for s in new}
    rows = [SourceChange("removed", s) for k, s in a.items() if k not in b]
    rows += [SourceChange("added", s) for k, s in b.items() if k not in a]
    return tuple(sorted(rows, key=lambda r: (r.source.file, r.line, r.change)))


def _value(old: str, new: str) -> ValueChange | None:
    return None if old == new else ValueChange(old, new)


def _distro_text(d: Distro) -> str:
    text = f"{d.id} {d.version_id}".strip()
    return f"{text} ({d.codename})" if d.codename else text


def _diff_apt(old: Iterable[AptPackage], new: Iterable[AptPackage]) -> tuple[PackageChange, ...]:
    before = {p.key: p for p in old}
    after = {p.key: p for p in new}
    rows: list[PackageChange] = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        name, arch = key
        if a is None:
            assert b is not None
            rows.append(PackageChange(name, arch, "added", new=b.version))
        elif b is None:
            rows.append(PackageChange(name, arch, "removed", old=a.version))
        elif a.version != b.version:
            rows.append(PackageChange(name, arch, _kind(compare_apt_versions(a.version, b.version)),
                                      a.version, b.version))
        elif a.sha256 and b.sha256 and a.sha256 != b.sha256:
            # Only when both sides know the .deb's hash: an image frozen
            # without the archive has none, which is not a difference.
            rows.append(PackageChange(name, arch, "rebuilt", a.version, b.version,
                                      (f"sha256:{a.sha256}",), (f"sha256:{b.sha256}",)))
    return tuple(rows)


def _diff_pip(old: Iterable[PipPackage], new: Iterable[PipPackage]) -> tuple[PackageChange, ...]:
    from packaging.utils import canonicalize_name

    def keyed(items: Iterable[PipPackage]) -> dict[tuple[str, str], PipPackage]:
        # Locks hold canonical names; a hand-edited one may not.
        return {(p.env, canonicalize_name(p.name)): p for p in items}

    before, after = keyed(old), keyed(new)
    rows: list[PackageChange] = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        env, name = key
        if a is None:
            assert b is not None
            rows.append(PackageChange(name, env, "added", new=b.version))
        elif b is None:
            rows.append(PackageChange(name, env, "removed", old=a.version))
        elif a.version != b.version:
            rows.append(PackageChange(name, env, _kind(compare_pip_versions(a.version, b.version)),
                                      a.version, b.version))
        elif a.hashes and b.hashes and set(a.hashes) != set(b.hashes):
            rows.append(PackageChange(name, env, "rebuilt", a.version, b.version,
                                      tuple(sorted(set(a.hashes))), tuple(sorted(set(b.hashes)))))
    return tuple(rows)


def _kind(order: str) -> str:
    # Different text that orders the same is still a change of version.
    return "changed" if order == "same" else order


def _diff_base(old: Iterable[Base], new: Iterable[Base]) -> tuple[BaseChange, ...]:
    before, after = _pins(old), _pins(new)
    rows: list[BaseChange] = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        ref = key[0]
        if a is None:
            rows.append(BaseChange(ref, "added", new=b or ""))
        elif b is None:
            rows.append(BaseChange(ref, "removed", old=a))
        elif a != b:
            rows.append(BaseChange(ref, "changed", a, b))
    return tuple(rows)


def _pins(bases: Iterable[Base]) -> dict[tuple[str, int], str]:
    """Each FROM's pin keyed by (ref, nth time that ref is used), in stage order.

    Keyed by ref rather than stage number so that adding a stage does not
    make every later base look changed.
    """
    out: dict[tuple[str, int], str] = {}
    seen: Counter[str] = Counter()
    for b in sorted(bases, key=lambda b: b.stage):
        out[(b.ref, seen[b.ref])] = b.digest or (f"id:{b.image_id}" if b.image_id else "")
        seen[b.ref] += 1
    return out


# -- the sides -----------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side of a diff: a lock and where it came from."""

    label: str
    kind: Literal["file", "git", "image"]
    lock: Lock
    has_bases: bool = True
    warnings: tuple[str, ...] = ()


_REV_PATH = re.compile(r"^(?P<rev>[^:\s]+):(?P<path>[^:\s]+)$")


def load_side(arg: str, *, dockerfile: Path | None = None,
              build_args: dict[str, str] | None = None, cwd: Path | None = None,
              connect: Callable[[], Any] | None = None,
              progress: Progress = _quiet) -> Side:
    """Read ``arg`` as a lock file, else a ``REV:PATH`` in git, else an image.

    An image is frozen in memory with ``dockerfile`` for its base pins, or
    without base pins if that file does not exist (``has_bases`` is then
    False). No package index is asked, so an image side has no pip hashes.
    """
    from relock.lockfile import read

    where = cwd or Path.cwd()
    path = Path(arg) if cwd is None else cwd / arg
    m = _REV_PATH.match(arg)
    if path.exists() or (m is None and arg.endswith(".lock")):
        # A missing *.lock is a typo, not an image to ask the engine for.
        return Side(arg, "file", read(path))
    if m and _is_commit(m["rev"], where):
        return Side(arg, "git", git_lock(m["rev"], m["path"], where))
    if m and m["path"].endswith(".lock"):
        # Not an image tag in practice: say what is wrong with the revision.
        raise GitRevisionError(
            f"{arg}: {m['rev']!r} is not a known git revision here "
            f"({_git_where(where)}); check `git log` / `git tag`"
        )
    return _image_side(arg, dockerfile, build_args or {}, connect, progress)


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise GitRevisionError("git is not installed; cannot read REV:PATH locks") from None


def _is_commit(rev: str, cwd: Path) -> bool:
    if rev.startswith("-"):
        return False
    try:
        done = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd)
    except GitRevisionError:
        return False
    return done.returncode == 0


def _git_where(cwd: Path) -> str:
    done = _git(["rev-parse", "--show-toplevel"], cwd)
    if done.returncode != 0:
        return f"{cwd} is not in a git repository"
    return f"in {done.stdout.decode().strip()}"


def git_lock(rev: str, path: str, cwd: Path) -> Lock:
    """The lock file at ``path`` as of git revision ``rev`` (path from the repo's top)."""
    if not _is_commit(rev, cwd):
        raise GitRevisionError(f"{rev}:{path}: unknown git revision {rev!r} ({_git_where(cwd)})")
    done = _git(["show", f"{rev}:{path}"], cwd)
    if done.returncode != 0:
        raise GitRevisionError(
            f"{rev}:{path}: {path!r} is not in revision {rev} (paths are from the "
            "repository's top; use REV:./PATH for one relative to here)"
        )
    try:
        text = done.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise LockfileError(f"{rev}:{path}: not UTF-8 text; is this a lock file?") from None
    return _loads(text, f"{rev}:{path}")


def _loads(text: str, source: str) -> Lock:
    from relock.lockfile import loads

    return loads(text, source)


def _image_side(ref: str, dockerfile: Path | None, build_args: dict[str, str],
                connect: Callable[[], Any] | None, progress: Progress) -> Side:
    from relock import engine

    neither = (f"{ref!r} is neither a lock file, a REV:PATH at a git revision, "
               "nor an image in the engine")
    try:
        client = (connect or engine.connect)()
    except EngineError as e:
        raise EngineError(f"{neither}; and the engine cannot be asked: {e}") from None
    try:
        image = engine.get_image(client, ref)
    except ImageNotFoundError:
        raise ImageNotFoundError(neither) from None
    if dockerfile is not None and dockerfile.exists():
        lock, warnings = freeze_image(client, ref, dockerfile, build_args, progress)
        return Side(ref, "image", lock, warnings=warnings)
    from relock import freeze as fz

    result = fz.freeze_image(client, image.id, None, fz.FreezeOptions(index=None), progress)
    return Side(ref, "image", result.lock, has_bases=False, warnings=result.warnings)


def freeze_image(client: Any, ref: str, dockerfile: Path, build_args: dict[str, str],
                 progress: Progress = _quiet) -> tuple[Lock, tuple[str, ...]]:
    """Freeze image ``ref`` in memory with ``dockerfile``'s base pins, no index hashes."""
    from relock import dockerfile as df
    from relock import freeze as fz

    options = fz.FreezeOptions(index=None)
    parsed = df.load(dockerfile, build_args)
    result = fz.freeze_image(client, ref, parsed, options, progress)
    return result.lock, result.warnings
