"""STAND-IN (replaced by the archive branch): fetch locked .debs from live sources."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from relock.blobs import BlobCache
from relock.errors import RelockError
from relock.lockfile import AptPackage, AptSource


class Archive:
    def __init__(self, snapshot_url: str | None = None, mirrors: Sequence[str] = ()) -> None:
        self.mirrors = tuple(mirrors)

    def fetch_deb(self, pkg: AptPackage, sources: Sequence[AptSource], snapshot: str,
                  cache: BlobCache) -> tuple[Path, str]:
        import requests

        hit = cache.path(pkg.sha256)
        if hit is not None:
            return hit, "cache"
        uris = [u for s in sources if "deb" in s.types for u in s.uris] + list(self.mirrors)
        for uri in uris:
            resp = requests.get(uri.rstrip("/") + "/" + pkg.filename, stream=True, timeout=30)
            if resp.status_code != 200:
                continue
            return cache.put_stream(pkg.sha256, resp.iter_content(1 << 16), pkg.name), "live"
        raise RelockError(f"{pkg.name} {pkg.version} is in no source")
