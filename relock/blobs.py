"""A content-addressed file cache: every file is named by its sha256.

Layout ``<root>/sha256/<hex>``, the same naming as an OCI layout's blobs. A
file enters only whole and only when its bytes hash to its name: it is
written to a temporary file in the same folder, hashed while it is written,
and renamed into place on a match. On a mismatch, a full disk, Ctrl-C or any
other exception the temporary file is removed; a process killed outright
leaves at most a hidden ``.*.part`` file, which the cache never serves.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType

from relock import files
from relock.errors import HashMismatchError, StoreError

_HEX = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 16


def default_blob_dir() -> Path:
    """``$XDG_CACHE_HOME/relock/blobs`` (``~/.cache/relock/blobs`` without it)."""
    return files.cache_home() / "blobs"


def check_sha256(sha256: str, where: str) -> str:
    """``sha256`` if it is 64 lowercase hex digits; a StoreError naming ``where`` if not."""
    if not _HEX.fullmatch(sha256):
        raise StoreError(f"{where}: {sha256!r} is not a sha256 (64 hex digits)")
    return sha256


class BlobCache:
    """Files named by their sha256 under ``root``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_blob_dir()

    def _target(self, sha256: str, where: str = "blob cache") -> Path:
        return self.root / "sha256" / check_sha256(sha256, where)

    def path(self, sha256: str) -> Path | None:
        """The cached file with these bytes, or None."""
        target = self._target(sha256)
        return target if target.is_file() else None

    def put_stream(self, sha256: str, chunks: Iterable[bytes], where: str) -> Path:
        """Store the bytes of ``chunks`` if they hash to ``sha256``; return the file.

        ``where`` names the bytes' origin in errors (a URL, a package). A file
        already cached is returned without reading ``chunks``.
        """
        target = self._target(sha256, where)
        if target.is_file():
            return target
        import tempfile  # here: a freeze that reads only files makes none

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{sha256[:16]}.",
                                        suffix=".part")
        except OSError as e:
            raise StoreError(f"cannot write to the blob cache {self.root}: {e}") from None
        tmp = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    files.check_stopping(where)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            got = digest.hexdigest()
            if got != sha256:
                raise HashMismatchError(
                    f"{where}: the bytes have sha256 {got[:16]}..., expected {sha256[:16]}...; "
                    "refused"
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except files.Stopped:
            tmp.unlink(missing_ok=True)
            raise
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write {where} to the blob cache {self.root}: {e}") from None
        except BaseException:
            # A mismatch, Ctrl-C, a SIGTERM turned into an exception, a failed
            # download: nothing half-written may stay under the cache.
            tmp.unlink(missing_ok=True)
            raise
        return target

    def put_file(self, sha256: str, source: Path, where: str | None = None) -> Path:
        """Store a copy of the file ``source`` if its bytes hash to ``sha256``."""
        return self.put_stream(sha256, _read_chunks(source), where or str(source))


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt, so half-written blobs are removed.

    For commands that fill a cache or store (``relock vendor``); outside the
    main thread it does nothing (signals are only delivered there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _read_chunks(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror}") from None
