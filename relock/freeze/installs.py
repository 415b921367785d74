"""The ``pylock.toml`` or ``uv.lock`` a template installs from, held against what freeze found.

A template installs from a Python lock when one of its ``RUN`` instructions
names the file (``uv pip install -r /tmp/pylock.toml``, ``pip install -r
pylock.toml``) or runs ``uv sync`` (which reads ``uv.lock``). The file is
found in the build context as the build got it: a ``COPY``/``ADD`` source or
a ``RUN --mount=type=bind`` source of that name, else inside a folder that a
``COPY``/``ADD`` copies (``COPY . /app``). It is read below the context
without following a link (``relock.files.Tree``) by ``relock.lock.pythonlock``.

Each is compared with the Python environment of the final image that holds
most of its names (relock's own export names its environment in
``[tool.relock]``): a version the image does not have, a file hash the
lock's do not agree with, or (a pylock, which lists what is installed) a
distribution the image lacks is a warning naming the package; agreement is
a note. A file that cannot be read is a warning too: the image is frozen all
the same.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from relock.lock.lockfile import Lock, PipPackage
from relock.lock.pythonlock import Pinned, PythonLock, kind_of
from relock.template.dockerfile import Dockerfile

# A file name a RUN instruction may install from (with any folders before it).
_NAMED = re.compile(r"(?<![\w.+-])(?:[\w.+-]*/)*(pylock\.toml|pylock\.[\w+-]+\.toml|uv\.lock)"
                    r"(?![\w.+-])")
_UV_SYNC = re.compile(r"(?<![\w-])uv\s+sync\b")
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Named:
    """A Python lock the template installs from, found in the build context."""

    parts: tuple[str, ...]  # its path in the context
    line: int  # the 1-based line of the RUN that installs from it
    missing: bool = False  # named, but not found in the context
    refused: str = ""  # found, but not a regular file (a link): why it is not read

    @property
    def path(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True)
class Check:
    """What comparing the template's Python locks with the image found."""

    notes: tuple[str, ...]
    warnings: tuple[str, ...]


def _words(value: str) -> list[str]:
    """An instruction's arguments: its JSON array form, else its shell words."""
    if value.lstrip().startswith("["):
        try:
            doc = json.loads(value)
        except ValueError:
            doc = None
        if isinstance(doc, list) and all(isinstance(w, str) for w in doc):
            return doc
    try:
        return shlex.split(value, comments=False)
    except ValueError:
        return value.split()


def _in_context(source: str) -> tuple[str, ...] | None:
    """A COPY source as its path below the context (None: outside it, or a glob)."""
    if _GLOB.search(source) or "://" in source:
        return None
    path = posixpath.normpath("/" + source).lstrip("/")
    if path in ("", "."):
        return ()
    parts = tuple(path.split("/"))
    return None if ".." in parts else parts


def _copied(dockerfile: Dockerfile) -> list[tuple[str, ...]]:
    """Every context path a ``COPY``/``ADD`` (not ``--from``) or a bind mount takes."""
    out: list[tuple[str, ...]] = []
    for ins in dockerfile.instructions:
        if ins.instruction in ("COPY", "ADD"):
            words = _words(ins.value)
            flags = [w for w in words if w.startswith("--")]
            if any(f.startswith("--from=") for f in flags):
                continue
            sources = [w for w in words if not w.startswith("--")][:-1]
        elif ins.instruction == "RUN":
            sources = []
            for mount in re.findall(r"--mount=(\S+)", ins.value):
                fields = dict(f.partition("=")[::2] for f in mount.split(","))
                if fields.get("type", "bind") == "bind" and "from" not in fields:
                    source = fields.get("source") or fields.get("src") or ""
                    if source:
                        sources.append(source)
        else:
            continue
        out += [p for s in sources if (p := _in_context(s)) is not None]
    return out


def named(dockerfile: Dockerfile, context: Path) -> list[Named]:
    """The Python lock files the template's ``RUN`` instructions install from, each once,
    in the order they are first named."""
    from relock.files import NotInsideError, Tree

    tree = Tree(context)
    refused: dict[tuple[str, ...], str] = {}

    def regular(parts: tuple[str, ...]) -> bool:
        try:
            return bool(parts) and tree.kind(parts) == "file"
        except NotInsideError as e:
            refused.setdefault(parts, f"{e.filename} {e.strerror}")
            return False
        except OSError:
            return False

    copied = _copied(dockerfile)
    found: dict[tuple[str, ...], Named] = {}
    for ins in dockerfile.instructions:
        if ins.instruction != "RUN":
            continue
        names = list(dict.fromkeys(m.group(1) for m in _NAMED.finditer(ins.value)))
        if _UV_SYNC.search(ins.value) and "uv.lock" not in names:
            names.append("uv.lock")
        for name in names:
            direct = [p for p in copied if p and p[-1] == name]
            inside = [(*p, name) for p in copied if not (p and kind_of(p[-1]))]
            candidates = (*direct, *inside)
            hit = next((p for p in candidates if regular(p)), None)
            bad = next((p for p in candidates if p in refused), None)
            if hit is None and bad is not None:
                found.setdefault(bad, Named(bad, ins.startline + 1, refused=refused[bad]))
            elif hit is None:
                key = (name,)
                found.setdefault(key, Named(key, ins.startline + 1, missing=True))
            elif hit not in found or found[hit].missing:
                found[hit] = Named(hit, ins.startline + 1)
    # A name found somewhere is not also reported missing.
    have = {n.parts[-1] for n in found.values() if not n.missing}
    return [n for n in found.values() if not (n.missing and n.parts[-1] in have)]


def check(lock: Lock, dockerfile: Dockerfile, context: Path) -> Check:
    """The template's Python locks against ``lock``'s final image, every platform."""
    from relock.errors import RelockError
    from relock.files import Tree
    from relock.lock import pythonlock

    notes: list[str] = []
    warnings: list[str] = []
    template = Path(dockerfile.path).name
    for n in named(dockerfile, context):
        head = f"{template} line {n.line} installs from {n.path}"
        if n.missing:
            notes.append(f"{head}, which is not in the build context {context}; not compared")
            continue
        if n.refused:
            warnings.append(f"{head}; not compared: {n.refused}")
            continue
        kind = kind_of(n.parts[-1])
        assert kind is not None
        try:
            data = Tree(context).read(n.parts, pythonlock.MAX_BYTES)
            plock = pythonlock.loads(data, n.path, kind)
        except RelockError as e:
            warnings.append(f"{head}; not compared: {e}")
            continue
        except OSError as e:
            warnings.append(f"{head}; not compared: cannot read it: {e.strerror or e}")
            continue
        for platform in lock.all_platforms:
            on = f" on {platform}" if lock.multi else ""
            agree, disagree = compare(plock, lock.for_platform(platform).final(), on)
            notes.append(f"{head}: {agree}")
            warnings += disagree
    return Check(tuple(notes), tuple(warnings))


def compare(plock: PythonLock, part: Lock, on: str = "") -> tuple[str, list[str]]:
    """One platform's final image against ``plock``: a note, and a warning per package
    that disagrees."""
    from relock.lock.pythonlock import by_name, for_environment

    if not part.python:
        return f"the image has no Python environment{on} to compare it with", []
    envs = {e.prefix: e for e in part.python}
    installed = {e: {d.name: d for d in part.pip if d.env == e} for e in envs}
    env = plock.env if plock.env in envs else max(
        envs, key=lambda e: len(installed[e].keys() & {p.name for p in plock.packages}))
    pinned, excluded = for_environment(plock, envs[env].python, part.platform)
    want = by_name(pinned)
    have = installed[env]
    where = f"{env}{on}"
    warnings = [f"{plock.where}: {why}, and {where} has Python {envs[env].python}"
                for why in excluded]
    hashed = unhashed = 0
    for name, options in sorted(want.items()):
        d = have.get(name)
        if d is None:
            if plock.kind == "pylock":
                warnings.append(f"{plock.where}: {name} {_versions(options)} is not in {where}")
            continue
        same = [p for p in options if not p.version or _same_version(p.version, d.version)]
        if not same:
            warnings.append(f"{plock.where}: {name}: it pins {_versions(options)}, "
                            f"{where} has {d.version}")
            continue
        sums = [p for p in same if p.sha256]
        if not sums or not d.hashes:
            unhashed += 1
            continue
        hashed += 1
        if not any(_hashes_agree(p, d) for p in sums):
            warnings.append(f"{plock.where}: {name} {d.version}: its file hashes are not "
                            f"those freeze found on the index for {where}")
    compared = sum(1 for name in want if name in have)
    what = (f"its {_n(len(want), 'distribution')}" if plock.kind == "pylock" else
            f"the {compared} of its {_n(len(want), 'distribution')} that {where} holds")
    one = (len(want) if plock.kind == "pylock" else compared) == 1
    said = (f"{what} {'agrees' if one else 'agree'} with {where}" if not warnings else
            f"{_n(len(warnings), 'disagreement')} with {where} (warned), of {what}")
    how = ("versions and hashes" if hashed and not unhashed else
           f"versions; hashes of {hashed}, the others have none on one side" if hashed else
           "versions only: no hashes on one side")
    extra = sorted(set(have) - set(want))
    more = f"; {where} also holds {_list(extra)}" if extra and plock.kind == "pylock" else ""
    return f"{said} ({how}){more}", warnings


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _versions(options: Sequence[Pinned]) -> str:
    return " or ".join(sorted({p.version or f"({p.source or 'no version'})" for p in options}))


def _list(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _same_version(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _hashes_agree(p: Pinned, d: PipPackage) -> bool:
    from relock.lock.pythonlock import hashes_agree

    return hashes_agree(p.sha256, d.hashes)
