"""``relock vendor`` over a store it did not make whole: what it relies on is re-hashed.

A store's .deb, wheel or lock manifest with other bytes than its digest is
fetched (or written) again and replaced, with a warning, so that ``relock
store verify`` right after agrees with vendor's exit 0; a blob that is a link
is refused in one line, and the file it names is left as it was.
The archive and index are tests/store/test_vendor.py's loopback ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relock.store.store import DirStore, lock_tag, read_lock
from tests.hostile.contract import invoke, one_line_error
from tests.store import test_vendor as tv
from tests.support.aptarchive import AptArchive

pytestmark = tv.pytestmark
archive = tv.archive
index = tv.index


def vendored(tmp_path: Path, archive: AptArchive, index: Path) -> tuple[Path, Path]:
    lock = tv.make_lock(tmp_path / "x.lock", archive, ["relock-hello"], pip=True)
    store = tmp_path / "store"
    r = tv.vendor(lock, store, "--apt-snapshot-url", archive.snapshot_url, index=index)
    assert r.exit_code == 0, r.output
    return lock, store


def blob_of(store: Path, lock: Path, role: str) -> Path:
    s = DirStore(store)
    tag = lock_tag(lock.read_bytes())
    _, files = read_lock(s, tag)
    if role == "lock manifest":
        return s.path(s.tags()[tag].digest)
    if role == "lock file":
        return s.path(s.manifest(tag).json()["config"]["digest"])  # type: ignore[index]
    kind = "deb" if role == ".deb" else "wheel"
    return s.path(next(f.digest for f in files if f.kind == kind))


@pytest.mark.parametrize("role", [".deb", "wheel", "lock manifest", "lock file"])
def test_vendor_over_a_changed_blob_replaces_it_and_verify_agrees(
        tmp_path: Path, archive: AptArchive, index: Path, role: str) -> None:
    lock, store = vendored(tmp_path, archive, index)
    blob = blob_of(store, lock, role)
    good = blob.read_bytes()
    blob.chmod(0o644)
    blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, one bit off
    assert invoke("store", "verify", str(store)).exit_code == 1  # the store is changed

    r = tv.vendor(lock, store, "--apt-snapshot-url", archive.snapshot_url, index=index)
    assert r.exit_code == 0, r.output
    if role in (".deb", "wheel"):
        assert "did not have its sha256; fetched again and replaced" in r.stderr
    assert blob.read_bytes() == good
    v = invoke("store", "verify", str(store))
    assert v.exit_code == 0, v.output
    tv.assert_sound(store)


def test_vendor_refuses_a_linked_blob_and_leaves_its_target(
        tmp_path: Path, archive: AptArchive, index: Path) -> None:
    lock, store = vendored(tmp_path, archive, index)
    blob = blob_of(store, lock, ".deb")
    outside = tmp_path / "outside"
    outside.write_bytes(b"someone else's file\n")
    blob.unlink()
    blob.symlink_to(outside)
    r = tv.vendor(lock, store, "--apt-snapshot-url", archive.snapshot_url, index=index)
    one_line_error(r, f"{blob}: is a symbolic link")
    assert outside.read_bytes() == b"someone else's file\n"
    assert blob.is_symlink()  # not replaced silently either: the user looks at it


def test_vendor_into_a_store_whose_blobs_folder_is_a_link_writes_nothing_there(
        tmp_path: Path, archive: AptArchive, index: Path) -> None:
    lock = tv.make_lock(tmp_path / "x.lock", archive, ["relock-hello"], pip=True)
    store = tmp_path / "store"
    DirStore.open_layout(store, create=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (store / "blobs" / "sha256").rmdir()
    (store / "blobs" / "sha256").symlink_to(elsewhere)
    r = tv.vendor(lock, store, "--apt-snapshot-url", archive.snapshot_url, index=index)
    one_line_error(r, f"{store / 'blobs' / 'sha256'}: is a symbolic link")
    assert list(elsewhere.iterdir()) == []
