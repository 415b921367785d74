"""What storeview, vendor and copying ask of a ``Store`` (relock.store.store), not of its class.

A folder store answers with its local files; ``Remote`` is the same folder
seen as a store without local files (as a registry is), so the other way
through ``storeview.store_debs``, ``StoreSource.open`` and ``copy_blob`` runs
without a registry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, BinaryIO

import pytest

from relock.blobs import BlobCache
from relock.build.view import PipFile
from relock.errors import HashMismatchError
from relock.lock.lockfile import AptPackage
from relock.store import storeview
from relock.store.store import Descriptor, DirStore, Store, StoredFile, copy_blob, spooled
from relock.upstream.registry import Manifest


class Remote:
    """A folder store that keeps its files to itself: every blob comes as a checked stream."""

    def __init__(self, inner: DirStore) -> None:
        self.inner = inner
        self.url = f"remote:{inner.url}"
        self.puts: list[tuple[str, str]] = []  # (digest, mount_from)

    def has(self, digest: str) -> bool:
        return self.inner.has(digest)

    def open(self, digest: str) -> IO[bytes]:
        return self.inner.open(digest)

    def open_checked(self, digest: str, size: int | None = None) -> BinaryIO:
        return spooled(self.inner.open(digest), f"{self.url}@{digest}", size)

    def intact(self, digest: str) -> bool:
        return self.inner.has(digest)

    def put(self, digest: str, source: Path | BinaryIO | bytes, size: int | None = None,
            *, mount_from: str = "") -> bool:
        self.puts.append((digest, mount_from))
        return self.inner.put(digest, source, size)

    def missing(self, digests: Iterable[str]) -> list[str]:
        return self.inner.missing(digests)

    def local_path(self, digest: str) -> Path | None:
        return None

    def blob_size(self, digest: str) -> int | None:
        return self.inner.blob_size(digest)

    def registry_repo(self) -> tuple[str, str] | None:
        return None

    def manifest(self, ref: str) -> Manifest:
        return self.inner.manifest(ref)

    def has_manifest(self, digest: str) -> bool:
        return self.inner.has_manifest(digest)

    def put_manifest(self, manifest: Manifest) -> Descriptor:
        return self.inner.put_manifest(manifest)

    def tag(self, name: str, descriptor: Descriptor) -> None:
        self.inner.tag(name, descriptor)

    def tags(self) -> dict[str, Descriptor]:
        return self.inner.tags()


DEB = b"not a real .deb: store_debs only hashes it here\n"
PKG = AptPackage("hello", "1.0", "all", sha256=hashlib.sha256(DEB).hexdigest(),
                 filename="pool/h/hello_1.0_all.deb")


def folder(tmp_path: Path) -> DirStore:
    store = DirStore.open_layout(tmp_path / "store", create=True)
    store.put("sha256:" + PKG.sha256, DEB)
    return store


def test_a_folder_store_answers_with_its_files(tmp_path: Path) -> None:
    store = folder(tmp_path)
    digest = "sha256:" + PKG.sha256
    assert store.local_path(digest) == store.path(digest)
    assert store.blob_size(digest) == len(DEB)
    assert store.blob_size("sha256:" + "0" * 64) is None
    assert store.registry_repo() is None


def test_debs_of_a_store_without_local_files_enter_the_cache_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("relock.build.view.deb_control", lambda path: "Package: hello\n")
    remote: Store = Remote(folder(tmp_path))
    cache = BlobCache(tmp_path / "cache")
    debs = storeview.store_debs(remote, [PKG], [], cache)
    assert debs[0].path == cache.path(PKG.sha256)
    assert debs[0].path.read_bytes() == DEB


def test_a_changed_deb_of_a_store_without_local_files_is_refused(tmp_path: Path) -> None:
    inner = folder(tmp_path)
    blob = inner.path("sha256:" + PKG.sha256)
    blob.chmod(0o644)
    blob.write_bytes(b"other bytes\n")
    cache = BlobCache(tmp_path / "cache")
    with pytest.raises(HashMismatchError, match=r"hello 1\.0 \(all\) from the store remote:"):
        storeview.store_debs(Remote(inner), [PKG], [], cache)
    assert cache.path(PKG.sha256) is None


def test_python_files_of_a_store_without_local_files_stream(tmp_path: Path) -> None:
    data = b"wheel bytes\n"
    sha = hashlib.sha256(data).hexdigest()
    inner = folder(tmp_path)
    inner.put("sha256:" + sha, data)
    stored = StoredFile("wheel", "six", "1.17.0", "six-1.17.0-py3-none-any.whl",
                        "sha256:" + sha, len(data))
    source = storeview.StoreSource(Remote(inner), [stored])
    stream, size = source.open(PipFile("six", "1.17.0", stored.filename, sha))
    with stream:
        assert (stream.read(), size) == (data, len(data))


def test_copy_streams_from_a_store_without_local_files(tmp_path: Path) -> None:
    src = Remote(folder(tmp_path))
    dst = DirStore.open_layout(tmp_path / "dst", create=True)
    desc = Descriptor("application/octet-stream", "sha256:" + PKG.sha256, len(DEB))
    assert copy_blob(src, dst, desc)
    assert dst.path(desc.digest).read_bytes() == DEB
    assert not copy_blob(src, dst, desc)  # there already
    back = Remote(DirStore.open_layout(tmp_path / "back", create=True))
    assert copy_blob(dst, back, desc)
    assert back.puts == [(desc.digest, "")]  # from a folder: its file, no mount
