"""Comparing two locks: what changed between two builds of an image.

``diff_locks`` compares two locks and returns a ``LockDiff``: base digests,
distro, snapshot and platform, then APT and pip packages, each added,
removed, upgraded, downgraded or rebuilt (same version, different bytes).
Versions are ordered by the rules of their world: Debian's for APT
(python-debian), PEP 440 for pip (packaging). Where the two locks come from
(a file, ``REV:PATH``, an image frozen in memory) is ``relock.freeze.sides``'s job;
turning a ``LockDiff`` into text, Markdown or JSON is ``relock.lock.diffformat``'s.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, Self, TypeVar, final

from relock.lock.lockfile import (
    AptPackage,
    AptSource,
    Base,
    Distro,
    Frontend,
    Lock,
    PipPackage,
)
from relock.lock.platform import debian_arch, spelled

Category = Literal["apt", "pip", "base"]
CATEGORIES: tuple[Category, ...] = ("apt", "pip", "base")

# The kinds of package change, in the order summaries list them.
# ``changed``: the version text differs but the ordering rules cannot tell
# up from down (equal under them, like PEP 440's 1.0 and 1.0.0, or not a
# valid version at all).
CHANGES = ("upgraded", "downgraded", "added", "removed", "rebuilt", "changed")
BASE_CHANGES = ("changed", "added", "removed")
SOURCE_CHANGES = ("added", "removed")

# -- the result ----------------------------------------------------------------


@final
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
    # The platforms the change concerns, in a diff of multi-platform locks.
    platforms: tuple[str, ...] = ()


@final
@dataclass(frozen=True)
class BaseChange:
    """A FROM image whose pin differs: its digest (or local image ID) moved."""

    ref: str
    change: str
    old: str = ""
    new: str = ""
    platforms: tuple[str, ...] = ()


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
    # The platforms compared, in a diff of multi-platform locks (else empty);
    # a row whose ``platforms`` are all of these is the same on every one.
    platforms: tuple[str, ...] = ()
    # Set when two locks of one platform each, of different platforms, are
    # compared with each other (the diff is one of architectures): the old
    # and new platform. APT packages of each side's own architecture are then
    # paired by name (``where`` names both architectures: ``amd64,arm64``).
    across: ValueChange | None = None

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


class _Ordered(Protocol):
    def __lt__(self, other: Self, /) -> bool: ...
    def __gt__(self, other: Self, /) -> bool: ...


V = TypeVar("V", bound=_Ordered)
# The rows of a category that a diff of multi-platform locks merges.
R = TypeVar("R", PackageChange, BaseChange)


def _compare(old: str, new: str, parse: Callable[[str], V], invalid: type[Exception]) -> str:
    if old == new:
        return "same"
    try:
        a, b = parse(old), parse(new)
    except invalid:
        return "changed"
    if b > a:
        return "upgraded"
    if b < a:
        return "downgraded"
    # Equal under the rules but spelt differently (1.0 and 1.0.0).
    return "changed"


def compare_apt_versions(old: str, new: str) -> str:
    """``upgraded``, ``downgraded``, ``same`` or ``changed`` under Debian's rules.

    Epochs, ``~`` (sorts before anything, even the end) and revisions count
    as dpkg counts them. Text that is not a Debian version is ``changed``.
    """
    from debian.debian_support import Version

    return _compare(old, new, Version, ValueError)


def compare_pip_versions(old: str, new: str) -> str:
    """``upgraded``, ``downgraded``, ``same`` or ``changed`` under PEP 440."""
    from packaging.version import InvalidVersion, Version

    return _compare(old, new, Version, InvalidVersion)


# -- comparing -----------------------------------------------------------------


def diff_locks(old: Lock, new: Lock, *, only: Collection[Category] = CATEGORIES,
               compare_base: bool = True, native: tuple[str, str] | None = None,
               hashes: Literal["equal", "subset"] = "equal") -> LockDiff:
    """What differs from ``old`` to ``new``.

    ``only`` picks the categories compared; distro, snapshot, platform and
    the APT sources go with ``apt`` (they are the system the packages come
    from).
    ``compare_base=False`` skips base pins, for a side that cannot have them
    (an image frozen without its Dockerfile.in).
    ``native``, the Debian architectures of two different platforms (old's,
    new's), pairs the APT packages of those architectures by name: their
    ``.deb`` files differ by nature, so only their versions are compared.
    ``hashes="subset"`` counts a pip distribution ``rebuilt`` only when neither
    side's file hashes are all among the other's (a pylock lists the files of
    one platform, a relock lock every file of the version on the index).
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
        apt = _diff_apt(_as_native(old.apt, native[0]) if native else old.apt,
                        _as_native(new.apt, native[1]) if native else new.apt)
        if native:
            apt = tuple(sorted((dataclasses.replace(r, where=",".join(native))
                                if r.where == _NATIVE else r for r in apt),
                               key=lambda r: (r.name, r.where)))
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
        pip = _diff_pip(old.pip, new.pip, subset=hashes == "subset")
        sizes["pip"] = max(len(old.pip), len(new.pip))
        multi_env = len({p.env for p in old.pip} | {p.env for p in new.pip}) > 1
    if "base" in only and compare_base:
        base = _diff_base(old.base, new.base) + _diff_frontend(old.frontend, new.frontend)
        sizes["base"] = max(len(old.base), len(new.base))
    return LockDiff(apt=apt, pip=pip, base=base, distro=distro, snapshot=snapshot,
                    platform=platform, sources=sources, sizes=sizes, multi_arch=multi_arch,
                    multi_env=multi_env)


def diff_platforms(old: Lock, new: Lock, *, only: Collection[Category] = CATEGORIES,
                   compare_base: bool = True, platforms: Collection[str] = ()) -> LockDiff:
    """``diff_locks`` per platform, for locks of several platforms.

    Each platform both sides hold is compared on its own; a change that is
    the same on every platform compared is one row (its ``platforms`` all of
    them), else one row per distinct change naming its platforms. Platforms
    only one side holds show as a ``platform`` change (their packages are
    not listed). ``platforms`` narrows the comparison (``--platform``); a
    platform a side lacks is then a ``PlatformMissingError``. Two locks of
    one platform each are compared as ``diff_locks`` does; of two different
    platforms, with each other (``across``): amd64's part against arm64's.
    """
    ours, theirs = old.all_platforms, new.all_platforms
    if not platforms and len(ours) == len(theirs) == 1 and ours != theirs:
        # One platform each, not the same: the diff is of architectures.
        d = diff_locks(old.for_platform(ours[0]), new.for_platform(theirs[0]), only=only,
                       compare_base=compare_base,
                       native=(debian_arch(ours[0]), debian_arch(theirs[0])))
        return dataclasses.replace(d, across=ValueChange(ours[0], theirs[0]))
    if not platforms and not old.multi and not new.multi:
        return diff_locks(old, new, only=only, compare_base=compare_base)
    if platforms:
        wanted = tuple(sorted({spelled(p) for p in platforms}))
        for lock in (old, new):
            for p in wanted:
                lock.for_platform(p)  # names a platform the side lacks
    else:
        wanted = tuple(p for p in sorted(set(old.all_platforms) | set(new.all_platforms))
                       if p in old.all_platforms and p in new.all_platforms)
    parts = {p: diff_locks(old.for_platform(p), new.for_platform(p), only=only,
                           compare_base=compare_base) for p in wanted}
    first = next(iter(parts.values()), None)
    if first is None:
        first = diff_locks(old, new, only=only, compare_base=compare_base)
    shown_old = " ".join(p for p in old.all_platforms if not platforms or p in wanted)
    shown_new = " ".join(p for p in new.all_platforms if not platforms or p in wanted)

    head = first

    def merged(rows: Callable[[LockDiff], tuple[R, ...] | None],
               apt: bool = False) -> tuple[R, ...] | None:
        if rows(head) is None:
            return None
        where: dict[R, list[str]] = {}
        for p, d in parts.items():
            for row in rows(d) or ():
                # A package of the platform's own architecture is the same
                # change on each platform (bash 5.2-1 -> 5.2-2 on amd64 and on
                # arm64); a rebuilt one is not (each .deb has its own bytes).
                if (apt and isinstance(row, PackageChange) and row.where == debian_arch(p)
                        and row.change != "rebuilt"):
                    row = dataclasses.replace(row, where=_NATIVE)
                where.setdefault(row, []).append(p)
        out = []
        for row, ps in where.items():
            if apt and isinstance(row, PackageChange) and row.where == _NATIVE:
                row = dataclasses.replace(row, where=",".join(debian_arch(p) for p in ps))
            out.append(dataclasses.replace(row, platforms=tuple(ps)))
        return tuple(out)

    def same(value: Callable[[LockDiff], ValueChange | None]) -> ValueChange | None:
        values = {v for d in parts.values() if (v := value(d)) is not None}
        return values.pop() if len(values) == 1 else (
            None if not values else ValueChange(" / ".join(sorted({v.old for v in values})),
                                                " / ".join(sorted({v.new for v in values}))))

    sources: tuple[SourceChange, ...] | None = None
    if first.sources is not None:
        sources = tuple(dict.fromkeys(r for d in parts.values() for r in d.sources or ()))
    apt = merged(lambda d: d.apt, apt=True)
    return LockDiff(
        apt=None if apt is None else tuple(sorted(apt, key=lambda r: (r.name, r.where,
                                                                      r.platforms))),
        pip=merged(lambda d: d.pip), base=merged(lambda d: d.base),
        distro=same(lambda d: d.distro), snapshot=same(lambda d: d.snapshot),
        platform=None if first.apt is None else _value(shown_old, shown_new),
        sources=sources,
        sizes={k: max((d.sizes.get(k, 0) for d in parts.values()), default=0)
               for k in first.sizes},
        multi_arch=any(d.multi_arch for d in parts.values()),
        multi_env=any(d.multi_env for d in parts.values()),
        platforms=wanted,
    )


_NATIVE = "\0native"

def _as_native(packages: Iterable[AptPackage], arch: str) -> tuple[AptPackage, ...]:
    """``packages`` with those of ``arch`` keyed as the platform's own (their hash left out)."""
    return tuple(dataclasses.replace(p, arch=_NATIVE, sha256="") if p.arch == arch else p
                 for p in packages)


def _source_identity(s: AptSource) -> tuple[object, ...]:
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


P = TypeVar("P", AptPackage, PipPackage)


def _diff_packages(old: Iterable[P], new: Iterable[P], key: Callable[[P], tuple[str, str]],
                   compare: Callable[[str, str], str],
                   hashes: Callable[[P], tuple[str, ...]],
                   swap: bool = False,
                   agree: Callable[[tuple[str, ...], tuple[str, ...]], bool] | None = None
                   ) -> tuple[PackageChange, ...]:
    """Package changes in the order of ``key``: ``(name, where)``, or
    ``(where, name)`` with ``swap``. A package is ``rebuilt`` when both sides
    know its hashes and they differ."""
    before = {key(p): p for p in old}
    after = {key(p): p for p in new}
    rows: list[PackageChange] = []
    for k in sorted(before.keys() | after.keys()):
        a, b = before.get(k), after.get(k)
        name, where = (k[1], k[0]) if swap else k
        if a is None:
            assert b is not None
            rows.append(PackageChange(name, where, "added", new=b.version))
        elif b is None:
            rows.append(PackageChange(name, where, "removed", old=a.version))
        elif a.version != b.version:
            rows.append(PackageChange(name, where, _kind(compare(a.version, b.version)),
                                      a.version, b.version))
        elif hashes(a) and hashes(b) and (hashes(a) != hashes(b) if agree is None
                                          else not agree(hashes(a), hashes(b))):
            # Only when both sides know: an image frozen without the index or
            # the archive has no hashes, which is not a difference.
            rows.append(PackageChange(name, where, "rebuilt", a.version, b.version,
                                      hashes(a), hashes(b)))
    return tuple(rows)


def _diff_apt(old: Iterable[AptPackage], new: Iterable[AptPackage]) -> tuple[PackageChange, ...]:
    return _diff_packages(old, new, lambda p: p.key, compare_apt_versions,
                          lambda p: (f"sha256:{p.sha256}",) if p.sha256 else ())


def _diff_pip(old: Iterable[PipPackage], new: Iterable[PipPackage],
              subset: bool = False) -> tuple[PackageChange, ...]:
    from packaging.utils import canonicalize_name

    from relock.lock.pythonlock import hashes_agree

    # Locks hold canonical names; a hand-edited one may not.
    # A build requirement (not installed) is its own row beside an installed namesake.
    return _diff_packages(old, new, lambda p: (p.env + (" (build)" if p.kind == "build" else ""),
                                               canonicalize_name(p.name)),
                          compare_pip_versions, lambda p: tuple(sorted(set(p.hashes))),
                          swap=True, agree=hashes_agree if subset else None)


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


def frontend_label(frontend: Frontend) -> str:
    """How a diff names the frontend: ``# syntax=REF``, or ``BUILDKIT_SYNTAX=REF``."""
    return f"{'BUILDKIT_SYNTAX=' if frontend.build_arg else '# syntax='}{frontend.ref}"


def _diff_frontend(old: Frontend | None, new: Frontend | None) -> tuple[BaseChange, ...]:
    """The frontend's pin, as a base row (``frontend_label`` its ref) when it differs."""
    if old == new:
        return ()
    if old is None:
        assert new is not None
        return (BaseChange(frontend_label(new), "added", new=new.digest),)
    if new is None:
        return (BaseChange(frontend_label(old), "removed", old=old.digest),)
    if frontend_label(old) != frontend_label(new):
        return (BaseChange(frontend_label(old), "removed", old=old.digest),
                BaseChange(frontend_label(new), "added", new=new.digest))
    return (BaseChange(frontend_label(new), "changed", old.digest, new.digest),)


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
