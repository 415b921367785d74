"""A lock matched against OSV vulnerability records, offline.

Debian records (ecosystem ``Debian:N``, N the lock's release) name source
packages: each is matched with the source package and source version of the
lock's APT packages (a binNMU's ``+bN`` binary version is its source's), in
Debian version order (python-debian). PyPI records are matched by normalised
name and PEP 440 order (``ECOSYSTEM`` ranges) or the versions they list.
Withdrawn records are skipped. Whether a fix can be installed today is not
looked up here (``fix_checked`` is False): that needs the archive and index.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from relock.lock.lockfile import Lock
from relock.supply.osv import Affected, Event, Range, Record


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


def format_text(report: Report) -> str:
    lines = []
    for f in report.findings:
        fixed = f"fixed in {f.fixed}" if f.fixed else "no fix known"
        also = f" ({', '.join(f.aliases)})" if f.aliases else ""
        what = f" [{', '.join(f.binaries)}]" if f.binaries else ""
        lines.append(f"{f.ecosystem}  {f.package} {f.version}{what}: {f.id}{also}, {fixed}")
    lines.append(_summary(report))
    if report.findings:
        lines.append(_NOT_CHECKED)
    lines += list(report.notes)
    return "\n".join(_safe(line) for line in lines) + "\n"


def _summary(report: Report) -> str:
    n = len(report.findings)
    return (f"{n} finding{'s' if n != 1 else ''} in {report.records} records "
            f"({report.withdrawn} withdrawn, skipped); matched in "
            f"{', '.join(report.ecosystems) or 'no ecosystem'}")


def format_markdown(report: Report) -> str:
    out = ["| ecosystem | package | locked | record | aliases | fixed in |",
           "| --- | --- | --- | --- | --- | --- |"]
    for f in report.findings:
        record = f"[{_md(f.id)}]({_md_url(f.url)})" if f.url else _md(f.id)
        pkg = _md(f.package) + (f" ({_md(', '.join(f.binaries))})" if f.binaries else "")
        out.append(f"| {_md(f.ecosystem)} | {pkg} | {_md(f.version)} | {record} | "
                   f"{_md(', '.join(f.aliases))} | {_md(f.fixed) or 'no fix known'} |")
    text = "\n".join(out) if report.findings else "No findings."
    tail = [_summary(report), *((_NOT_CHECKED,) if report.findings else ()),
            *map(_md, report.notes)]
    return text + "\n\n" + "\n".join(tail) + "\n"


def format_json(report: Report) -> str:
    doc = {
        "findings": [{"ecosystem": f.ecosystem, "package": f.package, "version": f.version,
                      "binaries": list(f.binaries), "where": list(f.where), "id": f.id,
                      "aliases": list(f.aliases), "fixed": f.fixed or None,
                      "url": f.url or None, "fix_available": None} for f in report.findings],
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
