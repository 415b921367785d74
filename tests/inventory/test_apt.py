"""Reading dpkg and APT files: status, extended_states, sources, Release dates."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import lz4.frame
import pytest

from relock.errors import InventoryError
from relock.image.rootfs import LayeredFS
from relock.inventory import apt
from relock.lock.lockfile import AptSource
from relock.upstream.debindex import DebEntry

STATUS = """\
Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.41-12

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-4

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib (1:1.3.dfsg-3.1)
Version: 1:1.3.dfsg-3.1+b1
"""

EXTENDED = """\
Package: libc6
Architecture: amd64
Auto-Installed: 1

Package: tzdata
Architecture: amd64
Auto-Installed: 1

Package: zlib1g
Architecture: amd64
Auto-Installed: 0
"""


def tree(tmp_path: Path, files: dict[str, str | bytes]) -> LayeredFS:
    for rel, content in files.items():
        path = tmp_path / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return LayeredFS([tmp_path])


def test_installed_packages(tmp_path: Path) -> None:
    fs = tree(tmp_path, {apt.STATUS: STATUS, apt.EXTENDED_STATES: EXTENDED})
    got = {p.name: p for p in apt.installed_packages(fs)}
    assert sorted(got) == ["libc6", "tzdata", "zlib1g"]  # config-files is not installed
    assert got["libc6"].source == "glibc" and got["libc6"].source_version == ""
    assert got["zlib1g"].source == "zlib" and got["zlib1g"].source_version == "1:1.3.dfsg-3.1"
    # apt records arch-all packages under the native architecture
    assert got["tzdata"].auto and got["libc6"].auto and not got["zlib1g"].auto


def test_distroless_status_d(tmp_path: Path) -> None:
    fs = tree(tmp_path, {
        "/var/lib/dpkg/status.d/base": "Package: base-files\nArchitecture: amd64\n"
                                       "Version: 12.4\n",
        "/var/lib/dpkg/status.d/base.md5sums": "ignored",
    })
    assert apt.has_dpkg(fs)
    assert [(p.name, p.version) for p in apt.installed_packages(fs)] == [("base-files", "12.4")]


@pytest.mark.parametrize(("status", "message"), [
    (b"Package: x\nStatus: install ok\nVersion: 1\n", "bad Status of x"),
    (b"Status: install ok installed\nVersion: 1\n", "has no Package"),
    (b"Package: x\nStatus: install ok installed\n", "x has no Version"),
    (b"\xff\xfe\x00\x01garbage", "not a text file"),
])
def test_corrupt_status(tmp_path: Path, status: bytes, message: str) -> None:
    fs = tree(tmp_path, {apt.STATUS: status})
    with pytest.raises(InventoryError, match=message):
        apt.installed_packages(fs)


def _package_file(text: str) -> list[dict[str, str]]:
    """python-debian's reading of ``text``, with the comment and blank-line folding
    apt.stanzas applies first (deb822(5) allows both; ``PackageFile`` neither)."""
    import io

    from debian.debian_support import PackageFile

    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if lines and lines[-1] != "\n":
                lines.append("\n")
            continue
        lines.append(line + "\n")
    return [dict(f) for f in PackageFile("x", io.StringIO("".join(lines)))]


DEB822_CASES = [
    STATUS,
    EXTENDED,
    "\n\n  \nPackage: a\n\n\n\nPackage: b\n",  # blank and white-space lines fold
    "# head\nPackage: a\n# inside\nDescription: one\n two \n .\n  . \n\tthree\n",
    "Package: a\nPackage: b\nX-Y_z: 1\n",  # a repeated field: the last counts
    "Package:a   \nVersion:\t1.0 \x0c\nEmpty:\n",  # white space around values
    "Package: a\r\nVersion: 1\r\n\r\nPackage: b\x85Version: 2\u2028",  # other line ends
    "Package: a\n \u00a0x\n",  # a continuation after Unicode white space
]


@pytest.mark.parametrize("text", DEB822_CASES)
def test_stanzas_read_as_python_debian_reads_them(text: str) -> None:
    assert apt.stanzas(text, "x") == _package_file(text)


def test_stanzas_of_the_hosts_dpkg_database() -> None:
    status = Path(apt.STATUS)
    if not status.exists():
        pytest.skip("this host has no dpkg database")
    text = status.read_text("utf-8")
    got = apt.stanzas(text, "status")
    assert len(got) > 50 and got == _package_file(text)


@pytest.mark.parametrize("text", [
    " continued\nPackage: a\n",
    "Package: a\nnot a field\n",
    "Package: a\n\n two\n",
    "P: a\n",  # a field name is two characters or more
    "Pack age: a\n",
])
def test_stanzas_refuse_what_python_debian_refuses(text: str) -> None:
    from debian.debian_support import ParseError

    with pytest.raises(ParseError):
        _package_file(text)
    with pytest.raises(InventoryError, match="not a deb822 file: expected package field"):
        apt.stanzas(text, "x")


def test_one_line_sources() -> None:
    text = ("# comment\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main contrib\n"
            "deb-src http://m/debian bookworm main\n"
            "deb http://m/ubuntu noble-security main # trailing\n")
    got = apt.parse_one_line(text, "/etc/apt/sources.list")
    assert got[0] == AptSource("/etc/apt/sources.list", ("deb",), ("http://m/debian",),
                               ("bookworm",), ("main", "contrib"),
                               {"arch": "amd64", "signed-by": "/k.gpg"})
    assert got[1].types == ("deb-src",)
    assert got[2].suites == ("noble-security",) and got[2].components == ("main",)


def test_malformed_one_line_source() -> None:
    with pytest.raises(InventoryError, match="malformed APT source line"):
        apt.parse_one_line("deb http://m/debian\n", "f.list")


def test_deb822_sources() -> None:
    text = ("Types: deb\nURIs: http://m/debian\nSuites: trixie trixie-updates\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.pgp\n\n"
            "Types: deb\nURIs: http://m/x\nSuites: y\nEnabled: no\n")
    got = apt.parse_deb822(text, "d.sources")
    assert len(got) == 1
    assert got[0].suites == ("trixie", "trixie-updates")
    assert got[0].options == {"signed-by": "/usr/share/keyrings/debian-archive-keyring.pgp"}


def test_sources_from_every_file(tmp_path: Path) -> None:
    fs = tree(tmp_path, {
        apt.SOURCES_LIST: "deb http://m/debian bookworm main\n",
        "/etc/apt/sources.list.d/a.list": "deb http://m/a stable main\n",
        "/etc/apt/sources.list.d/b.sources": "Types: deb\nURIs: http://m/b\nSuites: s\n",
        "/etc/apt/sources.list.d/c.disabled": "deb http://m/c stable main\n",
    })
    assert [s.uris[0] for s in apt.sources(fs)] == ["http://m/debian", "http://m/a",
                                                    "http://m/b"]


def test_release_date_and_deb_entries(tmp_path: Path) -> None:
    packages = ("Package: tini\nVersion: 0.19\nArchitecture: amd64\n"
                "Filename: pool/main/t/tini/tini_0.19_amd64.deb\nSize: 9\n"
                f"SHA256: {'a' * 64}\n\n")
    fs = tree(tmp_path, {
        "/var/lib/apt/lists/m_debian_dists_trixie_InRelease":
            "-----BEGIN PGP SIGNED MESSAGE-----\n\nOrigin: Debian\n"
            "Date: Sat, 08 Nov 2025 09:24:33 UTC\n",
        "/var/lib/apt/lists/m_debian_dists_trixie-updates_InRelease":
            "Date: Mon, 10 Nov 2025 20:21:55 UTC\n",
        "/var/lib/apt/lists/m_debian_dists_trixie_main_binary-amd64_Packages.gz":
            gzip.compress(packages.encode()),
        "/var/lib/apt/lists/m_debian_dists_trixie-updates_main_binary-amd64_Packages.lz4":
            lz4.frame.compress(packages.replace("tini", "less").encode()),
    })
    assert apt.release_date(fs) == datetime(2025, 11, 10, 20, 21, 55, tzinfo=UTC)
    wanted = [("tini", "0.19", "amd64"), ("less", "0.19", "amd64"), ("bash", "5", "amd64")]
    found = apt.deb_entries(fs, wanted)
    assert sorted(found) == [("less", "0.19", "amd64"), ("tini", "0.19", "amd64")]
    assert found[("tini", "0.19", "amd64")] == DebEntry(
        "pool/main/t/tini/tini_0.19_amd64.deb", "a" * 64, 9)
    assert apt.deb_entries(fs, []) == {}


def test_snapshot_ids_round_trip() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert apt.format_snapshot(when) == "20260102T030405Z"
    assert apt.parse_snapshot("20260102T030405Z") == when
    with pytest.raises(ValueError):
        apt.parse_snapshot("2026-01-02")


def test_os_release_of_ubuntu_and_debian(tmp_path: Path) -> None:
    from relock.freeze.freeze import os_release

    fs = tree(tmp_path / "u", {"/usr/lib/os-release":
                               'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\n'
                               "VERSION_CODENAME=noble\n"})
    (tmp_path / "u/etc").mkdir()
    (tmp_path / "u/etc/os-release").symlink_to("../usr/lib/os-release")
    distro = os_release(fs)
    assert distro is not None and (distro.id, distro.version_id, distro.codename) == (
        "ubuntu", "24.04", "noble")
    assert os_release(tree(tmp_path / "none", {"/etc/hostname": "x"})) is None
