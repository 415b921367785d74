"""Three-way merge of locks, package by package (git's merge driver).

Two branches that each update a different package change different
``[[apt]]``/``[[pip]]`` entries; as text they may still conflict (the
snapshot line, neighbouring entries). Here every entry is one unit, named by
what makes it unique in a lock (an APT package by stage, name and arch, a
pip dist by stage, environment and name, ...): a unit changed on one side
takes that side, the same change on both is taken once, and only a unit
changed differently on both sides is a conflict. The dated snapshot is the
one exception: two different new snapshots merge to the later one, since
a snapshot archive keeps every older version too.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from relock.lock import lockfile
from relock.lock.lockfile import (
    AptPackage,
    AptSource,
    Base,
    Distro,
    Entry,
    Frontend,
    Input,
    Lock,
    PipPackage,
    PythonEnv,
)

# A unit of a lock: ("top", what) for the scalars and single tables, or
# (array, identity...) for one entry of an array.
Key = tuple[Hashable, ...]

# The value of a unit (the snapshot is the pair (snapshot, snapshot_from)).
Unit = int | str | tuple[str, ...] | Input | Distro | Frontend | Entry

E = TypeVar("E", bound=Entry)


def _arrays(lock: Lock) -> dict[str, tuple[Entry, ...]]:
    return {"base": lock.base, "apt_sources": lock.apt_sources, "python": lock.python,
            "apt": lock.apt, "pip": lock.pip}


MARKER = 7


@dataclass(frozen=True)
class Conflict:
    """One unit changed differently on both sides."""

    key: Key
    ours: Unit | None  # None: removed on our side
    theirs: Unit | None

    @property
    def name(self) -> str:
        """How the conflict is reported: ``apt curl amd64``, ``pip /opt/venv numpy``."""
        table, *ident = self.key
        words = [str(w) for w in ident if w not in ("", None)]
        if table == "top":
            return str(ident[0])
        if table == "apt_sources":
            words = [str(ident[0]), " ".join(ident[1]), " ".join(ident[2])]  # type: ignore[arg-type]
        if table in ("apt", "pip") and ident[0]:
            words[0] = f"stage {ident[0]}:"
        return f"{table} " + " ".join(words)


@dataclass(frozen=True)
class MergeResult:
    """The merged lock (conflicts resolved to our side) and the conflicts."""

    lock: Lock
    conflicts: tuple[Conflict, ...]
    theirs_lock: Lock  # the same merge with conflicts resolved to their side

    @property
    def clean(self) -> bool:
        return not self.conflicts


def _units(lock: Lock) -> dict[Key, Unit]:
    out: dict[Key, Unit] = {
        ("top", "version"): lock.version,
        ("top", "platform"): lock.platform,
        ("top", "platforms"): lock.platforms,
        ("top", "snapshot"): (lock.snapshot, lock.snapshot_from),
        ("top", "input"): lock.input,
        ("top", "distro"): lock.distro,
    }
    if lock.frontend is not None:
        out[("top", "frontend")] = lock.frontend
    for table, items in _arrays(lock).items():
        for item in items:
            out[(table, *lockfile.identity(item))] = item
    return out


def _lock(units: dict[Key, Unit]) -> Lock:
    def top(name: str) -> Unit:
        return units[("top", name)]

    version, platform, platforms = top("version"), top("platform"), top("platforms")
    snapshot, input_, distro = top("snapshot"), top("input"), top("distro")
    frontend = units.get(("top", "frontend"))
    if not (isinstance(version, int) and isinstance(platform, str)
            and isinstance(platforms, tuple) and isinstance(snapshot, tuple)
            and isinstance(input_, Input) and isinstance(distro, Distro)
            and (frontend is None or isinstance(frontend, Frontend))):
        raise AssertionError("a top unit of a lock has the wrong type")  # pragma: no cover

    def array(table: str, kind: type[E]) -> tuple[E, ...]:
        return tuple(v for k, v in units.items() if k[0] == table and isinstance(v, kind))

    return Lock(
        version=version,
        platform=platform,
        platforms=platforms,
        snapshot=snapshot[0],
        snapshot_from=snapshot[1],
        input=input_,
        distro=distro,
        frontend=frontend,
        base=array("base", Base),
        apt_sources=array("apt_sources", AptSource),
        python=array("python", PythonEnv),
        apt=array("apt", AptPackage),
        pip=array("pip", PipPackage),
    ).sorted()


def merge(base: Lock, ours: Lock, theirs: Lock) -> MergeResult:
    """Merge ``ours`` and ``theirs``, both made from ``base``, unit by unit."""
    b, o, t = _units(base), _units(ours), _units(theirs)
    merged_o: dict[Key, Unit] = {}
    merged_t: dict[Key, Unit] = {}
    conflicts: list[Conflict] = []
    for key in _ordered(o, t, b):
        bv, ov, tv = b.get(key), o.get(key), t.get(key)
        if ov == tv or tv == bv:
            pick_o = pick_t = ov
        elif ov == bv:
            pick_o = pick_t = tv
        elif key == ("top", "snapshot") and isinstance(ov, tuple) and isinstance(tv, tuple):
            pick_o = pick_t = max(ov, tv)  # the later snapshot holds both sides' versions
        else:
            conflicts.append(Conflict(key, ov, tv))
            pick_o, pick_t = ov, tv
        if pick_o is not None:
            merged_o[key] = pick_o
        if pick_t is not None:
            merged_t[key] = pick_t
    return MergeResult(_lock(merged_o), tuple(conflicts), _lock(merged_t))


def _ordered(*sides: dict[Key, Unit]) -> Iterable[Key]:
    seen: dict[Key, None] = {}
    for side in sides:
        for key in side:
            seen.setdefault(key, None)
    return seen


def chunks(lock: Lock) -> list[tuple[Key, str]]:
    """The TOML text of ``lock`` (no header) cut into one chunk per unit, in file order."""
    lock = lock.sorted()
    parts = lockfile.to_toml(lock).split("\n\n")
    keys: list[Key] = [("top", "head"), ("top", "input"), ("top", "distro")]
    for table, items in _arrays(lock).items():
        keys.extend((table, *lockfile.identity(item)) for item in items)
    if len(parts) != len(keys):  # pragma: no cover - to_toml's layout changed
        raise AssertionError("lock text does not split into one chunk per entry")
    return [(k, p if p.endswith("\n") else p + "\n") for k, p in zip(keys, parts, strict=True)]


_HEAD_KEYS = {("top", "version"), ("top", "platform"), ("top", "snapshot")}


def conflict_text(result: MergeResult, header: str, *, ours_label: str = "ours",
                  theirs_label: str = "theirs", marker: int = MARKER) -> str:
    """The merged lock's text with git-style markers around each conflicting unit."""
    conflicted = {c.key for c in result.conflicts}
    if conflicted & _HEAD_KEYS:
        conflicted.add(("top", "head"))
    ours = dict(chunks(result.lock))
    theirs = dict(chunks(result.theirs_lock))
    order = list(ours)
    for i, key in enumerate(theirs):  # entries only their side still has
        if key not in ours:
            before = list(theirs)[:i]
            at = max((order.index(k) + 1 for k in before if k in order), default=0)
            order.insert(at, key)
    out: list[str] = []
    for key in order:
        if key in conflicted:
            out.append(f"{'<' * marker} {ours_label}\n{ours.get(key, '')}{'=' * marker}\n"
                       f"{theirs.get(key, '')}{'>' * marker} {theirs_label}\n")
        else:
            out.append(ours.get(key) or theirs[key])
    return (header + "\n" if header else "") + "\n".join(out)


def header_of(text: str) -> str:
    """The generated-file comment lines a lock's text starts with."""
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def merged_text(result: MergeResult, header: str) -> str:
    """The text of a clean merge: ``header`` (from our file) and the merged lock."""
    lockfile.check(result.lock, "the merged lock")
    return (header + "\n" if header else "") + lockfile.to_toml(result.lock)

