"""Freeze's .deb entries: from the image's lists, else its sources' indexes, else a warning.

A folder tree stands for the image (``freeze --rootfs``); its APT source is a
real archive served on loopback (tests/support/aptarchive.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.freeze.freeze import FreezeOptions, freeze_rootfs
from relock.lock import lockfile
from relock.upstream.archive import Archive
from tests.support.aptarchive import AptArchive, Deb, serve

FOO, BAR = Deb("foo", "2.0-1"), Deb("bar", "0.5")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptArchive]:
    with serve(tmp_path_factory.mktemp("apt")) as served:
        served.publish("20260101T000000Z", [FOO, BAR])
        yield served


def status(name: str, version: str, arch: str) -> str:
    return (f"Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\n"
            f"Version: {version}\n\n")


def image_tree(root: Path, archive: AptArchive, lists: str = "") -> Path:
    files = {
        "etc/os-release": "ID=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n",
        "etc/apt/sources.list": archive.source_line() + "\n",
        "var/lib/dpkg/status": status("foo", "2.0-1", "all") + status("bar", "0.5", "all")
        + status("local", "1", archive.arch),
    }
    if lists:
        files["var/lib/apt/lists/m_dists_stable_main_binary-all_Packages"] = lists
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def sha(archive: AptArchive, deb: Deb) -> str:
    return hashlib.sha256((archive.debs / deb.filename).read_bytes()).hexdigest()


def test_entries_come_from_the_sources_indexes(archive: AptArchive, tmp_path: Path) -> None:
    root = image_tree(tmp_path / "root", archive)
    options = FreezeOptions(deb_entries=True, archive=Archive(tmp_path / "cache"))
    result = freeze_rootfs(root, None, options)
    apt = {p.name: p for p in result.lock.apt}
    assert apt["foo"].sha256 == sha(archive, FOO)
    assert apt["foo"].filename == "pool/main/f/foo/foo_2.0-1_all.deb"
    assert apt["bar"].sha256 == sha(archive, BAR)
    assert (apt["local"].sha256, apt["local"].filename) == ("", "")
    assert [w for w in result.warnings if "no .deb sha256" in w] == [
        "no .deb sha256 for 1 APT packages (in no package index of the image's sources): "
        "local=1"
    ]


def test_the_images_own_lists_come_first(archive: AptArchive, tmp_path: Path) -> None:
    kept = (f"Package: bar\nVersion: 0.5\nArchitecture: all\nFilename: pool/kept/bar.deb\n"
            f"Size: 3\nSHA256: {'b' * 64}\n\n")
    root = image_tree(tmp_path / "root", archive, lists=kept)
    archive.requests.clear()
    options = FreezeOptions(deb_entries=True, archive=Archive(tmp_path / "cache"))
    apt = {p.name: p for p in freeze_rootfs(root, None, options).lock.apt}
    assert (apt["bar"].filename, apt["bar"].sha256) == ("pool/kept/bar.deb", "b" * 64)
    assert apt["foo"].sha256 == sha(archive, FOO)  # not in the lists: asked the archive


def test_verify_and_diff_read_no_entries(archive: AptArchive, tmp_path: Path) -> None:
    root = image_tree(tmp_path / "root", archive, lists="Package: bar\n")
    archive.requests.clear()
    result = freeze_rootfs(root, None, FreezeOptions())  # what verify and diff use
    assert all(not p.sha256 and not p.filename for p in result.lock.apt)
    assert archive.requests == []
    assert not [w for w in result.warnings if ".deb" in w]


def test_cli_no_archive(archive: AptArchive, tmp_path: Path) -> None:
    root = image_tree(tmp_path / "root", archive)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = tmp_path / "a.lock"
    runner = CliRunner()
    r = runner.invoke(cli, ["freeze", "--rootfs", str(root), "-o", str(out), "--no-index"],
                      catch_exceptions=False, env=env)
    assert r.exit_code == 0, r.output
    assert {p.name: p.sha256 for p in lockfile.read(out).apt}["foo"] == sha(archive, FOO)
    assert "local=1" in r.stderr

    archive.requests.clear()
    r = runner.invoke(cli, ["freeze", "--rootfs", str(root), "-o", str(out), "--no-index",
                            "--no-archive"], catch_exceptions=False, env=env)
    assert r.exit_code == 0, r.output
    assert all(not p.sha256 for p in lockfile.read(out).apt)
    assert archive.requests == []
    assert "(--no-archive: the archive was not asked): bar=0.5, foo=2.0-1, local=1" in r.stderr
