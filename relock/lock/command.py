"""The use case of ``relock merge``: git's merge driver for lock files.

It writes the result over OURS and returns the conflicts; nothing here
prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relock.lock.merge import Conflict


@dataclass(frozen=True)
class MergeRequest:
    """What ``relock merge``'s arguments say."""

    base: Path
    ours: Path
    theirs: Path
    marker_size: int = 7


def run_merge(request: MergeRequest) -> tuple[Conflict, ...]:
    """Merge THEIRS into OURS package by package; the conflicts (OURS then has markers)."""
    from relock.files import read_regular
    from relock.lock import lockfile
    from relock.lock import merge as core

    locks = [lockfile.read(p) for p in (request.base, request.ours, request.theirs)]
    ours_text = read_regular(request.ours, lockfile.MAX_BYTES).decode("utf-8", "replace")
    result = core.merge(*locks)
    header = core.header_of(ours_text)
    if result.clean:
        lockfile.atomic_write_text(request.ours, core.merged_text(result, header))
        return ()
    text = core.conflict_text(result, header, marker=request.marker_size)
    lockfile.atomic_write_text(request.ours, text)
    return tuple(result.conflicts)
