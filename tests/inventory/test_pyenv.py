"""Finding Python environments and pip-installed distributions in a file tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from relock.image.rootfs import LayeredFS
from relock.inventory import pyenv
from relock.inventory.pyenv import find_site_dirs, pip_installed


def dist(root: Path, site: str, name: str, version: str, installer: str | None = "pip",
         requested: bool = False) -> None:
    folder = root / site.lstrip("/") / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if installer is not None:
        (folder / "INSTALLER").write_text(installer + "\n")
    if requested:
        (folder / "REQUESTED").write_text("")


def test_envs_and_ownership(tmp_path: Path) -> None:
    venv = "/opt/venv/lib/python3.13/site-packages"
    (tmp_path / "opt/venv").mkdir(parents=True)
    (tmp_path / "opt/venv/pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.13.5\n")
    dist(tmp_path, venv, "NumPy", "2.3.5", requested=True)
    dist(tmp_path, venv, "six", "1.17.0")
    dist(tmp_path, "/usr/local/lib/python3.13/dist-packages", "attrs", "25.4.0", requested=True)
    # Debian's own: owned by dpkg, or in /usr/lib/python3/dist-packages with no installer
    dist(tmp_path, "/usr/lib/python3/dist-packages", "wheel", "0.46.1", installer=None)
    dist(tmp_path, "/usr/lib/python3/dist-packages", "pip", "25.1.1", installer="debian")
    info = tmp_path / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (info / "python3-pip.list").write_text(
        "/usr/lib/python3/dist-packages/pip-25.1.1.dist-info\n")
    (tmp_path / "usr/lib/python3.13").mkdir(parents=True)
    # A venv behind a symlinked /lib must not be found twice.
    (tmp_path / "lib").symlink_to("usr/lib")

    fs = LayeredFS([tmp_path])
    envs, dists = pip_installed(fs)
    assert [(e.prefix, e.python, e.venv) for e in envs] == [("/opt/venv", "3.13", True),
                                                            ("/usr/local", "3.13", False)]
    assert sorted((d.env, d.name, d.version, d.requested) for d in dists) == [
        ("/opt/venv", "numpy", "2.3.5", True),
        ("/opt/venv", "six", "1.17.0", False),
        ("/usr/local", "attrs", "25.4.0", True),
    ]


def test_site_dirs_in_home_and_dot_venv(tmp_path: Path) -> None:
    (tmp_path / "home/u/.venv/lib/python3.12/site-packages").mkdir(parents=True)
    (tmp_path / "root/.local/lib/python3.11/site-packages").mkdir(parents=True)
    # pip's download cache holds no environment, and is not searched.
    (tmp_path / "home/u/.cache/pip/x/lib/python3.12/site-packages").mkdir(parents=True)
    assert find_site_dirs(LayeredFS([tmp_path])) == [
        "/home/u/.venv/lib/python3.12/site-packages",
        "/root/.local/lib/python3.11/site-packages",
    ]


def test_deep_and_hidden_environments_are_found_and_locked(tmp_path: Path) -> None:
    deep = "/srv/a/b/c/d/e/venv/lib/python3.12/site-packages"
    pyenv_site = "/root/.pyenv/versions/3.12.1/lib/python3.12/site-packages"
    poetry = "/home/u/.cache/pypoetry/virtualenvs/app-py3.12/lib/python3.12/site-packages"
    for site in (deep, pyenv_site, poetry):
        dist(tmp_path, site, "six", "1.17.0", requested=True)
    (tmp_path / "srv/a/b/c/d/e/venv/pyvenv.cfg").write_text("version = 3.12.3\n")
    # Not searched: inside a git checkout and inside another environment's site folder.
    dist(tmp_path, "/srv/.git/x/lib/python3.12/site-packages", "attrs", "25.4.0")
    dist(tmp_path, deep + "/pkg/lib/python3.12/site-packages", "attrs", "25.4.0")
    envs, dists = pip_installed(LayeredFS([tmp_path]))
    assert [(e.prefix, e.python, e.venv) for e in envs] == [
        ("/home/u/.cache/pypoetry/virtualenvs/app-py3.12", "3.12", False),
        ("/root/.pyenv/versions/3.12.1", "3.12", False),
        ("/srv/a/b/c/d/e/venv", "3.12", True),
    ]
    assert sorted((d.env, d.name, d.requested) for d in dists) == [
        (e.prefix, "six", True) for e in envs]


def test_metadata_header_is_read_like_the_email_parser(tmp_path: Path) -> None:
    site = tmp_path / "usr/local/lib/python3.13/dist-packages/Foo_Bar-1.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_bytes(
        b"Metadata-Version: 2.1\r\nname: Foo.Bar\r\nVersion:  1.0 \r\nVersion: 9\r\n\r\n"
        b"Name: not-this\nVersion: 2\n")
    (site / "INSTALLER").write_text("pip\n")
    _, dists = pip_installed(LayeredFS([tmp_path]))
    assert [(d.name, d.version, d.installer, d.requested) for d in dists] == [
        ("foo-bar", "1.0", "pip", False)]


@pytest.mark.parametrize("name", ["Foo", "foo.bar", "Foo__Bar", "a-_.-b", "zope.interface",
                                  "ruamel.yaml.clib", "A", "typing_extensions", "x---y...z"])
def test_canonical_name_is_packagings(name: str) -> None:
    from packaging.utils import canonicalize_name

    from relock.inventory.pyenv import canonical_name

    assert canonical_name(name) == canonicalize_name(name)


@pytest.mark.parametrize(("meta", "want"), [
    (b"Metadata-Version: 2.1\nName: numpy\nVersion: 2.3.1\nClassifier: x\n\nName: body",
     ("numpy", "2.3.1")),
    (b"Version: 1.0\nSummary: s\nName: Foo_Bar\nName: other\n", ("Foo_Bar", "1.0")),
    (b"Name: a\nVersion: 1.0\n  .post1\nName: b\n", ("a", "1.0 .post1")),  # folded: one value
    (b"name: a\nVERSION : 2\n", ("a", "2")),
    (b"Name: a\n\nVersion: 1.0\n", ("a", "")),  # the body holds no fields
    (b"Name: a\r\nVersion: 3\r\n", ("a", "3")),
])
def test_name_and_version_of_core_metadata(meta: bytes, want: tuple[str, str]) -> None:
    assert pyenv._name_and_version(meta) == want
