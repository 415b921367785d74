"""Vulnerability records in the OSV format, read offline from a folder or a zip.

Only what matching needs is kept: the record's ID and aliases, whether it is
withdrawn, and per affected package its ecosystem, name, ranges and listed
versions. IDs, aliases and the URL shown are checked against strict grammars:
a record's text never reaches relock's output unchecked.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from relock import bounds
from relock.errors import RelockError
from relock.lock.grammar import show

# An OSV record is a few KiB; the biggest ones some hundred.
MAX_RECORD = bounds.OSV_RECORD
MAX_RECORDS = bounds.OSV_RECORDS
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")
_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]{1,500}")


class OsvError(RelockError):
    """OSV records cannot be read, or one is not of the OSV schema."""


@dataclass(frozen=True)
class Event:
    kind: str  # introduced, fixed, last_affected, limit
    version: str


@dataclass(frozen=True)
class Range:
    type: str  # ECOSYSTEM, SEMVER, GIT
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Affected:
    ecosystem: str  # "Debian:13", "PyPI", ...
    name: str
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Record:
    id: str
    aliases: tuple[str, ...] = ()
    withdrawn: bool = False
    url: str = ""
    affected: tuple[Affected, ...] = ()


def read_all(path: Path) -> Iterator[Record]:
    """Every record of a folder of ``*.json`` (below it, symlinks not followed) or a zip."""
    if path.is_symlink() or not path.exists():
        raise OsvError(f"{path}: no such folder or zip of OSV records")
    if path.is_dir():
        yield from _folder(path)
    elif path.is_file():
        yield from _zip(path)
    else:
        raise OsvError(f"{path}: not a folder or a zip of OSV records")


def _folder(root: Path) -> Iterator[Record]:
    from relock.files import TooBigError, read_regular

    count = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".json"):
                continue
            path = Path(folder) / name
            if path.is_symlink():
                continue  # a link may point out of the folder: not followed
            count += 1
            if count > MAX_RECORDS:
                raise OsvError(f"{root}: more than {MAX_RECORDS} records")
            try:
                data = read_regular(path, MAX_RECORD)
            except TooBigError:
                raise OsvError(f"{path}: too big for an OSV record (over {MAX_RECORD} "
                               "bytes)") from None
            except OSError as e:
                raise OsvError(f"{path}: cannot read: {e.strerror or e}") from None
            yield parse(data, str(path))


def _zip(path: Path) -> Iterator[Record]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise OsvError(f"{path}: not a zip of OSV records ({e})") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and m.filename.endswith(".json")]
        if len(members) > MAX_RECORDS:
            raise OsvError(f"{path}: more than {MAX_RECORDS} records")
        for m in members:
            where = f"{path}:{show(m.filename)}"
            if m.file_size > MAX_RECORD:
                raise OsvError(f"{where}: too big for an OSV record")
            try:
                with zf.open(m) as f:
                    data = f.read(MAX_RECORD + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as e:
                raise OsvError(f"{where}: cannot read ({e})") from None
            if len(data) > MAX_RECORD:
                raise OsvError(f"{where}: too big for an OSV record")
            yield parse(data, where)


def parse(data: bytes, where: str) -> Record:
    """One record from its JSON bytes; ``OsvError`` naming ``where`` if it is not one."""
    try:
        doc = bounds.load_json(data)
    except ValueError as e:
        raise OsvError(f"{where}: not JSON ({show(str(e), 80)})") from None
    if not isinstance(doc, dict):
        raise OsvError(f"{where}: not an OSV record (not a JSON object)")
    rid = doc.get("id")
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        raise OsvError(f"{where}: 'id' {show(repr(rid), 60)} is not an OSV identifier")
    aliases = doc.get("aliases") or []
    if not isinstance(aliases, list) or not all(
            isinstance(a, str) and _ID.fullmatch(a) for a in aliases):
        raise OsvError(f"{where}: record {rid}: 'aliases' holds something that is not an "
                       "OSV identifier")
    return Record(id=rid, aliases=tuple(sorted(set(aliases))),
                  withdrawn=bool(doc.get("withdrawn")), url=_url(doc, rid, where),
                  affected=tuple(_affected(doc.get("affected"), rid, where)))


def _url(doc: dict[str, object], rid: str, where: str) -> str:
    """The record's advisory (else first web) reference, if it is a plain http(s) URL."""
    refs = doc.get("references") or []
    if not isinstance(refs, list):
        raise OsvError(f"{where}: record {rid}: 'references' is not a list")
    ranked = sorted((r for r in refs if isinstance(r, dict) and isinstance(r.get("url"), str)),
                    key=lambda r: r.get("type") != "ADVISORY")
    for ref in ranked[:1]:
        url = str(ref["url"])
        if not _URL.fullmatch(url):
            raise OsvError(f"{where}: record {rid}: reference URL {show(url, 60)} is not a "
                           "plain http(s) URL")
        return url
    return ""


def _affected(raw: object, rid: str, where: str) -> Iterator[Affected]:
    if raw is None:
        return
    if not isinstance(raw, list):
        raise OsvError(f"{where}: record {rid}: 'affected' is not a list")
    for a in raw:
        if not isinstance(a, dict) or not isinstance(a.get("package"), dict):
            continue
        pkg = a["package"]
        eco, name = pkg.get("ecosystem"), pkg.get("name")
        if not isinstance(eco, str) or not isinstance(name, str):
            continue
        ranges = []
        for r in a.get("ranges") or []:
            if not isinstance(r, dict) or not isinstance(r.get("events"), list):
                continue
            events = tuple(Event(k, v) for e in r["events"] if isinstance(e, dict)
                           for k, v in e.items()
                           if k in ("introduced", "fixed", "last_affected", "limit")
                           and isinstance(v, str))
            ranges.append(Range(str(r.get("type", "")), events))
        versions = tuple(v for v in a.get("versions") or [] if isinstance(v, str))
        yield Affected(eco, name, tuple(ranges), versions)
