"""APT and dpkg facts read from an image's files: packages, sources, dates, .deb entries."""

from __future__ import annotations

import posixpath
import re
import shlex
import urllib.parse
from collections.abc import Collection
from datetime import UTC, datetime

from relock.errors import InventoryError
from relock.image.rootfs import RootFS
from relock.lock.lockfile import AptPackage, AptSource
from relock.upstream.debindex import DebEntry, Key, decompress, pick

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d"
EXTENDED_STATES = "/var/lib/apt/extended_states"
LISTS = "/var/lib/apt/lists"
SOURCES_LIST = "/etc/apt/sources.list"
SOURCES_D = "/etc/apt/sources.list.d"
DPKG_INFO = "/var/lib/dpkg/info"


Stanza = dict[str, str]


# A field line and what deb822(5) folds into it: python-debian's ``PackageFile``
# rules (its ``re_field``), which tests/inventory/test_apt.py holds this parser to.
_FIELD_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]+):\s*(.*?)\s*")


def stanzas(text: str, where: str) -> list[Stanza]:
    """The deb822 stanzas of ``text``, each a dict of its fields.

    The same stanzas as python-debian's ``PackageFile`` reads, which tests
    check on real and malformed files; written here because a freeze spends
    more on that module's import and line-at-a-time reading than on the rest
    of the dpkg database. Comment lines are left out and blank lines between
    stanzas folded to one, as deb822(5) allows. Multi-line values have their
    continuation lines stripped and ``.`` lines empty; of a repeated field
    the last counts.
    """
    out: list[Stanza] = []
    fields: Stanza = {}
    name = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        first = line[:1]
        if first == "#":
            continue
        if not first or first.isspace():
            if not line or line.isspace():  # a blank line ends a stanza
                if fields:
                    out.append(fields)
                    fields, name = {}, ""
                continue
            if not name:
                raise InventoryError(f"{where}: not a deb822 file: expected package field "
                                     f"(line {lineno})")
            body = line.lstrip()
            fields[name] += "\n" + ("" if body == "." else body.rstrip())
            continue
        m = _FIELD_LINE.fullmatch(line)
        if m is None:
            raise InventoryError(f"{where}: not a deb822 file: expected package field "
                                 f"(line {lineno})")
        name = m.group(1)
        fields[name] = m.group(2)
    if fields:
        out.append(fields)
    return out


def _paragraphs(data: bytes, where: str) -> list[Stanza]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InventoryError(f"{where}: not a text file (corrupt dpkg database?)") from None
    return stanzas(text, where)


def _status_entries(fs: RootFS) -> list[tuple[str, Stanza]]:
    entries: list[tuple[str, Stanza]] = []
    data = fs.read_bytes(STATUS)
    if data is not None:
        entries += [(STATUS, p) for p in _paragraphs(data, STATUS)]
    # Distroless-style images keep one status file per package in status.d/.
    for name in fs.listdir(STATUS_D) or []:
        if name.endswith(".md5sums"):
            continue
        path = posixpath.join(STATUS_D, name)
        blob = fs.read_bytes(path)
        if blob is not None:
            entries += [(path, p) for p in _paragraphs(blob, path)]
    return entries


def has_dpkg(fs: RootFS) -> bool:
    """Whether the image has a dpkg database at all."""
    return fs.read_bytes(STATUS) is not None or bool(fs.listdir(STATUS_D))


def installed_packages(fs: RootFS) -> list[AptPackage]:
    """Every package dpkg records as installed, with its auto-installed flag."""
    auto = _auto_installed(fs)
    packages: dict[tuple[str, str], AptPackage] = {}
    for where, para in _status_entries(fs):
        name = para.get("Package")
        version = para.get("Version")
        arch = para.get("Architecture")
        status = para.get("Status", "install ok installed")
        if not name or not status:
            raise InventoryError(f"{where}: corrupt dpkg status: a paragraph has no Package")
        words = status.split()
        if len(words) != 3:
            raise InventoryError(f"{where}: corrupt dpkg status: bad Status of {name}: {status!r}")
        if words[2] not in ("installed", "half-configured", "unpacked", "triggers-awaited",
                            "triggers-pending", "half-installed"):
            continue  # config-files or not-installed: nothing of it is in the image
        if not version or not arch:
            raise InventoryError(
                f"{where}: corrupt dpkg status: {name} has no Version/Architecture"
            )
        src, src_version = _source(para.get("Source", ""))
        packages[(name, arch)] = AptPackage(
            name=name,
            version=version,
            arch=arch,
            source=src if src != name else "",
            source_version=src_version if src_version != version else "",
            # apt records arch-all packages under the native architecture.
            auto=bool(auto.get(name, set()) & {arch, "", "*"})
            or (arch == "all" and bool(auto.get(name))),
        )
    return list(packages.values())


def _source(field: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*(\S+)(?:\s+\((\S+)\))?\s*", field)
    return (m.group(1), m.group(2) or "") if m else ("", "")


def _auto_installed(fs: RootFS) -> dict[str, set[str]]:
    """Architectures of each package apt marked as automatically installed."""
    data = fs.read_bytes(EXTENDED_STATES)
    if data is None:
        return {}
    out: dict[str, set[str]] = {}
    for para in _paragraphs(data, EXTENDED_STATES):
        if para.get("Auto-Installed", "0").strip() == "1" and para.get("Package"):
            out.setdefault(para["Package"], set()).add(para.get("Architecture", ""))
    return out


def dpkg_owned_paths(fs: RootFS, needle: str) -> set[str]:
    """Paths listed in dpkg's file lists that contain ``needle``."""
    owned: set[str] = set()
    for name in fs.listdir(DPKG_INFO) or []:
        if not name.endswith(".list"):
            continue
        data = fs.read_bytes(posixpath.join(DPKG_INFO, name)) or b""
        if needle.encode() not in data:
            continue
        for line in data.decode("utf-8", "replace").splitlines():
            if needle in line:
                owned.add(line.rstrip("/"))
    return owned


# -- sources ---------------------------------------------------------------

def sources(fs: RootFS) -> list[AptSource]:
    """The image's APT sources, one-line and deb822 files alike."""
    out: list[AptSource] = []
    data = fs.read_bytes(SOURCES_LIST)
    if data is not None:
        out += parse_one_line(data.decode("utf-8", "replace"), SOURCES_LIST)
    for name in fs.listdir(SOURCES_D) or []:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            continue  # apt ignores such names too (sources.list(5))
        path = posixpath.join(SOURCES_D, name)
        blob = fs.read_bytes(path)
        if blob is None:
            continue
        text = blob.decode("utf-8", "replace")
        if name.endswith(".list"):
            out += parse_one_line(text, path)
        elif name.endswith(".sources"):
            out += parse_deb822(text, path)
    return out


def parse_one_line(text: str, file: str) -> list[AptSource]:
    """Parse sources.list(5) one-line entries: ``deb [opts] uri suite comp...``."""
    out: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind not in ("deb", "deb-src"):
            continue
        options: dict[str, str] = {}
        rest = rest.strip()
        if rest.startswith("["):
            opts, _, rest = rest[1:].partition("]")
            for word in opts.split():
                key, _, value = word.partition("=")
                options[key] = value
        try:
            words = shlex.split(rest)
        except ValueError:  # an unbalanced quote
            words = []
        if len(words) < 2:
            raise InventoryError(f"{file}: malformed APT source line: {raw.strip()!r}")
        out.append(
            AptSource(
                file=file,
                types=(kind,),
                uris=(strip_credentials(words[0]),),
                suites=(words[1],),
                components=tuple(words[2:]),
                options=options,
            )
        )
    return out


_DEB822_KEYS = {"types", "uris", "suites", "components", "enabled"}


def _sources_stanzas(text: str, file: str) -> list[Stanza]:
    if re.search(r"^[ \t]+\.[ \t]*$", text, re.MULTILINE):
        # A " ." line (an inline Signed-By key): Deb822 keeps the dot, which
        # the lock has always recorded; stanzas() would make it an empty line.
        from debian.deb822 import Deb822

        return [dict(p) for p in Deb822.iter_paragraphs(text.splitlines(keepends=True))]
    return stanzas(text, file)


def parse_deb822(text: str, file: str) -> list[AptSource]:
    """Parse sources.list(5) deb822 stanzas (``.sources`` files)."""
    out: list[AptSource] = []
    for para in _sources_stanzas(text, file):
        fields = {k.lower(): v for k, v in para.items()}
        if not fields:
            continue
        if fields.get("enabled", "yes").strip().lower() == "no":
            continue
        if not fields.get("uris") or not fields.get("suites") or not fields.get("types"):
            raise InventoryError(f"{file}: a deb822 stanza lacks Types, URIs or Suites")
        options = {
            k: " ".join(v.split()) for k, v in fields.items() if k not in _DEB822_KEYS
        }
        out.append(
            AptSource(
                file=file,
                types=tuple(fields["types"].split()),
                uris=tuple(strip_credentials(u) for u in fields["uris"].split()),
                suites=tuple(fields["suites"].split()),
                components=tuple(fields.get("components", "").split()),
                options=options,
            )
        )
    return out


def strip_credentials(uri: str) -> str:
    """``uri`` without ``user:password@``: a lock must not carry secrets (auth.conf does)."""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:  # e.g. "http://[::1": the lock's reader refuses it
        return uri
    if "@" not in parts.netloc:
        return uri
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def keyrings(fs: RootFS, sources: list[AptSource]) -> dict[str, bytes]:
    """The keyring files apt in the image checks the sources' signatures with, by path."""
    from relock.upstream.aptsig import keyring_paths

    found = {p: fs.read_bytes(p) for p in keyring_paths(sources, fs.listdir)}
    return {p: data for p, data in found.items() if data}


# -- the lists apt downloaded: dates and .deb hashes -------------------------

def release_date(fs: RootFS) -> datetime | None:
    """The newest ``Date`` among the Release files apt downloaded, if any remain."""
    newest: datetime | None = None
    for name in fs.listdir(LISTS) or []:
        if not (name.endswith("_InRelease") or name.endswith("_Release")):
            continue
        data = fs.read_bytes(posixpath.join(LISTS, name)) or b""
        m = re.search(rb"^Date:\s*(.+)$", data, re.MULTILINE)
        if not m:
            continue
        try:
            from email.utils import parsedate_to_datetime

            when = parsedate_to_datetime(m.group(1).decode().strip()).astimezone(UTC)
        except (TypeError, ValueError):
            continue
        newest = when if newest is None or when > newest else newest
    return newest


def deb_entries(fs: RootFS, wanted: Collection[Key]) -> dict[Key, DebEntry]:
    """Filename, sha256 and size of each wanted .deb in the Packages indexes apt left.

    Only the stanzas of wanted packages are parsed (see ``relock.upstream.debindex``);
    an index that cannot be decompressed is skipped.
    """
    out: dict[Key, DebEntry] = {}
    if not wanted:
        return out
    for name in sorted(fs.listdir(LISTS) or []):
        if "_Packages" not in name:
            continue
        if not name.endswith(("_Packages", ".gz", ".xz", ".lz4")):
            continue
        data = fs.read_bytes(posixpath.join(LISTS, name))
        if data is None:
            continue
        try:
            data = decompress(data, name)
        except ValueError:
            continue
        for key, entry in pick(data, wanted).items():
            out.setdefault(key, entry)
    return out


def format_snapshot(when: datetime) -> str:
    """A snapshot id as the snapshot services spell it: ``YYYYMMDDTHHMMSSZ``."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_snapshot(text: str) -> datetime:
    """Parse ``YYYYMMDDTHHMMSSZ``; raise ValueError otherwise."""
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
