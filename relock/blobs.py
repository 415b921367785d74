"""STAND-IN (replaced by the archive branch): a content-addressed file cache."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from relock.errors import RelockError


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "relock" / "blobs"


class BlobCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()

    def path(self, sha256: str) -> Path | None:
        p = self.root / "sha256" / sha256
        return p if p.is_file() else None

    def put_stream(self, sha256: str, chunks: Iterable[bytes], where: str) -> Path:
        folder = self.root / "sha256"
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=folder)
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as f:
                for c in chunks:
                    h.update(c)
                    f.write(c)
            if h.hexdigest() != sha256:
                raise RelockError(f"{where} does not match the lock")
            os.replace(tmp, folder / sha256)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return folder / sha256
