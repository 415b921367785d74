"""The locked view of a lock of several platforms: one APT repository per architecture.

Real .deb files (dpkg-deb) served on loopback; what apt in a build of each
platform reads is the repository of the architecture dpkg reports there
(``relock.template.render`` points it so).
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from relock.build.view import AptFile, LockedView, deb_control
from relock.lock.lockfile import AptPackage
from tests.factories import make_lock
from tests.support.aptarchive import Deb, build_deb
from tests.support.tools import missing

pytestmark = pytest.mark.skipif(missing("dpkg-deb"), reason="needs dpkg-deb")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


def deb(tmp_path: Path, name: str, version: str, arch: str) -> AptFile:
    folder = tmp_path / arch / version
    folder.mkdir(parents=True)
    path = build_deb(Deb(name, version, arch=arch), folder)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return AptFile(AptPackage(name, version, arch, sha256=sha, filename=path.name), path,
                   deb_control(path))


def test_each_architecture_gets_its_own_platform_s_part(tmp_path: Path) -> None:
    files = {
        "amd64": [deb(tmp_path, "relock-hello", "1.0-1", "amd64"),
                  deb(tmp_path, "relock-data", "2.0-1", "all")],
        # A binNMU on arm64 only, and an ``all`` package another version there.
        "arm64": [deb(tmp_path, "relock-hello", "1.0-1+b1", "arm64"),
                  deb(tmp_path, "relock-data", "2.0-2", "all")],
    }
    parts = [make_lock(platform=f"linux/{arch}", apt=tuple(f.package for f in fs))
             for arch, fs in files.items()]
    lock = parts[0].with_part(parts[1])
    view = LockedView([f for fs in files.values() for f in fs], lock, None)
    with view.serve() as server:
        for arch, mine in files.items():
            packages = get(f"{server.url}/apt/{arch}/Packages").decode()
            stanzas = sorted((s.split("\n")[0], s.split("Version: ")[1].split("\n")[0])
                             for s in packages.split("\n\n") if s.strip())
            assert stanzas == sorted((f"Package: {f.package.name}", f.package.version)
                                     for f in mine), arch
            assert " Packages\n" in get(f"{server.url}/apt/{arch}/Release").decode()
            for f in mine:
                assert get(f"{server.url}/apt/{arch}/{f.url_path}") == f.path.read_bytes()
        # Another platform's file is not in this one's repository.
        with pytest.raises(urllib.error.HTTPError, match="404"):
            get(f"{server.url}/apt/amd64/{files['arm64'][0].url_path}")
        with pytest.raises(urllib.error.HTTPError, match="404"):
            get(f"{server.url}/apt/s390x/Packages")
        # The flat repository of the whole lock is still there.
        assert get(f"{server.url}/apt/Packages").decode().count("Package: ") == 4


def test_a_one_platform_view_has_no_architecture_repositories(tmp_path: Path) -> None:
    f = deb(tmp_path, "relock-hello", "1.0-1", "amd64")
    view = LockedView([f], make_lock(apt=(f.package,)), None)
    assert view.arch_meta == {}
    with view.serve() as server, pytest.raises(urllib.error.HTTPError, match="404"):
        get(f"{server.url}/apt/amd64/Packages")
