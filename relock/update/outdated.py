"""Which locked packages have newer versions, without building anything.

APT: the current Packages indexes of the lock's own sources (through
``Archive.candidates``: Release found, its signature checked with this
machine's keyrings where it has the source's ``Signed-By`` file, index
hashes checked, answers cached by content). A newer version served by a
``*-security`` suite marks the package as a security update.

pip: every file of each locked distribution on the index pip is configured
with (``Index.links``), newest final release whose ``Requires-Python``
admits the environment's Python. The template's own requirement specifiers
(``pip install 'numpy<2.5'`` words and ``-r`` files in its folder, read
best-effort) may hold a package back: then the newest version they allow is
what an update could reach.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from relock import files
from relock.errors import RelockError
from relock.lock.lockfile import AptPackage, AptSource, Lock

if TYPE_CHECKING:
    from debian.debian_support import Version as DebVersion

    from relock.upstream.archive import AptArchive
    from relock.upstream.debindex import DebEntry, Key
    from relock.upstream.index import PackageIndex

# A pip answer (the versions a project has) is reused for this long.
PIP_TTL = 3600.0

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Outdated:
    """One locked package with a newer version."""

    kind: str  # "apt" or "pip"
    name: str
    locked: str
    newest: str
    # APT: the suite the newest version comes from; pip: the environment.
    where: str
    arch: str = ""
    stage: str = ""
    security: bool = False
    # pip: the template's specifier that keeps ``newest`` out, and the newest
    # version it allows ("" when it allows nothing newer than the lock).
    held_back_by: str = ""
    allowed: str = ""

    @property
    def movable(self) -> bool:
        """Whether an update could move it at all."""
        return not self.held_back_by or bool(self.allowed)

    @property
    def target(self) -> str:
        """The version an update would move it to."""
        return self.allowed if self.held_back_by else self.newest


@dataclass(frozen=True)
class Report:
    packages: tuple[Outdated, ...]
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # sources or projects that could not be read

    @property
    def outdated(self) -> bool:
        return any(p.movable for p in self.packages)


def is_security_suite(suite: str) -> bool:
    """``trixie-security``, and the older ``buster/updates`` of security.debian.org."""
    return suite.endswith("-security") or suite.endswith("/updates")


# -- APT ---------------------------------------------------------------------

def local_keyrings(sources: Sequence[AptSource], root: Path = Path("/")) -> dict[str, bytes]:
    """The keyring files of this machine that the sources name or apt trusts, by path.

    A lock names these paths: each is read only if it is a regular file of at most
    ``bounds.KEYRING`` bytes (``Signed-By: /dev/zero`` or a FIFO is refused, one
    line naming it, never read); one that is not there is left out.
    """
    from relock import bounds
    from relock.errors import LimitError
    from relock.upstream.aptsig import keyring_paths

    def listdir(path: str) -> list[str] | None:
        try:
            return [p.name for p in (root / path.lstrip("/")).iterdir()]
        except OSError:
            return None

    out = {}
    for p in keyring_paths(sources, listdir):
        path = root / p.lstrip("/")
        try:
            out[p] = files.read_regular(path, bounds.KEYRING)
        except files.TooBigError:
            raise LimitError(bounds.over(f"{path} (a keyring of the lock's APT sources)",
                                         "the file", bounds.size_text(bounds.KEYRING))
                             ) from None
        except files.NotRegularFileError:
            raise RelockError(f"{path} (a keyring of the lock's APT sources): not a regular "
                              "file; refused, not read") from None
        except OSError:
            continue
    return out


def apt_outdated(lock: Lock, archive: AptArchive, keyrings: Mapping[str, bytes] | None = None,
                 snapshot: str = "", snapshot_url: str | None = None,
                 ) -> tuple[list[Outdated], list[str]]:
    """Newer versions of the lock's APT packages in its sources' indexes.

    Live, or as the sources stood at ``snapshot`` (on ``snapshot_url``, else
    the distro's snapshot service).

    Returns the outdated packages and the sources that could not be read.
    A source whose ``Signed-By`` keyring this machine lacks is read unchecked
    (with a warning): the lock names the file, not the key.
    """
    from debian.debian_support import Version

    from relock.upstream.aptsig import signed_by_paths

    if not lock.apt or not lock.apt_sources:
        return [], []
    checked = keyrings is not None
    keys = dict(keyrings or {})
    by_arch: dict[str, list[AptPackage]] = {}
    for pkg in lock.apt:
        by_arch.setdefault(pkg.arch, []).append(pkg)
    out: list[Outdated] = []
    problems: list[str] = []
    before = len(archive.warnings)
    for arch, pkgs in sorted(by_arch.items()):
        names = {p.name for p in pkgs}
        found: list[tuple[str, Key, DebEntry]] = []
        for src in lock.apt_sources:
            missing = [p for p in signed_by_paths(src) if p not in keys]
            ring = keys if checked and not missing else None
            if checked and missing:
                archive.warnings.append(
                    f"{src.file}: {missing[0]} is not on this machine; the signature of "
                    f"{' '.join(src.uris)} is not checked")
            found += archive.candidates([src], arch if arch != "all" else lock_arch(lock),
                                        names, ring, snapshot=snapshot,
                                        snapshot_url=snapshot_url)
        versions: dict[str, list[tuple[DebVersion, str]]] = {}
        for suite, (name, version, _a), _entry in found:
            versions.setdefault(name, []).append((Version(version), suite))
        for pkg in pkgs:
            locked = Version(pkg.version)
            newer = [(v, s) for v, s in versions.get(pkg.name, []) if v > locked]
            if not newer:
                continue
            newest, suite = max(newer, key=lambda vs: vs[0])
            out.append(Outdated(
                "apt", pkg.name, pkg.version, str(newest), suite, arch=pkg.arch,
                stage=pkg.stage, security=any(is_security_suite(s) for _v, s in newer)))
    problems += [w for w in archive.warnings[before:] if "cannot read" in w
                 or "were not read" in w]
    return out, problems


def lock_arch(lock: Lock) -> str:
    """The Debian architecture of the lock's platform (amd64 when it names none)."""
    from relock.lock.platform import debian_arch

    return debian_arch(lock.platform) if lock.platform else "amd64"


# -- pip ---------------------------------------------------------------------

def template_requirements(dockerfile: Path) -> dict[str, list[str]]:
    """Requirement specifiers the template's ``pip install`` words and -r files give, by name.

    Best-effort: words that are not requirements (options, paths, URLs,
    shell) are skipped, and so is a requirements file outside the template's
    folder or not there.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        text = dockerfile.read_text("utf-8", "replace")
    except OSError:
        return {}
    folder = dockerfile.parent.resolve()
    joined = re.sub(r"\\\n", " ", text)
    words: list[str] = []
    for line in joined.splitlines():
        if not re.match(r"\s*RUN\b", line, re.IGNORECASE) or "pip" not in line:
            continue
        try:
            tokens = shlex.split(line, comments=False)
        except ValueError:
            tokens = line.split()
        for part in _commands(tokens):
            words += _pip_install_args(part, folder)
    out: dict[str, list[str]] = {}
    for word in words:
        try:
            req = Requirement(word)
        except InvalidRequirement:
            continue
        if req.specifier:
            out.setdefault(str(canonicalize_name(req.name)), []).append(
                f"{req.name}{req.specifier}")
    return out


def _commands(tokens: list[str]) -> Iterable[list[str]]:
    part: list[str] = []
    for t in tokens:
        if t in ("&&", "||", ";", "|"):
            yield part
            part = []
        else:
            part.append(t)
    yield part


def _pip_install_args(words: list[str], folder: Path) -> list[str]:
    for i, w in enumerate(words):
        if (w == "pip" or w.endswith("/pip") or re.fullmatch(r"(.*/)?pip3(\.\d+)?", w)
                or (w == "pip" and i and words[i - 1] == "-m")) and words[i + 1:i + 2] == [
                "install"]:
            rest = words[i + 2:]
            break
    else:
        return []
    out: list[str] = []
    it = iter(rest)
    for w in it:
        if w in ("-r", "--requirement", "-c", "--constraint"):
            out += _requirements_file(folder, next(it, ""))
        elif w.startswith("--requirement=") or w.startswith("--constraint="):
            out += _requirements_file(folder, w.split("=", 1)[1])
        elif w.startswith("-"):
            continue
        else:
            out.append(w)
    return out


def _requirements_file(folder: Path, name: str) -> list[str]:
    path = (folder / name.lstrip("/")).resolve()
    if not name or not path.is_relative_to(folder) or not path.is_file():
        return []
    out = []
    for line in path.read_text("utf-8", "replace").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            out.append(line)
    return out


def pip_versions(index: PackageIndex, name: str, cache_dir: Path | None,
                 ttl: float = PIP_TTL) -> list[tuple[str, str]]:
    """(version, requires-python) of every file of ``name`` on the index, cached ``ttl`` s."""
    from relock.upstream.index import _version_of

    path = None
    if cache_dir is not None:
        key = json.dumps([list(index.config.urls), name])
        path = cache_dir / (hashlib.sha256(key.encode()).hexdigest() + ".json")
        try:
            if time.time() - path.stat().st_mtime < ttl:
                data = json.loads(path.read_text())
                return [(str(v), str(r)) for v, r in data]
        except (OSError, ValueError, TypeError):
            pass
    out = []
    for link in index.links(name):
        version = _version_of(link.filename)
        if version is not None:
            out.append((str(version), link.requires_python))
    if path is not None:
        from relock.files import atomic_write_text

        with contextlib.suppress(OSError, RelockError):
            atomic_write_text(path, json.dumps(sorted(set(out))))
    return out


def pip_outdated(lock: Lock, index: PackageIndex, template: Mapping[str, list[str]],
                 cache_dir: Path | None = None,
                 ttl: float = PIP_TTL) -> tuple[list[Outdated], list[str]]:
    """Newer releases of the lock's pip distributions on the configured index."""
    from concurrent.futures import ThreadPoolExecutor

    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    pythons = {(e.stage, e.prefix): e.python for e in lock.python}
    names = sorted({p.name for p in lock.pip})
    problems: list[str] = []

    def look(name: str) -> list[tuple[str, str]]:
        try:
            return pip_versions(index, name, cache_dir, ttl)
        except RelockError as e:
            problems.append(f"{name}: {e}")
            return []

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(zip(names, pool.map(look, names), strict=True))
    out: list[Outdated] = []
    for pkg in lock.pip:
        locked = Version(pkg.version)
        python = pythons.get((pkg.stage, pkg.env), "")
        candidates = set()
        for text, requires in answers.get(pkg.name, []):
            try:
                v = Version(text)
                if requires and python and not SpecifierSet(requires).contains(
                        python + (".0" if python.count(".") == 1 else ""), prereleases=True):
                    continue
            except (InvalidVersion, InvalidSpecifier):
                continue
            if v > locked and (not v.is_prerelease or locked.is_prerelease):
                candidates.add(v)
        if not candidates:
            continue
        newest = max(candidates)
        held, allowed = "", ""
        for spec_text in template.get(pkg.name, []):
            spec = SpecifierSet(spec_text[len(_req_name(spec_text)):])
            if not spec.contains(newest, prereleases=True):
                held = spec_text
                ok = [v for v in candidates if spec.contains(v, prereleases=True)]
                allowed = str(max(ok)) if ok else ""
                break
        out.append(Outdated("pip", pkg.name, pkg.version, str(newest), pkg.env,
                            stage=pkg.stage, held_back_by=held, allowed=allowed))
    return out, problems


def _req_name(text: str) -> str:
    m = re.match(r"[A-Za-z0-9._-]+(\[[^\]]*\])?", text)
    return m.group(0) if m else ""


# -- both --------------------------------------------------------------------

def outdated(lock: Lock, *, archive: AptArchive | None, index: PackageIndex | None,
             template: Mapping[str, list[str]], pip_cache: Path | None = None,
             keyrings: Mapping[str, bytes] | None = None,
             only: Sequence[str] = ("apt", "pip"), snapshot: str = "",
             snapshot_url: str | None = None) -> Report:
    """The lock's outdated packages, APT then pip, each sorted by name."""
    found: list[Outdated] = []
    problems: list[str] = []
    warnings: list[str] = []
    if "apt" in only and archive is not None:
        if snapshot and not snapshot_url:
            from relock.upstream.archive import SNAPSHOT_URLS

            snapshot_url = SNAPSHOT_URLS.get(lock.distro.id)
        apt, bad = apt_outdated(lock, archive, keyrings, snapshot, snapshot_url)
        found += sorted(apt, key=lambda o: (o.stage, o.name, o.arch))
        problems += bad
        warnings += [w for w in archive.warnings if w not in bad]
    if "pip" in only and index is not None:
        pip, bad = pip_outdated(lock, index, template, pip_cache)
        found += sorted(pip, key=lambda o: (o.stage, o.where, o.name))
        problems += bad
    return Report(tuple(found), tuple(dict.fromkeys(warnings)), tuple(problems))


def default_cache_dir() -> Path:
    """Where pip answers are cached (``$XDG_CACHE_HOME/relock/outdated``)."""
    return files.cache_home() / "outdated"


# -- output ------------------------------------------------------------------

def _note(o: Outdated) -> str:
    notes = []
    if o.security:
        notes.append("security")
    if o.held_back_by:
        notes.append(f"held back by {o.held_back_by}"
                     + (f" (newest allowed {o.allowed})" if o.allowed else ""))
    if o.stage:
        notes.append(f"stage {o.stage}")
    return ", ".join(notes)


def _none_found(report: Report) -> str:
    """What an empty report says: "nothing outdated" only when every source was read."""
    if not report.problems:
        return "nothing outdated"
    n = len(report.problems)
    return (f"no newer version in what could be read, but {n} source{'s' if n > 1 else ''} "
            "or index could not be read (see above)")


def format_text(report: Report, style: Callable[..., str] | None = None) -> str:
    """Aligned columns for a terminal: kind, name, locked, newest, from, notes."""
    from relock.lock.grammar import escape_control

    if not report.packages:
        return _none_found(report) + "\n"
    raw = [("", "package", "locked", "newest", "from", "")]
    raw += [(o.kind, o.name, o.locked, o.newest, o.where, _note(o)) for o in report.packages]
    rows = [[escape_control(c) for c in r] for r in raw]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for n, r in enumerate(rows):
        line = "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True))
        line = (line + "  " + r[5]).rstrip()
        if style and n and "security" in r[5]:
            line = style(line, fg="red", bold=True)
        lines.append(line)
    movable = sum(o.movable for o in report.packages)
    security = sum(o.security for o in report.packages)
    lines.append(f"{len(report.packages)} outdated ({movable} can move"
                 + (f", {security} security" if security else "") + ")")
    return "\n".join(lines) + "\n"


def format_markdown(report: Report) -> str:
    """A table for an issue or pull request."""
    from relock.lock.diffformat import _md

    if not report.packages:
        found = _none_found(report)
        return found[0].upper() + found[1:] + ".\n"
    lines = ["| Kind | Package | Locked | Newest | From | Notes |",
             "| --- | --- | --- | --- | --- | --- |"]
    for o in report.packages:
        note = _md(_note(o))
        if o.security:
            note = note.replace("security", "**security**", 1)
        cells = [o.kind, _md(o.name), _md(o.locked), _md(o.newest), _md(o.where), note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_json(report: Report) -> str:
    """One object for scripts; keys in docs/outdated-json.md."""
    rows = []
    for o in report.packages:
        row: dict[str, object] = asdict(o)
        row["movable"] = o.movable
        rows.append(row)
    doc = {"version": FORMAT_VERSION, "outdated": report.outdated, "packages": rows,
           "warnings": list(report.warnings), "problems": list(report.problems)}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"

