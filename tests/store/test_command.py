"""relock.store.command: store ls, verify and copy on folder stores (vendor's use case
needs an archive and an index; tests/test_vendor.py and tests/e2e hold it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relock.errors import StoreError
from relock.store import store as st
from relock.store.command import copy_stores, list_store, verify_store
from relock.upstream.registry import sha256_digest


def store_with_a_lock(tmp_path: Path) -> Path:
    where = tmp_path / "s"
    s = st.open_store(where, create=True)
    deb = b"a .deb, say\n"
    s.put(sha256_digest(deb), deb, len(deb))
    stored = st.StoredFile("deb", "a", "1", "a.deb", sha256_digest(deb), len(deb), "amd64")
    st.put_lock(s, b"version = 1\n", [stored], tag="mine")
    return where


def test_ls_sums_up_each_tag(tmp_path: Path) -> None:
    rows = list(list_store(str(store_with_a_lock(tmp_path))))
    assert [(r.name, r.summary.kind) for r in rows] == [("mine", "lock")]
    assert rows[0].summary.blobs >= 2


def test_verify_finds_a_changed_blob(tmp_path: Path) -> None:
    where = store_with_a_lock(tmp_path)
    checked, problems = verify_store(str(where))
    assert checked >= 3 and problems == []
    blob = where / "blobs" / "sha256" / sha256_digest(b"a .deb, say\n").split(":")[1]
    blob.chmod(0o644)
    blob.write_bytes(b"not the same\n")
    _, problems = verify_store(str(where))
    assert [p.digest for p in problems] == [sha256_digest(b"a .deb, say\n")]


def test_copy_makes_the_destination_and_skips_what_it_has(tmp_path: Path) -> None:
    where = store_with_a_lock(tmp_path)
    stats = copy_stores(str(where), str(tmp_path / "copy"))
    assert stats.blobs >= 2 and stats.skipped == 0
    assert [r.name for r in list_store(str(tmp_path / "copy"))] == ["mine"]
    assert copy_stores(str(where), str(tmp_path / "copy"), ("mine",)).blobs == 0


def test_a_folder_that_is_no_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not an OCI image layout"):
        verify_store(str(tmp_path))
