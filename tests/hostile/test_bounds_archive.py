"""APT archives past relock's limits, and archives that lack what the lock names.

An archive on loopback (``tests/support/scripted``) answers ``relock outdated``
for a lock of the test's own: endless or bombed indexes and Release files stop
at their limit (``relock.bounds``), a Release without the lock's component is
a source not read (exit 2 naming it, never "nothing outdated"), and a keyring
the lock's ``Signed-By`` names is read only if it is a small regular file.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import time
from pathlib import Path

import click.testing
import pytest

from relock import bounds
from relock.errors import LimitError, RelockError
from relock.lock import lockfile
from relock.lock.lockfile import AptPackage, AptSource
from relock.update import outdated as core
from tests.factories import make_lock
from tests.hostile.contract import invoke, one_line_error
from tests.support import scripted

PACKAGES = (b"Package: pkga\nVersion: 2.0\nArchitecture: amd64\n"
            b"Filename: pool/main/p/pkga/pkga_2.0_amd64.deb\nSize: 10\n"
            b"SHA256: " + b"2" * 64 + b"\n\n")


def release(files: dict[str, bytes], components: str = "main") -> bytes:
    lines = [f"Suite: trixie\nComponents: {components}\nArchitectures: amd64\nSHA256:"]
    lines += [f" {hashlib.sha256(d).hexdigest()} {len(d)} {p}" for p, d in files.items()]
    return ("\n".join(lines) + "\n").encode()


def write_lock(tmp_path: Path, url: str, component: str = "main",
               options: dict[str, str] | None = None) -> Path:
    lock = make_lock(
        apt_sources=(AptSource("/etc/apt/sources.list", ("deb",), (url + "/debian",),
                               ("trixie",), (component,), options or {"trusted": "yes"}),),
        apt=(AptPackage("pkga", "1.0", "amd64"),))
    path = tmp_path / "x.lock"
    lockfile.write(lock, path)
    return path


def outdated(tmp_path: Path, path: Path) -> click.testing.Result:
    return invoke("outdated", "--lock", str(path), "--only", "apt",
                  env={"XDG_CACHE_HOME": str(tmp_path / "cache")})


def serve_archive(server: scripted.Server, files: dict[str, bytes],
                  components: str = "main") -> None:
    top = "/debian/dists/trixie"
    server.routes[f"{top}/Release"] = scripted.answer(release(files, components))
    for p, data in files.items():
        server.routes[f"{top}/{p}"] = scripted.answer(data)


def test_a_sound_archive_lists_the_newer_version(tmp_path: Path) -> None:
    """The cases below differ from this one only in what they break."""
    with scripted.serve() as server:
        serve_archive(server, {"main/binary-amd64/Packages": PACKAGES})
        r = outdated(tmp_path, write_lock(tmp_path, server.url))
    assert r.exit_code == 1, r.output
    assert "pkga" in r.stdout and "2.0" in r.stdout


def test_a_release_without_the_locks_component_is_not_nothing_outdated(tmp_path: Path) -> None:
    with scripted.serve() as server:
        serve_archive(server, {"main/binary-amd64/Packages": PACKAGES})
        r = outdated(tmp_path, write_lock(tmp_path, server.url, component="contrib"))
    assert r.exit_code == 2, r.output
    assert "nothing outdated" not in r.output
    assert "its Release has no component contrib (it has main)" in r.stderr
    assert "no newer version in what could be read, but 1 source" in r.stdout


def test_update_stops_when_a_component_is_missing(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same lock: the plan is never made from an archive that lacks the component."""
    with scripted.serve() as server:
        serve_archive(server, {"main/binary-amd64/Packages": PACKAGES})
        lock = lockfile.read(write_lock(tmp_path, server.url, component="contrib"))
        from relock.upstream.archive import Archive

        report = core.outdated(lock, archive=Archive(tmp_path / "cache"), index=None,
                               template={}, keyrings={})
    assert report.packages == ()
    assert [p for p in report.problems if "no component contrib" in p]


def test_an_endless_release_stops_at_its_limit(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "RELEASE", 1 << 20)
    with scripted.serve() as server:
        server.routes["/debian/dists/trixie/InRelease"] = scripted.endless()
        start = time.monotonic()
        one_line_error(outdated(tmp_path, write_lock(tmp_path, server.url)),
                       f"{server.url}/debian/dists/trixie/InRelease: the file is over 1 MiB "
                       "(relock's limit")
        assert time.monotonic() - start < 10


def test_an_endless_packages_index_stops_at_its_limit(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "PACKAGES", 1 << 20)
    with scripted.serve() as server:
        serve_archive(server, {"main/binary-amd64/Packages": PACKAGES})
        server.routes["/debian/dists/trixie/main/binary-amd64/Packages"] = scripted.endless()
        start = time.monotonic()
        one_line_error(outdated(tmp_path, write_lock(tmp_path, server.url)),
                       "main/binary-amd64/Packages: the file is over 1 MiB")
        assert time.monotonic() - start < 10


def test_an_xz_bomb_stops_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "PACKAGES", 4 << 20)
    bomb = lzma.compress(PACKAGES + b"\n" * (256 << 20))
    assert len(bomb) < 1 << 20
    with scripted.serve() as server:
        serve_archive(server, {"main/binary-amd64/Packages.xz": bomb})
        start = time.monotonic()
        one_line_error(outdated(tmp_path, write_lock(tmp_path, server.url)),
                       "Packages.xz: the file decompressed is over 4 MiB (relock's limit")
        assert time.monotonic() - start < 10


@pytest.mark.parametrize("kind", ["device", "fifo", "big"])
def test_a_signed_by_keyring_that_is_no_small_file_is_refused(tmp_path: Path, kind: str,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    ring = "/dev/zero"
    if kind == "fifo":
        ring = str(tmp_path / "ring.gpg")
        os.mkfifo(ring)
    elif kind == "big":
        ring = str(tmp_path / "ring.gpg")
        with open(ring, "wb") as f:
            f.truncate(bounds.KEYRING + 1)  # sparse: costs no disk
    src = AptSource("/etc/apt/sources.list", ("deb",), ("http://127.0.0.1:9/debian",),
                    ("trixie",), ("main",), {"signed-by": ring})
    start = time.monotonic()
    with pytest.raises(RelockError, match=f"{ring} \\(a keyring of the lock's APT sources\\)"
                       ) as e:
        core.local_keyrings([src])
    assert time.monotonic() - start < 2
    assert isinstance(e.value, LimitError) == (kind == "big")
    path = write_lock(tmp_path, "http://127.0.0.1:9", options={"signed-by": ring})
    one_line_error(outdated(tmp_path, path), ring)


def test_a_missing_keyring_is_left_out_not_refused(tmp_path: Path) -> None:
    src = AptSource("/etc/apt/sources.list", ("deb",), ("http://127.0.0.1:9/debian",),
                    ("trixie",), ("main",), {"signed-by": str(tmp_path / "absent.gpg")})
    assert str(tmp_path / "absent.gpg") not in core.local_keyrings([src])
