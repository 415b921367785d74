"""Plain files by URL: the one seam for a template's ``curl``, ``wget`` and ``ADD`` URLs.

A plain download has no index and no archive behind it: only its URL, and the sha256
a lock gives it. ``fetch`` brings the bytes into the blob cache (``relock.blobs``) and
says what they hash to (a freeze learning them); ``fetch_checked`` refuses any other
bytes than the lock's (``relock vendor``, the view). Both bounded by ``bounds.DOWNLOAD``,
under relock's deadlines and retries; requests' own environment (``https_proxy``,
``REQUESTS_CA_BUNDLE``) applies, as for any https client.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from relock import bounds
from relock.blobs import BlobCache
from relock.errors import HashMismatchError, LimitError, RelockError
from relock.upstream import http

_local = threading.local()


class DownloadError(RelockError):
    """A plain download's URL did not answer with its file."""


def _answer(url: str) -> http.Answer:
    try:
        resp = http.request(http.thread_session(_local), "GET", url,
                            limits=http.Limits.from_env(), stream=True)
    except http.Unanswered as e:
        raise DownloadError(f"{e.url}: {e.reason or e.expired}") from None
    if resp.status_code != 200:
        http.release(resp)
        raise DownloadError(f"{http.redact(url)}: HTTP {resp.status_code}")
    return resp


def _chunks(resp: http.Answer, url: str) -> Iterator[bytes]:
    seen = 0
    try:
        for chunk in http.iter_chunks(resp, 1 << 16):
            seen += len(chunk)
            if seen > bounds.DOWNLOAD:
                raise LimitError(bounds.over(http.redact(url), "the download",
                                             bounds.size_text(bounds.DOWNLOAD)))
            yield chunk
    except http.Unanswered as e:
        raise DownloadError(f"{e.url}: the download broke off ({e.reason or e.expired})") \
            from None
    finally:
        http.release(resp)


def fetch(url: str, cache: BlobCache) -> tuple[str, int]:
    """GET ``url`` into ``cache``: (sha256, size) of what it answered."""
    resp = _answer(url)
    folder = cache.root / "sha256"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".download.", suffix=".part")
    except OSError as e:
        http.release(resp)
        raise DownloadError(f"cannot write to the blob cache {cache.root}: {e}") from None
    tmp = Path(name)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(resp, url):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        cache.put_file(sha, tmp, http.redact(url))
        return sha, size
    finally:
        tmp.unlink(missing_ok=True)


def fetch_checked(url: str, sha256: str, cache: BlobCache) -> Path:
    """The file of ``url`` in ``cache``, from there if it is, else fetched; other bytes than
    ``sha256`` are refused (``HashMismatchError``) and not kept."""
    found = cache.path(sha256)
    if found is not None:
        return found
    try:
        return cache.put_stream(sha256, _chunks(_answer(url), url), http.redact(url))
    except HashMismatchError as e:
        raise HashMismatchError(f"{e}: the file at that URL has changed since the lock was "
                                "made (re-freeze an image built from it)") from None
