"""Finding Python environments and pip-installed distributions in a file tree."""

from __future__ import annotations

from pathlib import Path

from relock.pyenv import find_site_dirs, pip_installed
from relock.rootfs import LayeredFS


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
    (tmp_path / "home/u/.cache/x/lib/python3.12/site-packages").mkdir(parents=True)
    assert find_site_dirs(LayeredFS([tmp_path])) == [
        "/home/u/.venv/lib/python3.12/site-packages",
        "/root/.local/lib/python3.11/site-packages",
    ]
