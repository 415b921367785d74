"""Merged views of overlay layers and tar streams; symlinks stay in the image."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from relock.image.rootfs import LayeredFS, TarFS


def write(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def layers(tmp_path: Path) -> LayeredFS:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    write(lower / "etc/os-release", "ID=debian\n")
    write(lower / "etc/gone", "old")
    write(lower / "opt/app/a.txt", "a")
    write(lower / "opt/app/b.txt", "b")
    write(lower / "usr/lib/os-release", "ID=lower\n")
    write(upper / "opt/app/c.txt", "c")
    write(upper / "etc/changed", "new")
    (upper / "etc").mkdir(exist_ok=True)
    if os.geteuid() == 0:
        os.mknod(upper / "etc/gone", 0o600 | 0o020000, os.makedev(0, 0))  # whiteout
    else:
        (upper / "etc/.wh.gone").write_text("")  # AUFS-style whiteout
    write(upper / "opt/app/.wh.b.txt", "")
    os.symlink("../usr/lib/os-release", lower / "etc/lib-release")
    os.symlink("/etc/os-release", upper / "abs-link")
    os.symlink("../../../../../../../etc/os-release", upper / "escape")
    return LayeredFS([upper, lower])


def test_upper_layer_wins_and_whiteouts_hide(layers: LayeredFS) -> None:
    assert layers.read_bytes("/opt/app/c.txt") == b"c"
    assert layers.read_bytes("/opt/app/a.txt") == b"a"
    assert layers.read_bytes("/opt/app/b.txt") is None
    assert layers.read_bytes("/etc/gone") is None
    assert layers.listdir("/opt/app") == ["a.txt", "c.txt"]
    assert "gone" not in (layers.listdir("/etc") or [])
    assert "changed" in (layers.listdir("/etc") or [])


def test_symlinks_resolve_inside_the_image(layers: LayeredFS) -> None:
    assert layers.read_bytes("/etc/lib-release") == b"ID=lower\n"
    assert layers.read_bytes("/abs-link") == b"ID=debian\n"
    # ".." past the image's root stops at the root, as in a chroot.
    assert layers.read_bytes("/escape") == b"ID=debian\n"


def test_opaque_folder_hides_lower_contents(tmp_path: Path) -> None:
    lower, upper = tmp_path / "l", tmp_path / "u"
    write(lower / "d/old", "old")
    write(upper / "d/new", "new")
    (upper / "d/.wh..wh..opq").write_text("")
    fs = LayeredFS([upper, lower])
    assert fs.listdir("/d") == ["new"]


def test_missing_paths(layers: LayeredFS) -> None:
    assert layers.read_bytes("/nope") is None
    assert layers.listdir("/nope") is None
    assert not layers.is_dir("/etc/os-release")
    assert layers.is_dir("/opt")


def test_tarfs_serves_the_same_calls() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("etc/os-release", b"ID=debian\n"), ("usr/lib/x", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("etc/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "os-release"
        tar.addfile(link)
    buf.seek(0)
    fs = TarFS(buf)
    assert fs.read_bytes("/etc/link") == b"ID=debian\n"
    assert fs.listdir("/etc") == ["link", "os-release"]
    assert fs.is_dir("/usr/lib") and not fs.is_dir("/usr/lib/x")
    assert fs.is_symlink("/etc/link") and not fs.is_symlink("/etc/os-release")


def test_is_symlink(layers: LayeredFS) -> None:
    assert layers.is_symlink("/etc/lib-release")
    assert not layers.is_symlink("/etc/os-release")
    assert not layers.is_symlink("/nope/x")


def test_subdirs_are_real_folders_only(layers: LayeredFS) -> None:
    assert layers.subdirs("/") == ["etc", "opt", "usr"]  # not the symlinks
    assert layers.subdirs("/etc") == []
    assert layers.subdirs("/nope") is None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("usr/lib/x", "usr/bin/y"):
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
        link = tarfile.TarInfo("lib")
        link.type = tarfile.SYMTYPE
        link.linkname = "usr/lib"
        tar.addfile(link)
    buf.seek(0)
    fs = TarFS(buf)
    assert fs.subdirs("/") == ["usr"]
    assert fs.subdirs("/usr") == ["bin", "lib"]
    assert fs.subdirs("/lib") == []  # through the link: usr/lib, which has only a file
