"""Plain downloads in the lock: a ``[[download]]`` entry per URL the template fetches.

A ``RUN curl -fsSL https://... -o /opt/x``, a ``wget``, or an ``ADD https://... /opt/``
puts a file in the image that no index describes (``relock.template.fetches`` finds
them). Freeze locks each one (URL, sha256, size), the bytes taken, in this order, from:

1. the image: where the template says the file goes, the file there is the download
   (``path`` records where);
2. the URL itself, at freeze time, when the image does not hold it there (``curl ... |
   tar x``, a file removed later): the lock then holds what the URL gives now, and a
   warning says so.

The bytes go into relock's blob cache, so the pinned build's view serves them from
there, and ``relock vendor`` into the store. A URL whose ``$VARIABLE`` no ``ARG``,
``ENV`` or build argument gives, or that no source answers, is a warning naming it:
the pinned build then fails naming the URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from relock import bounds
from relock.lock.grammar import problem
from relock.lock.lockfile import Download, Lock
from relock.template.dockerfile import Dockerfile
from relock.template.fetches import PlainDownload, plain_downloads

if TYPE_CHECKING:
    from relock.blobs import BlobCache
    from relock.image.rootfs import RootFS


# -- the lock's entries -------------------------------------------------------------------

@dataclass(frozen=True)
class Found:
    """The downloads locked, and what the user should hear."""

    downloads: tuple[Download, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _in_image(dockerfile: Dockerfile, platform: str) -> list[PlainDownload]:
    """The final stage's downloads that say where the file goes."""
    final = dockerfile.stages[-1].index
    return [d for d in plain_downloads(dockerfile, platform)
            if d.stage == final and d.path and not d.unresolved
            and not problem("download-url", d.url)]


def image_paths(dockerfile: Dockerfile, platform: str = "linux/amd64") -> tuple[str, ...]:
    """Where the template puts its downloads in the image (no leading slash): the files an
    image source must keep readable for ``from_image``."""
    return tuple(sorted({d.path.lstrip("/") for d in _in_image(dockerfile, platform)}))


def from_image(dockerfile: Dockerfile, fs: RootFS, cache: BlobCache,
               platform: str = "linux/amd64") -> dict[str, Download]:
    """The final stage's downloads whose files the image holds where the template puts them;
    their bytes into ``cache``. A file too big to read here (``bounds.LAYER_FILE``) is left
    to the URL."""
    from relock.errors import LimitError

    out: dict[str, Download] = {}
    for d in _in_image(dockerfile, platform):
        if d.url in out:
            continue
        try:
            data = fs.read_bytes(d.path)
        except LimitError:
            continue
        if data is None:
            continue
        sha = hashlib.sha256(data).hexdigest()
        cache.put_stream(sha, [data], f"the image's {d.path}")
        out[d.url] = Download(d.url, sha, len(data), d.path)
    return out


def lock_downloads(lock: Lock, dockerfile: Dockerfile, held: Mapping[str, Download],
                   fetch: Callable[[str], tuple[str, int]] | None,
                   platform: str = "linux/amd64") -> tuple[Lock, Found]:
    """``lock`` with a ``[[download]]`` entry per plain download of ``dockerfile``: the
    image's file where ``held`` has it, else the URL's answer by ``fetch`` (None: none
    fetched, ``--no-index``)."""
    name = Path(dockerfile.path).name
    entries: dict[str, Download] = {}
    warnings: list[str] = []
    notes: list[str] = []
    for d in plain_downloads(dockerfile, platform):
        at = f"{name} line {d.line} ({d.instruction})"
        if d.url in entries:
            continue
        if d.unresolved:
            warnings.append(f"{at} downloads {d.url[:200]}: no ARG, ENV or build argument "
                            f"gives ${d.unresolved}, so the lock cannot hold it and a pinned "
                            "build fails naming the URL; give it a default or --build-arg")
            continue
        bad = problem("download-url", d.url)
        if bad:
            warnings.append(f"{at} downloads {d.url[:200]}: the URL is {bad}; not locked")
            continue
        if len(entries) >= bounds.DOWNLOADS:
            limit = bounds.over(name, "the number of plain downloads", str(bounds.DOWNLOADS))
            warnings.append(limit.replace("; refused", f"; {d.url[:200]} not locked"))
            continue
        if d.url in held:
            entries[d.url] = held[d.url]
            notes.append(f"{at} downloads {d.url[:200]}: locked from the image's {d.path}")
            continue
        if fetch is None:
            warnings.append(f"{at} downloads {d.url[:200]}: the image does not keep it where "
                            "the template says, and with --no-index freeze fetches nothing; "
                            "not locked, a pinned build fails naming the URL")
            continue
        from relock.errors import RelockError

        try:
            sha, size = fetch(d.url)
        except RelockError as e:
            warnings.append(f"{at} downloads {d.url[:200]}: not locked, the URL did not "
                            f"answer with its file ({e}); a pinned build fails naming it")
            continue
        entries[d.url] = Download(d.url, sha, size)
        where = f" at {d.path}" if d.path else ""
        warnings.append(f"{at} downloads {d.url[:200]}: the image does not keep it{where}, so "
                        "the lock holds what the URL gives now (sha256 "
                        f"{sha[:16]}...); if the file has changed since the image was built, "
                        "the pinned image differs from it")
    # An entry of the lock's other platforms stays when the template still names it for
    # one of them; what no platform's build fetches any more goes.
    others = {d.url for p in lock.all_platforms if p and p != platform
              for d in plain_downloads(dockerfile, p)}
    kept = {d.url: d for d in lock.download if d.url not in entries and d.url in others}
    return replace(lock, download=tuple({**kept, **entries}.values())), Found(
        tuple(entries.values()), tuple(warnings), tuple(notes))
