"""Other tools' Python locks: PEP 751 ``pylock.toml`` and uv's ``uv.lock``, read strictly.

What relock compares with its own lock is kept: each pinned distribution's
normalised name, its version and the sha256 of every file listed for it
(wheels, sdist, archive), its marker (pylock), and the lock's
``requires-python`` and ``environments``. A pylock is validated by
``packaging.pylock``'s own reader when the installed packaging has one, else
by the strict reader here, which refuses what that one refuses; ``uv.lock``
(uv's format, not a standard) by the strict reader here. Every value that
may reach relock's output is checked against relock's grammars: a file's
text never changes the structure of what relock writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from relock.errors import LockfileError
from relock.lock.grammar import problem, show

if TYPE_CHECKING:
    from packaging.markers import Marker

# A pylock or uv.lock of a big project is some MiB; relock's own locks are held to 64.
MAX_BYTES = 64 * 1024 * 1024
_PYLOCK_NAME = re.compile(r"pylock\.toml|pylock\.[^./\s]+\.toml")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# PEP 508's marker variables (and PEP 751's extras, dependency_groups). Those an image's
# Python and platform decide are in ``marker_environment``; a marker naming another
# (python_full_version, an extra) is not judged, and its package is kept.
_MARKER_VARIABLE = re.compile(
    r"\b(python_full_version|python_version|os_name|sys_platform|platform_release|"
    r"platform_system|platform_version|platform_machine|platform_python_implementation|"
    r"implementation_name|implementation_version|extras?|dependency_groups)\b")

Kind = Literal["pylock", "uv.lock"]


class PythonLockError(LockfileError):
    """A pylock.toml or uv.lock that cannot be read, or breaks its format."""


@dataclass(frozen=True)
class Pinned:
    """One distribution another tool's lock pins."""

    name: str  # normalised (PEP 503)
    version: str  # "" when the lock names none (a directory or VCS source)
    sha256: tuple[str, ...] = ()  # lower-case hex, of every file listed for it, sorted
    marker: Marker | None = None  # pylock: when it applies
    source: str = ""  # "" for files on an index; else vcs, directory, archive, editable...


@dataclass(frozen=True)
class PythonLock:
    """A ``pylock.toml`` or ``uv.lock``: what it pins, and for which Pythons."""

    where: str
    kind: Kind
    packages: tuple[Pinned, ...]
    requires_python: str = ""
    environments: tuple[Marker, ...] = ()
    created_by: str = ""
    env: str = ""  # pylock: ``[tool.relock] env``, the environment relock exported
    platform: str = ""  # pylock: ``[tool.relock] platform``
    reader: str = ""  # "packaging" or "relock": which validated a pylock


def is_pylock_name(name: str) -> bool:
    """``pylock.toml`` or ``pylock.NAME.toml`` (PEP 751's file names)."""
    return bool(_PYLOCK_NAME.fullmatch(name))


def kind_of(name: str) -> Kind | None:
    """Which Python lock a file of that name is, if any."""
    if is_pylock_name(name):
        return "pylock"
    return "uv.lock" if name == "uv.lock" else None


def read(path: Path) -> PythonLock:
    """The Python lock at ``path`` (a regular file of at most 64 MiB, UTF-8 TOML)."""
    from relock.files import TooBigError, read_regular

    kind = kind_of(path.name)
    if kind is None:
        raise PythonLockError(f"{path}: not a pylock.toml, pylock.NAME.toml or uv.lock")
    try:
        data = read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        raise PythonLockError(f"{path}: no such file") from None
    except TooBigError:
        raise PythonLockError(f"{path}: too big for a {kind} (over {MAX_BYTES} bytes)") from None
    except OSError as e:
        raise PythonLockError(f"{path}: cannot read: {e.strerror or e}") from None
    return loads(data, str(path), kind)


def loads(data: bytes, where: str, kind: Kind, *, reader: str | None = None) -> PythonLock:
    """A Python lock from its bytes. ``reader`` (tests): ``"relock"`` forces relock's
    strict pylock reader, ``"packaging"`` packaging's."""
    import tomli

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PythonLockError(f"{where}: not UTF-8 text (byte {e.start})") from None
    try:
        doc = tomli.loads(text)
    except tomli.TOMLDecodeError as e:
        raise PythonLockError(f"{where}: not valid TOML ({show(str(e), 80)})") from None
    except RecursionError:
        raise PythonLockError(f"{where}: not a {kind} (nested too deeply)") from None
    if kind == "uv.lock":
        return _uv_lock(doc, where)
    if reader is None:
        reader = "packaging" if _packaging_reads_pylock() else "relock"
    return _pylock_packaging(doc, where) if reader == "packaging" else _pylock_strict(doc, where)


def _packaging_reads_pylock() -> bool:
    try:
        import packaging.pylock  # noqa: F401
    except ImportError:
        return False
    return True


# -- PEP 751 ---------------------------------------------------------------------

def _pylock_packaging(doc: Mapping[str, Any], where: str) -> PythonLock:
    from packaging.pylock import Pylock, PylockValidationError

    try:
        lock = Pylock.from_dict(doc)
    except PylockValidationError as e:
        raise PythonLockError(f"{where}: not a valid pylock ({show(str(e), 120)})") from None
    except RecursionError:
        raise PythonLockError(f"{where}: not a valid pylock (nested too deeply)") from None
    packages = []
    for n, p in enumerate(lock.packages):
        files = [*(w.hashes for w in p.wheels or ()),
                 *((p.sdist.hashes,) if p.sdist else ()),
                 *((p.archive.hashes,) if p.archive else ())]
        source = ("vcs" if p.vcs else "directory" if p.directory else
                  "archive" if p.archive else "")
        packages.append(Pinned(str(p.name), _version(str(p.version) if p.version else "",
                                                      where, n),
                               _sha256(files, where, n), p.marker, source))
    env, platform = _tool_relock(lock.tool, where)
    return PythonLock(where, "pylock", tuple(packages),
                      str(lock.requires_python) if lock.requires_python else "",
                      tuple(lock.environments or ()), _text(lock.created_by), env, platform,
                      reader="packaging")


def _pylock_strict(doc: Mapping[str, Any], where: str) -> PythonLock:
    """PEP 751's rules as packaging's reader holds them, for a packaging without one."""
    from packaging.markers import InvalidMarker, Marker
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )
    from packaging.version import InvalidVersion, Version

    def bad(what: str, why: str) -> PythonLockError:
        return PythonLockError(f"{where}: not a valid pylock ({why} in {what!r})")

    version = _get(doc, str, "lock-version", where, required=True)
    try:
        lock_version = Version(version)
    except InvalidVersion:
        raise bad("lock-version", "not a version") from None
    if not Version("1") <= lock_version < Version("2.dev0"):
        raise PythonLockError(f"{where}: not a valid pylock (pylock version {lock_version} "
                              "is not supported)")
    created_by = _get(doc, str, "created-by", where, required=True)
    requires = _get(doc, str, "requires-python", where)
    try:
        if requires:
            SpecifierSet(requires)
    except InvalidSpecifier:
        raise bad("requires-python", "not a version specifier") from None
    environments = []
    for n, text in enumerate(_list(doc, "environments", str, where)):
        try:
            environments.append(Marker(text))
        except InvalidMarker:
            raise bad(f"environments[{n}]", "not a marker") from None
    tool = _get(doc, dict, "tool", where)
    raw = _list(doc, "packages", dict, where, required=True)
    packages = []
    for n, p in enumerate(raw):
        at = f"packages[{n}]"
        name = _get(p, str, "name", where, required=True, at=at)
        if problem("pep503-name", name):
            raise bad(f"{at}.name", f"name {show(name)} is not normalized")
        text = _get(p, str, "version", where, at=at) or ""
        pversion = None
        if text:
            try:
                pversion = Version(text)
            except InvalidVersion:
                raise bad(f"{at}.version", "not a version") from None
        marker = None
        if (m := _get(p, str, "marker", where, at=at)) is not None:
            try:
                marker = Marker(m)
            except InvalidMarker:
                raise bad(f"{at}.marker", "not a marker") from None
        if (rp := _get(p, str, "requires-python", where, at=at)) is not None:
            try:
                SpecifierSet(rp)
            except InvalidSpecifier:
                raise bad(f"{at}.requires-python", "not a version specifier") from None
        wheels = _list(p, "wheels", dict, where, at=at)
        sdist = _get(p, dict, "sdist", where, at=at)
        direct = {k: _get(p, dict, k, where, at=at) for k in ("vcs", "directory", "archive")}
        named = [k for k, v in direct.items() if v is not None]
        if (wheels or sdist is not None) and named:
            raise bad(at, "none of vcs, directory, archive must be set if sdist or wheels "
                          "are set")
        if not wheels and sdist is None and len(named) != 1:
            raise bad(at, "exactly one of vcs, directory, archive must be set if sdist and "
                          "wheels are not set")
        hashes = []
        for i, w in enumerate(wheels):
            wat = f"{at}.wheels[{i}]"
            hashes.append(_file_hashes(w, wat, where))
            filename = _filename(w, wat, where)
            try:
                wname, wversion, _, _ = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                raise bad(wat, f"invalid wheel filename {show(filename)}") from None
            if wname != name or (pversion is not None and wversion != pversion):
                raise bad(wat, f"{show(filename)} is not consistent with the package")
        if sdist is not None:
            hashes.append(_file_hashes(sdist, f"{at}.sdist", where))
            filename = _filename(sdist, f"{at}.sdist", where)
            try:
                sname, sversion = parse_sdist_filename(filename)
            except InvalidSdistFilename:
                raise bad(f"{at}.sdist", f"invalid sdist filename {show(filename)}") from None
            if sname != name or (pversion is not None and sversion != pversion):
                raise bad(f"{at}.sdist", f"{show(filename)} is not consistent with the package")
        if direct["archive"] is not None:
            hashes.append(_file_hashes(direct["archive"], f"{at}.archive", where))
            _filename(direct["archive"], f"{at}.archive", where)
        if direct["vcs"] is not None:
            _get(direct["vcs"], str, "type", where, required=True, at=f"{at}.vcs")
            _get(direct["vcs"], str, "commit-id", where, required=True, at=f"{at}.vcs")
        if direct["directory"] is not None:
            _get(direct["directory"], str, "path", where, required=True, at=f"{at}.directory")
        packages.append(Pinned(name, _version(str(pversion) if pversion else "", where, n),
                               _sha256(hashes, where, n), marker, named[0] if named else ""))
    env, platform = _tool_relock(tool, where)
    return PythonLock(where, "pylock", tuple(packages),
                      str(SpecifierSet(requires)) if requires else "", tuple(environments),
                      _text(created_by), env, platform, reader="relock")


def _file_hashes(table: Mapping[str, Any], at: str, where: str) -> Mapping[str, str]:
    hashes = _get(table, dict, "hashes", where, required=True, at=at)
    if not hashes:
        raise PythonLockError(f"{where}: not a valid pylock (at least one hash must be "
                              f"provided in {at + '.hashes'!r})")
    if not all(isinstance(v, str) for v in hashes.values()):
        raise PythonLockError(f"{where}: not a valid pylock (hash values must be strings "
                              f"in {at + '.hashes'!r})")
    out: Mapping[str, str] = hashes
    return out


def _filename(table: Mapping[str, Any], at: str, where: str) -> str:
    """The file's name: ``name``, else the last part of ``path`` or ``url``."""
    from urllib.parse import unquote, urlparse

    url = _get(table, str, "url", where, at=at)
    path = _get(table, str, "path", where, at=at)
    if not url and not path:
        raise PythonLockError(f"{where}: not a valid pylock (path or url must be provided "
                              f"in {at!r})")
    name = _get(table, str, "name", where, at=at)
    if name:
        return str(name)
    if path:
        return str(path).rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return unquote(urlparse(str(url)).path.rsplit("/", 1)[-1])


def _tool_relock(tool: Mapping[str, Any] | None, where: str) -> tuple[str, str]:
    """``[tool.relock]``'s env and platform (relock's export writes them), checked."""
    relock = (tool or {}).get("relock")
    if not isinstance(relock, Mapping):
        return "", ""
    out = []
    for key, grammar in (("env", "abs-path"), ("platform", "platform")):
        value = relock.get(key, "")
        if value == "":
            out.append("")
            continue
        if not isinstance(value, str) or problem(grammar, value):
            why = problem(grammar, value) if isinstance(value, str) else "not a string"
            raise PythonLockError(f"{where}: [tool.relock] {key} {show(str(value))}: {why}")
        out.append(value)
    return out[0], out[1]


# -- uv.lock -----------------------------------------------------------------------

def _uv_lock(doc: Mapping[str, Any], where: str) -> PythonLock:
    """uv's lock: ``version = 1``, ``requires-python``, ``[[package]]`` with ``name``,
    ``version``, ``source``, ``sdist`` and ``wheels`` (each with ``hash``)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PythonLockError(f"{where}: not a uv.lock ('version' must be an integer)")
    if version != 1:
        raise PythonLockError(f"{where}: uv.lock version {version} is not one relock reads (1)")
    requires = _get(doc, str, "requires-python", where) or ""
    try:
        requires = str(SpecifierSet(requires)) if requires else ""
    except InvalidSpecifier:
        raise PythonLockError(f"{where}: 'requires-python' is not a version specifier") from None
    packages = []
    for n, p in enumerate(_list(doc, "package", dict, where)):
        at = f"package[{n}]"
        name = _get(p, str, "name", where, required=True, at=at)
        if problem("pep503-name", name):
            raise PythonLockError(f"{where}: {at}.name {show(name)}: "
                                  f"{problem('pep503-name', name)}")
        text = _get(p, str, "version", where, at=at) or ""
        source = _get(p, dict, "source", where, at=at) or {}
        kind = next((k for k in ("registry", "editable", "virtual", "directory", "git", "url",
                                 "path") if k in source), "")
        files = [_get(p, dict, "sdist", where, at=at),
                 *_list(p, "wheels", dict, where, at=at)]
        hashes = []
        for f in files:
            if f is None:
                continue
            h = f.get("hash")
            if h is None:
                continue
            if not isinstance(h, str) or ":" not in h:
                raise PythonLockError(f"{where}: {at}: a file's 'hash' {show(str(h))} is not "
                                      "ALGORITHM:HEX")
            algorithm, _, value = h.partition(":")
            hashes.append({algorithm: value})
        packages.append(Pinned(name, _version(text, where, n), _sha256(hashes, where, n),
                               None, "" if kind == "registry" else kind))
    return PythonLock(where, "uv.lock", tuple(packages), requires)


# -- shared checks ----------------------------------------------------------------

def _get(d: Mapping[str, Any], kind: type, key: str, where: str, *, required: bool = False,
         at: str = "") -> Any:
    what = f"{at}.{key}" if at else key
    value = d.get(key)
    if value is None:
        if required:
            raise PythonLockError(f"{where}: missing required value {what!r}")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PythonLockError(f"{where}: {what!r} is {_KIND_NAMES.get(type(value), 'a value')}"
                              f", not {_KIND_NAMES.get(kind, kind.__name__)}")
    return value


_KIND_NAMES = {str: "a string", dict: "a table", list: "an array", int: "an integer"}


def _list(d: Mapping[str, Any], key: str, item: type, where: str, *, required: bool = False,
          at: str = "") -> list[Any]:
    value = _get(d, list, key, where, required=required, at=at) or []
    what = f"{at}.{key}" if at else key
    for n, v in enumerate(value):
        if not isinstance(v, item):
            raise PythonLockError(f"{where}: '{what}[{n}]' is "
                                  f"{_KIND_NAMES.get(type(v), 'a value')}, not "
                                  f"{_KIND_NAMES.get(item, item.__name__)}")
    return list(value)


def _version(text: str, where: str, n: int) -> str:
    if text and problem("pep440-version", text):
        raise PythonLockError(f"{where}: package {n}: version {show(text)}: "
                              f"{problem('pep440-version', text)}")
    return text


def _sha256(files: Iterable[Mapping[str, str]], where: str, n: int) -> tuple[str, ...]:
    """The sha256 of each file that states one (other algorithms are not compared)."""
    out = set()
    for hashes in files:
        value = hashes.get("sha256")
        if value is None:
            continue
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise PythonLockError(f"{where}: package {n}: sha256 {show(str(value))} is not 64 "
                                  "hex digits")
        out.add(value.lower())
    return tuple(sorted(out))


def _text(value: str) -> str:
    return value if not problem("text", value) else ""


# -- choosing what applies to one environment ---------------------------------------

def marker_environment(python: str, platform: str) -> dict[str, str]:
    """The marker values an image's Python (``3.13``) and platform decide."""
    from relock.lock.platform import python_machine

    env = {"implementation_name": "cpython", "platform_python_implementation": "CPython"}
    if python:
        env["python_version"] = python
    os_name = platform.partition("/")[0]
    if os_name == "linux":
        env.update(sys_platform="linux", platform_system="Linux", os_name="posix")
        machine = python_machine(platform)
        if machine:
            env["platform_machine"] = machine
    elif os_name == "windows":
        env.update(sys_platform="win32", platform_system="Windows", os_name="nt")
    return env


def applies(marker: Marker | None, environment: Mapping[str, str]) -> bool:
    """Whether ``marker`` holds in ``environment``; one that names a variable the
    environment does not hold (``python_full_version``, an extra) is taken to hold."""
    if marker is None:
        return True
    if any(name not in environment for name in _MARKER_VARIABLE.findall(str(marker))):
        return True
    return bool(marker.evaluate(dict(environment)))


def for_environment(lock: PythonLock, python: str, platform: str
                    ) -> tuple[tuple[Pinned, ...], tuple[str, ...]]:
    """The packages that apply to an environment of ``python`` on ``platform``, and
    what is worth saying: the lock's ``requires-python`` or ``environments`` exclude it."""
    from packaging.specifiers import SpecifierSet

    environment = marker_environment(python, platform)
    notes = []
    if python and lock.requires_python and not SpecifierSet(lock.requires_python).contains(
            f"{python}.0", prereleases=True) and not SpecifierSet(
            lock.requires_python).contains(f"{python}.99", prereleases=True):
        notes.append(f"its requires-python {lock.requires_python} excludes Python {python}")
    if lock.environments and not any(applies(m, environment) for m in lock.environments):
        notes.append(f"its environments exclude Python {python} on {platform}")
    chosen = tuple(p for p in lock.packages if applies(p.marker, environment))
    return chosen, tuple(notes)


def by_name(packages: Sequence[Pinned]) -> dict[str, list[Pinned]]:
    out: dict[str, list[Pinned]] = {}
    for p in packages:
        out.setdefault(p.name, []).append(p)
    return out


def hashes_agree(a: Iterable[str], b: Iterable[str]) -> bool:
    """Whether two lists of file hashes (``sha256:HEX`` or ``HEX``) agree: the files one
    lists are all among the other's. A pylock may list fewer files than the index holds
    for a version (those of one platform); a relock lock lists every one."""
    x = {h.removeprefix("sha256:") for h in a}
    y = {h.removeprefix("sha256:") for h in b}
    return x <= y or y <= x
