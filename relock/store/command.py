"""The use cases of ``relock vendor`` and ``relock store ls|verify|copy``.

Each takes what its command's options say and returns what the CLI prints;
nothing here prints or exits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.image.engine import Engine
    from relock.store.store import CopyStats, Descriptor, Problem, Summary
    from relock.store.vendor import VendorReport


@dataclass(frozen=True)
class VendorRequest:
    """What ``relock vendor``'s options say: the lock, the store, where files come from."""

    store: str
    lock_path: Path | None = None
    apt_mirrors: tuple[str, ...] = ()
    apt_snapshot_url: str | None = None
    apt_live: bool = False
    allow_missing: bool = False
    tag: str = ""
    jobs: int = 4


def run_vendor(request: VendorRequest, progress: Progress = quiet, warn: Progress = quiet,
               *, connect: Callable[[], Engine] | None = None) -> VendorReport:
    """Put every byte a rebuild of the lock needs into the store (made if absent).

    Without an engine (``connect``: the docker one if None) every locked
    .deb is vendored, with a warning: which ones the base images hold is
    not known then.
    """
    from relock.blobs import sigterm_as_interrupt
    from relock.build import rebuild
    from relock.errors import EngineError
    from relock.lock import lockfile
    from relock.lock.locate import default_lock
    from relock.store import store as stores
    from relock.store import vendor as core

    lock_path = default_lock(request.lock_path)
    lock = lockfile.read(lock_path)
    data = lockfile.read_text(lock_path).encode("utf-8")  # the bytes just read: bounded
    s = stores.open_store(request.store, create=True)
    mirrors: tuple[str, ...] = ()
    installed: set[tuple[str, str, str]] | None
    if connect is None:
        from relock.image import engine

        connect = engine.connect
    try:
        client = connect()
        mirrors = tuple(client.registry_mirrors())
        installed = rebuild.installed_in_bases(client, lock, progress)
    except EngineError as e:
        warn(f"{e}; relock cannot tell which packages the base images hold, so every "
             "locked .deb is vendored")
        installed = None
    options = core.VendorOptions(
        use_snapshot=not request.apt_live, snapshot_url=request.apt_snapshot_url,
        mirrors=request.apt_mirrors, allow_missing=request.allow_missing,
        workers=request.jobs, tag=request.tag, registry_mirrors=mirrors)
    with sigterm_as_interrupt():
        return core.vendor(lock, data, s, options, installed, progress=progress)


@dataclass(frozen=True)
class TagSummary:
    """One tag of a store: what it names, how many blobs and bytes."""

    name: str
    descriptor: Descriptor
    summary: Summary


def list_store(where: str) -> Iterator[TagSummary]:
    """The tags of the store ``where``, sorted, each summed up as it is read."""
    from relock.store import store as core

    s = core.open_store(where)
    for name, desc in sorted(s.tags().items()):
        yield TagSummary(name, desc, core.summarize(s, desc.digest, core.tag_platforms(desc)))


def verify_store(where: str) -> tuple[int, list[Problem]]:
    """How many blobs and manifests of ``where`` were re-hashed, and what is missing or changed."""
    from relock.store import store as core

    return core.verify(core.open_store(where))


def copy_stores(source: str, destination: str, tags: tuple[str, ...] = ()) -> CopyStats:
    """Copy ``source`` (only ``tags`` of it, if any) into ``destination`` (made if absent)."""
    from relock.store import store as core

    src = core.open_store(source)
    dst = core.open_store(destination, create=True)
    return core.copy_store(src, dst, tags or None)
