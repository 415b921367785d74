"""Image trees freeze reads: odd file names, corrupt lists, values an image should not give.

A folder tree stands for the image (``freeze --rootfs``): what is odd in it is
skipped as apt or pip would, or refused in one line with no lock written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.lock import lockfile
from tests.hostile.contract import H, files_in, freeze_rootfs, one_line_error, rootfs


# Issue 12's review: B1.
def test_non_utf8_source_file_name_is_skipped_as_apt_does(tmp_path: Path) -> None:
    root = rootfs(tmp_path)
    (root / "etc/apt/sources.list.d").joinpath(os.fsdecode(b"x\xff.list")).write_text(
        "deb http://127.0.0.1:9/other trixie main\n")
    out = tmp_path / "x.lock"
    r = freeze_rootfs(root, out)
    assert r.exit_code == 0, r.output
    assert [s.uris for s in lockfile.read(out).apt_sources] == [("http://127.0.0.1:8/debian",)]


# Issue 12's review: B1.
def test_corrupt_packages_list_costs_only_its_hashes(tmp_path: Path) -> None:
    root = rootfs(tmp_path, {"var/lib/apt/lists/h_dists_trixie_main_binary-amd64_Packages.gz":
                             b"\x1f\x8b\x08\x00garbage-not-deflate"})
    out = tmp_path / "x.lock"
    r = freeze_rootfs(root, out)
    assert r.exit_code == 0, r.output
    assert lockfile.read(out).apt[0].sha256 == ""


# Issue 12's review: B1.
def test_an_unbalanced_quote_in_a_sources_line_is_refused(tmp_path: Path) -> None:
    root = rootfs(tmp_path, {"etc/apt/sources.list": 'deb "http://127.0.0.1:8/x trixie main\n'})
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(root, out), "malformed APT source line")
    assert not out.exists()


def test_apt_credentials_are_not_copied_into_the_lock(tmp_path: Path) -> None:
    """S5: user:password@ in an image's source stays out of the lock."""
    root = rootfs(tmp_path, {"etc/apt/sources.list":
                             "deb http://user:s3cret@127.0.0.1:8/private trixie main\n"})
    out = tmp_path / "x.lock"
    r = freeze_rootfs(root, out)
    assert r.exit_code == 0, r.output
    assert "s3cret" not in out.read_text() and "user:" not in out.read_text()
    assert ("http://127.0.0.1:8/private",) in [s.uris for s in lockfile.read(out).apt_sources]


# Issue 12's review: S2.
@pytest.mark.parametrize(("files", "names"), [
    ({"etc/apt/sources.list.d/evil.sources":
      'Types: deb\nURIs: http://127.0.0.1:8/x";APT::Update::Pre-Invoke{"id";};\n'
      "Suites: trixie\n"}, "apt_sources"),
    ({"var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\n"
      "Architecture: amd64\nVersion: 5.2 evil\n\n"}, "apt[0].version"),
    ({"var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\n"
      "Architecture: amd64\nVersion: \n\n"}, "no Version"),
    ({"opt/venv/pyvenv.cfg": "version = 3.13.1\n",
      "opt/venv/lib/python3.13/site-packages/six-1.0.dist-info/METADATA":
      "Name: six\nVersion: 1.0\n 2.0\n",
      "opt/venv/lib/python3.13/site-packages/six-1.0.dist-info/INSTALLER": "pip\n"},
     "pip[0].version"),
    ({"opt/venv/pyvenv.cfg": "version = 3.13.1\n",
      "opt/venv/lib/python3.13/site-packages/six-1.0.dist-info/METADATA":
      "Name: six\nVersion: one point oh\n",
      "opt/venv/lib/python3.13/site-packages/six-1.0.dist-info/INSTALLER": "pip\n"},
     "not a PEP 440 version"),
])
def test_bad_values_in_an_image_write_no_lock(tmp_path: Path, files: dict[str, str | bytes],
                                              names: str) -> None:
    out = tmp_path / "locks" / "x.lock"
    one_line_error(freeze_rootfs(rootfs(tmp_path, files), out), names)
    assert not out.parent.exists() or files_in(out.parent) == []


def test_a_dist_named_to_escape_the_index_folder_is_refused(tmp_path: Path) -> None:
    """S6 at freeze: a dist-info naming itself %2e%2e/... is refused, never looked up."""
    site = "opt/venv/lib/python3.13/site-packages/"
    root = rootfs(tmp_path, {
        "opt/venv/pyvenv.cfg": "version = 3.13.1\n",
        site + "evil-1.0.dist-info/METADATA": "Name: %2e%2e/secret\nVersion: 1.0\n",
        site + "evil-1.0.dist-info/INSTALLER": "pip\n",
    })
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(root, out), "pip[0].name", "%2e%2e/secret")
    assert not out.exists()


# Issue 12's review: B1.
def test_a_non_utf8_installer_file_is_no_traceback(tmp_path: Path) -> None:
    site = "opt/venv/lib/python3.13/site-packages/"
    root = rootfs(tmp_path, {
        "opt/venv/pyvenv.cfg": "version = 3.13.1\n",
        site + "six-1.16.0.dist-info/METADATA": "Name: six\nVersion: 1.16.0\n",
        site + "six-1.16.0.dist-info/INSTALLER": b"p\xffp\n",
    })
    r = freeze_rootfs(root, tmp_path / "x.lock")
    assert r.exit_code in (0, 2) and "Traceback" not in r.output


def test_a_non_utf8_environment_prefix_is_refused(tmp_path: Path) -> None:
    """B1: a venv under a folder whose name is not UTF-8: one line, no lock."""
    root = rootfs(tmp_path)
    site = root / os.fsdecode(b"opt/v\xffenv") / "lib/python3.13/site-packages"
    (site / "six-1.16.0.dist-info").mkdir(parents=True)
    (site.parent.parent.parent / "pyvenv.cfg").write_text("version = 3.13.1\n")
    (site / "six-1.16.0.dist-info/METADATA").write_text("Name: six\nVersion: 1.16.0\n")
    (site / "six-1.16.0.dist-info/INSTALLER").write_text("pip\n")
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(root, out), "python[0].prefix", "is not UTF-8 text")
    assert not out.exists()


@pytest.mark.parametrize(("metadata", "message"), [
    ("Name: six\nVersion: 1.0\n 2.0\n", "PEP 440"),
    ("Name: %2e%2e/secret\nVersion: 1.0\n", "not a normalised"),
])
def test_freeze_with_the_index_on_refuses_bad_dists(tmp_path: Path, metadata: str,
                                                    message: str) -> None:
    """B1 and S6 with the index asked: one line, nothing read outside the index folder."""
    site = "opt/venv/lib/python3.13/site-packages/"
    root = rootfs(tmp_path, {
        "opt/venv/pyvenv.cfg": "version = 3.13.1\n",
        site + "x-1.0.dist-info/METADATA": metadata,
        site + "x-1.0.dist-info/INSTALLER": "pip\n",
    })
    simple = tmp_path / "index" / "simple"
    simple.mkdir(parents=True)
    secret = tmp_path / "index" / "secret"
    secret.mkdir()
    (secret / "index.html").write_text(f'<a href="secret-1.0.tar.gz#sha256={H}">x</a>')
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": simple.as_uri(),
            "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = tmp_path / "x.lock"
    r = CliRunner().invoke(cli, ["freeze", "--rootfs", str(root), "-o", str(out),
                                 "--snapshot", "20261101T000000Z"],
                           catch_exceptions=False, env=env)  # type: ignore[arg-type]
    one_line_error(r, message, "not asking the package index")
    assert not out.exists()


def test_two_venvs_with_one_folder_name_stay_apart(tmp_path: Path) -> None:
    """B7: /root/.venv and /root/venv are two environments in the lock. (The support
    files whose names collided are gone: the locked view serves every environment.)"""
    files: dict[str, str | bytes] = {}
    for env, version in (("root/.venv", "1.16.0"), ("root/venv", "1.17.0")):
        site = f"{env}/lib/python3.13/site-packages/six-{version}.dist-info/"
        files |= {f"{env}/pyvenv.cfg": "version = 3.13.1\n",
                  site + "METADATA": f"Name: six\nVersion: {version}\n",
                  site + "INSTALLER": "pip\n"}
    lock_path = tmp_path / "x.lock"
    r = freeze_rootfs(rootfs(tmp_path, files), lock_path)
    assert r.exit_code == 0, r.output
    lock = lockfile.read(lock_path)
    assert sorted((p.env, p.version) for p in lock.pip) == [
        ("/root/.venv", "1.16.0"), ("/root/venv", "1.17.0")]
    assert sorted(e.prefix for e in lock.python) == ["/root/.venv", "/root/venv"]
