"""The locked view served from a store alone (relock.store.storeview), on loopback.

A folder store is filled by hand (real .deb files made with dpkg-deb, wheel
bytes of our own), then read back the way ``relock build --store`` does.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from relock.blobs import BlobCache
from relock.build.view import LockedView
from relock.errors import HashMismatchError
from relock.lock.lockfile import AptPackage, Distro, Input, Lock, PipPackage, PythonEnv
from relock.store import storeview
from relock.store.store import DirStore, StoredFile, put_lock
from tests.support.aptarchive import Deb, build_deb
from tests.support.tools import missing

pytestmark = pytest.mark.skipif(missing("dpkg-deb"), reason="needs dpkg-deb")

WHEEL = b"not really a zip, but bytes with a hash\n"
WHEEL_NAME = "six-1.17.0-py2.py3-none-any.whl"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def filled(tmp_path: Path) -> tuple[DirStore, Lock, list[StoredFile], AptPackage]:
    """A store holding one .deb and one wheel, and the lock manifest naming them."""
    deb_path = build_deb(Deb("relock-hello", "1.0"), tmp_path)
    deb_bytes = deb_path.read_bytes()
    pkg = AptPackage("relock-hello", "1.0", "all", sha256=sha(deb_bytes),
                     filename="pool/main/r/relock-hello/relock-hello_1.0_all.deb")
    lock = Lock(input=Input("Dockerfile.in", "0" * 64), distro=Distro("debian", "13"),
                apt=(pkg,),
                python=(PythonEnv("/opt/venv", "3.13", "/opt/venv/lib", venv=True),),
                pip=(PipPackage("six", "1.17.0", "/opt/venv",
                                hashes=(f"sha256:{sha(WHEEL)}", "sha256:" + "e" * 64)),))
    store = DirStore.open_layout(tmp_path / "store", create=True)
    store.put("sha256:" + pkg.sha256, deb_bytes)
    store.put("sha256:" + sha(WHEEL), WHEEL)
    files = [StoredFile("deb", pkg.name, pkg.version, deb_path.name, "sha256:" + pkg.sha256,
                        len(deb_bytes), "all"),
             StoredFile("wheel", "six", "1.17.0", WHEEL_NAME, "sha256:" + sha(WHEEL),
                        len(WHEEL))]
    lock_path = tmp_path / "x.lock"
    lock_path.write_bytes(b"# a lock\n")
    put_lock(store, lock_path.read_bytes(), files)
    return store, lock, files, pkg


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


def test_the_view_serves_the_stores_files(tmp_path: Path) -> None:
    store, lock, _, pkg = filled(tmp_path)
    files = storeview.lock_files(store, str(tmp_path / "x.lock"))
    storeview.check_complete(store, files, lock)
    debs = storeview.store_debs(store, [pkg], files, BlobCache(tmp_path / "cache"))
    assert debs[0].path == store.path("sha256:" + pkg.sha256)
    assert "Package: relock-hello" in debs[0].control
    view = LockedView(debs, lock, storeview.StoreSource(store, files))
    with view.serve() as server:
        packages = get(f"{server.url}/apt/Packages").decode()
        assert f"SHA256: {pkg.sha256}" in packages
        page = get(f"{server.url}/pypi/simple/six/").decode()
        # Only the locked file the store has; the other locked hash is not listed.
        assert page.count("<a ") == 1 and WHEEL_NAME in page
        assert get(f"{server.url}/pypi/files/{sha(WHEEL)}/{WHEEL_NAME}") == WHEEL
        with pytest.raises(urllib.error.HTTPError):
            get(f"{server.url}/pypi/simple/click/")
    assert view.misses.pip == {"click"}


def test_a_changed_wheel_is_cut_off_and_named(tmp_path: Path) -> None:
    store, lock, files, _ = filled(tmp_path)
    blob = store.path("sha256:" + sha(WHEEL))
    blob.chmod(0o644)
    blob.write_bytes(b"other bytes under the same name\n")
    view = LockedView([], lock, storeview.StoreSource(store, files))
    with view.serve() as server:
        get(f"{server.url}/pypi/simple/six/")
        # The file is re-hashed before its first byte is relayed: pip gets none of it.
        with pytest.raises(urllib.error.HTTPError) as e:
            get(f"{server.url}/pypi/files/{sha(WHEEL)}/{WHEEL_NAME}")
        assert e.value.code == 502
    assert any(WHEEL_NAME in m for m in view.misses.mismatches)


def test_a_missing_deb_is_named_with_its_version(tmp_path: Path) -> None:
    store, lock, files, pkg = filled(tmp_path)
    store.path("sha256:" + pkg.sha256).unlink()
    with pytest.raises(storeview.MissingFromStoreError, match=r"relock-hello 1\.0 \(all\)"):
        storeview.check_complete(store, files, lock)
    with pytest.raises(storeview.MissingFromStoreError, match=r"relock-hello 1\.0 \(all\)"):
        storeview.store_debs(store, [pkg], files, BlobCache(tmp_path / "cache"))


def test_a_changed_deb_is_refused_by_hash_and_named(tmp_path: Path) -> None:
    store, _, files, pkg = filled(tmp_path)
    blob = store.path("sha256:" + pkg.sha256)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"x")
    with pytest.raises(HashMismatchError, match=r"relock-hello 1\.0 \(all\).*refused"):
        storeview.store_debs(store, [pkg], files, BlobCache(tmp_path / "cache"))


def test_a_python_version_never_vendored_is_named(tmp_path: Path) -> None:
    store, lock, files, _ = filled(tmp_path)
    extra = PipPackage("click", "8.1.8", "/opt/venv", hashes=("sha256:" + "c" * 64,))
    lock = Lock(input=lock.input, distro=lock.distro, apt=lock.apt, python=lock.python,
                pip=(*lock.pip, extra))
    with pytest.raises(storeview.MissingFromStoreError, match=r"click 8\.1\.8"):
        storeview.check_complete(store, files, lock)


def test_a_store_without_this_lock_says_how_to_fill_it(tmp_path: Path) -> None:
    store, _, _, _ = filled(tmp_path)
    other = tmp_path / "other.lock"
    other.write_text("# another lock\n")
    with pytest.raises(storeview.MissingFromStoreError, match="relock vendor --lock"):
        storeview.lock_files(store, str(other))
