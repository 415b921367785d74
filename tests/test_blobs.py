"""The content-addressed blob cache: whole, checked files or nothing."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relock.blobs import BlobCache, default_blob_dir
from relock.errors import HashMismatchError, StoreError

DATA = b"a .deb's bytes\n" * 10_000
SHA = hashlib.sha256(DATA).hexdigest()


def chunks(data: bytes = DATA, size: int = 4096) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_put_stream_names_the_file_by_its_hash(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    assert cache.path(SHA) is None
    path = cache.put_stream(SHA, chunks(), "test")
    assert path == tmp_path / "sha256" / SHA
    assert path.read_bytes() == DATA
    assert cache.path(SHA) == path
    assert leftovers(tmp_path) == [path]


def test_a_cached_blob_is_not_read_again(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    cache.put_stream(SHA, chunks(), "test")

    def boom() -> Iterator[bytes]:
        raise AssertionError("read again")
        yield b""

    assert cache.put_stream(SHA, boom(), "test").read_bytes() == DATA


def test_mismatch_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    wrong = "0" * 64
    with pytest.raises(HashMismatchError) as e:
        cache.put_stream(wrong, chunks(), "foo 1.0 from http://m/pool/f.deb")
    message = str(e.value)
    assert "foo 1.0 from http://m/pool/f.deb" in message
    assert SHA[:16] in message and wrong[:16] in message
    assert "\n" not in message
    assert cache.path(wrong) is None
    assert leftovers(tmp_path) == []


def test_an_interrupted_stream_leaves_nothing(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)

    def interrupted() -> Iterator[bytes]:
        yield DATA[:1000]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.put_stream(SHA, interrupted(), "test")
    assert leftovers(tmp_path) == []


def test_sigterm_turned_into_an_exception_leaves_nothing(tmp_path: Path) -> None:
    script = f"""
import signal, sys, time
from pathlib import Path
from relock.blobs import BlobCache, sigterm_as_interrupt
def slow():
    yield b"x" * 100_000
    print("writing", flush=True)
    time.sleep(60)
    yield b"y"
try:
    with sigterm_as_interrupt():
        BlobCache(Path({str(tmp_path)!r})).put_stream({SHA!r}, slow(), "test")
except KeyboardInterrupt:
    sys.exit(143)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    assert [p.name.endswith(".part") for p in leftovers(tmp_path)] == [True]
    proc.terminate()
    assert proc.wait(timeout=30) == 143
    assert leftovers(tmp_path) == []


def test_put_file_and_bad_names(tmp_path: Path) -> None:
    src = tmp_path / "f.deb"
    src.write_bytes(DATA)
    cache = BlobCache(tmp_path / "cache")
    assert cache.put_file(SHA, src).read_bytes() == DATA
    with pytest.raises(StoreError, match="not a sha256"):
        cache.put_file("../../etc/passwd", src)
    with pytest.raises(StoreError, match="cannot read"):
        cache.put_file("1" * 64, tmp_path / "missing.deb")
    assert leftovers(tmp_path / "cache") == [tmp_path / "cache" / "sha256" / SHA]


def test_unwritable_cache_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot write"):
        BlobCache(tmp_path / "file").put_stream(SHA, chunks(), "test")


def test_default_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_blob_dir() == tmp_path / "relock" / "blobs"
    assert BlobCache().root == tmp_path / "relock" / "blobs"
