"""Where a lock lives: the one lock of ``locks/``, and the file name of a new one."""

from __future__ import annotations

import re
from pathlib import Path

from relock.errors import UsageError
from relock.lock.reference import split


def default_lock(lock_path: Path | None) -> Path:
    """``--lock`` or the only lock in ``locks/``."""
    if lock_path is not None:
        return lock_path
    found = sorted(Path("locks").glob("*.lock"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError("no --lock given and no locks/*.lock here")
    names = ", ".join(str(p) for p in found)
    raise UsageError(f"several locks in locks/ ({names}); name one with --lock")


def lock_name(image: str) -> str:
    """A file name for the lock of ``image``: its repository's last part.

    An image ID (``sha256:...`` or bare hex) has no such part: the user names
    the lock (-o or --name) rather than getting ``locks/sha256.lock``.
    """
    if re.fullmatch(r"sha256:[0-9a-f]*|[0-9a-f]{12,64}", image):
        raise UsageError(
            f"{image[:19]}... is an image ID, which gives the lock no name; "
            "pass -o PATH or --name NAME"
        )
    name = split(image).name.rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "image"
