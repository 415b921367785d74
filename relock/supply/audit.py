"""A lock matched against OSV vulnerability records, offline.

Debian records (ecosystem ``Debian:N``, N the lock's release) name source
packages: each is matched with the source package and source version of the
lock's APT packages (a binNMU's ``+bN`` binary version is its source's), in
Debian version order (python-debian). PyPI records are matched by normalised
name and PEP 440 order (``ECOSYSTEM`` ranges) or the versions they list.
Withdrawn records are skipped. Whether a fix can be installed today is a
second step, ``check_fixes``: it asks the lock's APT sources and the package
index what ``relock outdated`` would see (``relock.update.outdated``), for
the packages found only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from relock.lock.lockfile import Lock
from relock.supply.osv import Affected, Event, Range, Record

if TYPE_CHECKING:
    from relock.update.outdated import Outdated
    from relock.upstream.archive import AptArchive
    from relock.upstream.index import PackageIndex


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __le__(self, other: Any, /) -> bool: ...


@dataclass(frozen=True)
class Finding:
    """One locked package that one record says is vulnerable."""

    ecosystem: str  # Debian:13, PyPI
    package: str  # the source package (Debian) or the distribution (PyPI)
    version: str  # the locked (source) version
    id: str
    aliases: tuple[str, ...]
    fixed: str  # the first fixed version after the locked one, "" when none is known
    url: str = ""
    binaries: tuple[str, ...] = ()  # Debian: the locked binary packages built from it
    where: tuple[str, ...] = ()  # platforms (APT) or environments (PyPI)
    # Set by ``check_fixes``: whether the lock's sources serve the fixed version now
    # (None: not checked, or no fixed version known), the newest version they serve
    # ("" none newer than the lock's), the update that takes it, what holds it back.
    fix_available: bool | None = None
    newest: str = ""
    update: str = ""
    held_back_by: str = ""


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    records: int  # records read
    withdrawn: int  # of them, skipped as withdrawn
    ecosystems: tuple[str, ...]  # those the lock's packages are matched in
    notes: tuple[str, ...] = field(default=())
    fix_checked: bool = False


def _debian(text: str) -> _Ordered | None:
    from debian.debian_support import Version

    try:
        return Version(text)
    except ValueError:
        return None


def _pep440(text: str) -> _Ordered | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def _events(r: Range, parse: Callable[[str], _Ordered | None]
            ) -> list[tuple[_Ordered | None, Event]] | None:
    """The range's events with parsed versions ("0" as None: below all), sorted; None
    if one does not parse (such a range cannot be judged and is left out)."""
    out: list[tuple[_Ordered | None, Event]] = []
    for e in r.events:
        if e.kind == "introduced" and e.version == "0":
            out.append((None, e))
            continue
        v = parse(e.version)
        if v is None:
            return None
        out.append((v, e))
    zero = [x for x in out if x[0] is None]
    rest = sorted((x for x in out if x[0] is not None), key=lambda x: x[0])  # type: ignore[arg-type,return-value]
    return zero + rest


def affected_by(version: _Ordered, r: Range, parse: Callable[[str], _Ordered | None]
                ) -> tuple[bool, str]:
    """Whether ``version`` is in the range (OSV's evaluation of sorted events) and the
    first fixed version above it ("" when the range names none)."""
    events = _events(r, parse)
    if events is None:
        return False, ""
    hit = False
    for v, e in events:
        if e.kind == "introduced":
            hit = hit or v is None or v <= version
        elif v is not None and (v < version if e.kind == "last_affected" else v <= version):
            hit = False  # fixed or limit at or below it, last_affected below it
    fixed = next((e.version for v, e in events
                  if e.kind == "fixed" and v is not None and version < v), "")
    return hit, fixed


def _match(a: Affected, version_text: str, parse: Callable[[str], _Ordered | None]
           ) -> tuple[bool, str]:
    version = parse(version_text)
    if version is None:
        return False, ""
    for v in a.versions:
        listed = parse(v)
        if listed is not None and listed == version:
            return True, _fixed_in_ranges(a, version, parse)
    for r in a.ranges:
        if r.type != "ECOSYSTEM":
            continue  # GIT ranges name commits, SEMVER is not these ecosystems' order
        hit, fixed = affected_by(version, r, parse)
        if hit:
            return True, fixed
    return False, ""


def _fixed_in_ranges(a: Affected, version: _Ordered,
                     parse: Callable[[str], _Ordered | None]) -> str:
    for r in a.ranges:
        if r.type == "ECOSYSTEM":
            fixed = affected_by(version, r, parse)[1]
            if fixed:
                return fixed
    return ""


def audit(lock: Lock, records: Iterable[Record]) -> Report:
    """Every finding of ``records`` in ``lock``'s final image."""
    from packaging.utils import canonicalize_name

    from relock.supply.sbom import release_number

    release = release_number(lock) if lock.distro.id == "debian" else ""
    debian = f"Debian:{release}" if release else ""
    notes = []
    if lock.apt and not debian:
        notes.append(f"APT packages not matched: no OSV ecosystem for "
                     f"{lock.distro.id} {lock.distro.version_id or lock.distro.codename}")
    # Debian: (source, source version) -> binaries and platforms; PyPI: (name, version) -> envs.
    sources: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    dists: dict[tuple[str, str], set[str]] = {}
    for plat in lock.all_platforms:
        part = lock.for_platform(plat).final()
        for p in part.apt:
            key = (p.source or p.name, p.source_version or p.version)
            names, plats = sources.setdefault(key, (set(), set()))
            names.add(p.name)
            plats.add(plat)
        for d in part.pip:
            if d.kind != "context":  # the project's own is on no index (another's name)
                dists.setdefault((d.name, d.version), set()).add(d.env)
    by_source: dict[str, list[str]] = {}
    for name, version in sources:
        by_source.setdefault(name, []).append(version)
    by_dist: dict[str, list[str]] = {}
    for name, version in dists:
        by_dist.setdefault(name, []).append(version)

    findings: dict[tuple[str, str, str], Finding] = {}
    count = withdrawn = 0
    for rec in records:
        count += 1
        if rec.withdrawn:
            withdrawn += 1
            continue
        for a in rec.affected:
            if debian and a.ecosystem == debian:
                for version in by_source.get(a.name, ()):
                    hit, fixed = _match(a, version, _debian)
                    if hit:
                        names, plats = sources[(a.name, version)]
                        findings[(a.name, version, rec.id)] = Finding(
                            debian, a.name, version, rec.id, rec.aliases,
                            _checked_fixed(fixed, _debian), rec.url,
                            tuple(sorted(names)), tuple(sorted(plats)))
            elif a.ecosystem == "PyPI":
                name = canonicalize_name(a.name)
                for version in by_dist.get(name, ()):
                    hit, fixed = _match(a, version, _pep440)
                    if hit:
                        findings[(name, version, rec.id)] = Finding(
                            "PyPI", name, version, rec.id, rec.aliases,
                            _checked_fixed(fixed, _pep440), rec.url,
                            where=tuple(sorted(dists[(name, version)])))
    ecosystems = tuple(e for e in (debian if sources else "", "PyPI" if dists else "") if e)
    return Report(tuple(sorted(findings.values(), key=lambda f: (f.ecosystem, f.package,
                                                                   f.version, f.id))),
                  count, withdrawn, ecosystems, tuple(notes))


def check_fixes(report: Report, lock: Lock, *, archive: AptArchive | None,
                index: PackageIndex | None, template: dict[str, list[str]] | None = None,
                keyrings: dict[str, bytes] | None = None, pip_cache: Any = None) -> Report:
    """``report`` with each finding's fix looked up as ``relock outdated`` looks: the
    newest version of each locked binary (Debian) or distribution (PyPI) the lock's APT
    sources or the index serve now, the template's specifiers holding pip ones back.

    A Debian fix is available when every locked binary built from the source package has
    a version at or above the fixed source version (a binNMU's ``+bN`` is above it); a
    PyPI one when the version an update would reach is. Sources or projects that could
    not be read are notes (their findings then read as not available)."""
    import dataclasses

    from relock.update import outdated as up

    debian = [f for f in report.findings if f.ecosystem != "PyPI"]
    pypi = [f for f in report.findings if f.ecosystem == "PyPI"]
    seen: dict[tuple[str, str], list[Outdated]] = {}  # (kind, name) -> what outdated saw
    notes: list[str] = list(report.notes)
    for plat in lock.all_platforms:
        part = lock.for_platform(plat).final()
        binaries = {b for f in debian if plat in f.where for b in f.binaries}
        dists = {(f.package, e) for f in pypi for e in f.where}
        narrowed = dataclasses.replace(
            part, apt=tuple(p for p in part.apt if p.name in binaries),
            pip=tuple(d for d in part.pip if (d.name, d.env) in dists))
        if not narrowed.apt and not narrowed.pip:
            continue
        found = up.outdated(narrowed, archive=archive if narrowed.apt else None,
                            index=index if narrowed.pip else None, template=template or {},
                            pip_cache=pip_cache, keyrings=keyrings)
        for o in found.packages:
            seen.setdefault((o.kind, o.name), []).append(o)
        notes += [f"fixes not known: {p}" for p in found.problems]
    out = []
    for f in report.findings:
        if f.ecosystem == "PyPI":
            out.append(_pypi_fix(f, seen.get(("pip", f.package), [])))
        else:
            out.append(_debian_fix(f, {b: seen.get(("apt", b), []) for b in f.binaries}))
    return dataclasses.replace(report, findings=tuple(out), fix_checked=True,
                               notes=tuple(dict.fromkeys(notes)))


def _debian_fix(f: Finding, newer: dict[str, list[Outdated]]) -> Finding:
    import dataclasses

    from debian.debian_support import Version

    tops = {b: max((o for o in os), key=lambda o: Version(o.newest), default=None)
            for b, os in newer.items()}
    shown = [o.newest for o in tops.values() if o is not None]
    newest = max(shown, key=Version) if shown else ""
    if not f.fixed:
        return dataclasses.replace(f, newest=newest)
    ok = all(o is not None and Version(o.newest) >= Version(f.fixed) for o in tops.values())
    security = ok and all(o is not None and o.security for o in tops.values())
    update = ("relock update " + " ".join(f.binaries)
              + (" (or --security)" if security else "")) if ok else ""
    return dataclasses.replace(f, fix_available=ok, newest=newest, update=update)


def _pypi_fix(f: Finding, newer: list[Outdated]) -> Finding:
    import dataclasses

    from packaging.version import Version

    mine = [o for o in newer if o.where in f.where]
    top = max(mine, key=lambda o: Version(o.newest), default=None)
    if top is None or not f.fixed:
        return dataclasses.replace(f, newest=top.newest if top else "")
    reach = top.target
    ok = bool(reach) and Version(reach) >= Version(f.fixed)
    held = "" if ok or not top.held_back_by or Version(top.newest) < Version(f.fixed) \
        else top.held_back_by
    return dataclasses.replace(f, fix_available=ok, newest=top.newest,
                               update=f"relock update {f.package}" if ok else "",
                               held_back_by=held)


def _checked_fixed(fixed: str, parse: Callable[[str], _Ordered | None]) -> str:
    """A fixed version fit to show: it parsed as its ecosystem's version, and has no
    character outside a version's (the record's text is not let through otherwise)."""
    from relock.lock.grammar import problem

    if not fixed or parse(fixed) is None:
        return ""
    ok = not problem("debian-version", fixed) or not problem("pep440-version", fixed)
    return fixed if ok else ""


# -- output ------------------------------------------------------------------

_NOT_CHECKED = ("whether each fix is installable now was not checked "
                "(run relock outdated to see what can move)")


def fix_text(f: Finding) -> str:
    """What ``check_fixes`` found of a finding's fix, "" when it was not checked."""
    if f.fix_available is None:
        return ""
    if f.fix_available:
        return f"in the sources now ({f.newest}): {f.update}"
    if f.held_back_by:
        return f"{f.newest} is in the sources, held back by {f.held_back_by}"
    return (f"not in the sources yet (newest {f.newest})" if f.newest else
            "not in the sources yet (nothing newer than the lock's)")


def format_text(report: Report) -> str:
    lines = []
    for f in report.findings:
        fixed = f"fixed in {f.fixed}" if f.fixed else "no fix known"
        also = f" ({', '.join(f.aliases)})" if f.aliases else ""
        what = f" [{', '.join(f.binaries)}]" if f.binaries else ""
        now = f"; {fix_text(f)}" if fix_text(f) else ""
        lines.append(f"{f.ecosystem}  {f.package} {f.version}{what}: {f.id}{also}, "
                     f"{fixed}{now}")
    lines.append(_summary(report))
    if report.findings and not report.fix_checked:
        lines.append(_NOT_CHECKED)
    lines += list(report.notes)
    return "\n".join(_safe(line) for line in lines) + "\n"


def _summary(report: Report) -> str:
    n = len(report.findings)
    text = (f"{n} finding{'s' if n != 1 else ''} in {report.records} records "
            f"({report.withdrawn} withdrawn, skipped); matched in "
            f"{', '.join(report.ecosystems) or 'no ecosystem'}")
    if report.fix_checked and report.findings:
        fixable = sum(1 for f in report.findings if f.fix_available)
        text += f"; {fixable} fixable now with relock update"
    return text


def format_markdown(report: Report) -> str:
    checked = report.fix_checked
    out = ["| ecosystem | package | locked | record | aliases | fixed in |"
           + (" fix now |" if checked else ""),
           "| --- | --- | --- | --- | --- | --- |" + (" --- |" if checked else "")]
    for f in report.findings:
        record = f"[{_md(f.id)}]({_md_url(f.url)})" if f.url else _md(f.id)
        pkg = _md(f.package) + (f" ({_md(', '.join(f.binaries))})" if f.binaries else "")
        now = f" {_md(fix_text(f)) or 'no fix known'} |" if checked else ""
        out.append(f"| {_md(f.ecosystem)} | {pkg} | {_md(f.version)} | {record} | "
                   f"{_md(', '.join(f.aliases))} | {_md(f.fixed) or 'no fix known'} |{now}")
    text = "\n".join(out) if report.findings else "No findings."
    tail = [_summary(report), *((_NOT_CHECKED,) if report.findings and not checked else ()),
            *map(_md, report.notes)]
    return text + "\n\n" + "\n".join(tail) + "\n"


def format_json(report: Report) -> str:
    doc = {
        "findings": [{"ecosystem": f.ecosystem, "package": f.package, "version": f.version,
                      "binaries": list(f.binaries), "where": list(f.where), "id": f.id,
                      "aliases": list(f.aliases), "fixed": f.fixed or None,
                      "url": f.url or None, "fix_available": f.fix_available,
                      "newest": f.newest or None, "update": f.update or None,
                      "held_back_by": f.held_back_by or None} for f in report.findings],
        "records": report.records, "withdrawn": report.withdrawn,
        "ecosystems": list(report.ecosystems), "fix_checked": report.fix_checked,
        "notes": list(report.notes),
    }
    return json.dumps(doc, indent=2) + "\n"


def _safe(text: str) -> str:
    from relock.lock.grammar import escape_control

    return escape_control(text)


def _md(text: str) -> str:
    """``text`` as literal Markdown table text: every punctuation Markdown reads escaped."""
    out = []
    for c in _safe(text):
        out.append("\\" + c if c in "\\`*_{}[]()<>#!|~&" else c)
    return "".join(out)


def _md_url(url: str) -> str:
    # The URL passed osv's grammar (no spaces, quotes or angle brackets); parentheses
    # would end the link early, so they are percent-encoded.
    return url.replace("(", "%28").replace(")", "%29")
