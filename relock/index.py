"""The Python package index, as pip is configured to use it.

Answers one question: the sha256 of every file of a given distribution
version, which ``pip install --require-hashes`` needs. It speaks the simple
repository API (PEP 691 JSON, PEP 503 HTML with hash fragments, and
``file://`` folders), asks concurrently, and caches answers on disk so that a
second freeze of the same image does not ask again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, BinaryIO

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from relock.errors import IndexError_, one_line

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)


@dataclass(frozen=True)
class IndexConfig:
    """Where pip looks for distributions, and how it trusts TLS."""

    urls: tuple[str, ...]
    cert: str | None = None
    timeout: float = 60.0


def pip_config() -> IndexConfig:
    """The index URLs and CA bundle from pip's own configuration and PIP_* variables."""
    from pip._internal.configuration import Configuration
    from pip._internal.exceptions import ConfigurationError
    from pip._internal.models.index import PyPI

    conf = Configuration(isolated=False)
    try:
        conf.load()
    except ConfigurationError as e:
        raise IndexError_(f"cannot read pip's configuration: {e}") from None

    def value(option: str) -> str | None:
        for section in (":env:", "install", "download", "global"):
            try:
                found = conf.get_value(f"{section}.{option}")
            except ConfigurationError:
                continue
            if found:
                return str(found)
        return None

    index = value("index-url") or PyPI.simple_url
    extra = (value("extra-index-url") or "").split()
    timeout = value("timeout") or value("default-timeout")
    return IndexConfig(
        urls=(index, *extra),
        cert=value("cert"),
        timeout=float(timeout) if timeout else 60.0,
    )


def default_cache_dir() -> Path:
    """Where index answers are cached (``$XDG_CACHE_HOME/relock/index``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "relock" / "index"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def _version_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


class Index:
    """A client for the configured indexes, with an on-disk cache."""

    def __init__(self, config: IndexConfig, cache_dir: Path | None = None,
                 workers: int = 8) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.workers = workers
        self.requests_made = 0
        self.cache_hits = 0
        self._local = threading.local()
        self._lock = threading.Lock()

    def _session(self) -> Any:
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            if self.config.cert:
                session.verify = self.config.cert
            self._local.session = session
        return session

    def _project_files(self, index: str, name: str) -> list[tuple[str, str]]:
        """(filename, sha256) of every file of project ``name`` on ``index``."""
        import requests

        url = index.rstrip("/") + "/" + name + "/"
        with self._lock:
            self.requests_made += 1
        if url.startswith("file://"):
            folder = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
            page = folder / "index.html"
            if not page.is_file():
                return []
            return _parse_html(page.read_text("utf-8", "replace"))
        try:
            resp = self._session().get(url, headers={"Accept": _ACCEPT},
                                       timeout=self.config.timeout)
        except requests.RequestException as e:
            raise IndexError_(f"package index {index} is unreachable: {one_line(e)}") from None
        if resp.status_code == 404:
            return []
        if resp.status_code >= 400:
            raise IndexError_(f"package index {index} answered HTTP {resp.status_code} for {name}")
        ctype = resp.headers.get("Content-Type", "")
        if "json" in ctype:
            data = resp.json()
            return [
                (f["filename"], f.get("hashes", {}).get("sha256", ""))
                for f in data.get("files", [])
                if not f.get("yanked")
            ]
        return _parse_html(resp.text)

    def hashes(self, name: str, version: str) -> tuple[str, ...]:
        """``sha256:...`` of every file of ``name==version`` on the configured indexes."""
        name = str(canonicalize_name(name))
        cached = self._cache_get(name, version)
        if cached is not None:
            with self._lock:
                self.cache_hits += 1
            return cached
        want = Version(version)
        found: set[str] = set()
        for index in self.config.urls:
            for filename, digest in self._project_files(index, name):
                if digest and _version_of(filename) == want:
                    found.add("sha256:" + digest)
        if not found:
            where = ", ".join(_redact(u) for u in self.config.urls)
            raise IndexError_(
                f"{name}=={version} has no files with hashes on the package index ({where}); "
                "was it installed from a local file, or removed from the index?"
            )
        result = tuple(sorted(found))
        self._cache_put(name, version, result)
        return result

    def hashes_many(
        self,
        wanted: Iterable[tuple[str, str]],
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[tuple[str, str], tuple[str, ...]]:
        """Hashes for many (name, version) pairs, asked concurrently."""
        todo = sorted(set(wanted))
        out: dict[tuple[str, str], tuple[str, ...]] = {}
        if not todo:
            return out
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(self.hashes, n, v): (n, v) for n, v in todo}
            for done, (fut, key) in enumerate(futures.items(), start=1):
                out[key] = fut.result()
                if progress:
                    progress(done, len(todo))
        return out

    def links(self, name: str) -> list[IndexLink]:
        """Every file of project ``name`` on the configured indexes, with its URL."""
        import requests

        name = str(canonicalize_name(name))
        out: list[IndexLink] = []
        for index in self.config.urls:
            url = index.rstrip("/") + "/" + name + "/"
            with self._lock:
                self.requests_made += 1
            if url.startswith("file://"):
                page = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)) / "index.html"
                if page.is_file():
                    out += _html_links(page.read_text("utf-8", "replace"), url)
                continue
            try:
                resp = self._session().get(url, headers={"Accept": _ACCEPT},
                                           timeout=self.config.timeout)
            except requests.RequestException as e:
                raise IndexError_(f"package index {_redact(index)} is unreachable: "
                                  f"{one_line(e)}") from None
            if resp.status_code == 404:
                continue
            if resp.status_code >= 400:
                raise IndexError_(f"package index {_redact(index)} answered HTTP "
                                  f"{resp.status_code} for {name}")
            if "json" in resp.headers.get("Content-Type", ""):
                out += _json_links(resp.json(), resp.url)
            else:
                out += _html_links(resp.text, resp.url)
        return out

    def open(self, url: str) -> tuple[BinaryIO, int | None]:
        """A stream of the file at ``url`` (from ``links``) and its length if known."""
        import requests

        if url.startswith("file://"):
            path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
            try:
                return path.open("rb"), path.stat().st_size
            except OSError as e:
                raise IndexError_(f"{path}: cannot read: {e.strerror}") from None
        try:
            resp = self._session().get(url, stream=True, timeout=self.config.timeout)
        except requests.RequestException as e:
            raise IndexError_(f"cannot download {_redact(url)}: {one_line(e)}") from None
        if resp.status_code >= 400:
            resp.close()
            raise IndexError_(f"cannot download {_redact(url)}: HTTP {resp.status_code}")
        length = resp.headers.get("Content-Length")
        resp.raw.decode_content = True
        return resp.raw, int(length) if length and length.isdigit() else None

    # -- cache -----------------------------------------------------------
    def _cache_path(self, name: str, version: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256("\n".join(self.config.urls).encode()).hexdigest()[:16]
        return self.cache_dir / key / name / f"{version}.json"

    def _cache_get(self, name: str, version: str) -> tuple[str, ...] | None:
        path = self._cache_path(name, version)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if isinstance(data, list) and all(isinstance(h, str) for h in data) and data:
            return tuple(data)
        return None

    def _cache_put(self, name: str, version: str, hashes: Sequence[str]) -> None:
        path = self._cache_path(name, version)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(list(hashes)))
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written only costs time


def _parse_html(text: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(text)
    out = []
    for href in parser.links:
        url, _, fragment = href.partition("#")
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        digest = ""
        for part in fragment.split("&"):
            algo, _, value = part.partition("=")
            if algo == "sha256":
                digest = value
        out.append((filename, digest))
    return out


@dataclass(frozen=True)
class IndexLink:
    """One file on an index page."""

    filename: str
    url: str
    sha256: str
    requires_python: str = ""


def _json_links(data: Any, page: str) -> list[IndexLink]:
    files = data.get("files", []) if isinstance(data, dict) else []
    out = []
    for f in files if isinstance(files, list) else []:
        if not isinstance(f, dict) or f.get("yanked") or not isinstance(f.get("filename"), str):
            continue
        hashes: dict[str, Any] = f["hashes"] if isinstance(f.get("hashes"), dict) else {}
        out.append(IndexLink(f["filename"], urllib.parse.urljoin(page, str(f.get("url", ""))),
                             str(hashes.get("sha256", "")), str(f.get("requires-python") or "")))
    return out


class _FileLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            found = dict(attrs)
            if found.get("href") and found.get("data-yanked") is None:
                self.links.append((found["href"] or "", found.get("data-requires-python") or ""))


def _html_links(text: str, page: str) -> list[IndexLink]:
    parser = _FileLinks()
    parser.feed(text)
    out = []
    for href, requires in parser.links:
        url, _, fragment = href.partition("#")
        digest = dict(p.partition("=")[::2] for p in fragment.split("&")).get("sha256", "")
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        out.append(IndexLink(filename, urllib.parse.urljoin(page, url), digest, requires))
    return out


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password or parts.username:
        netloc = parts.hostname or ""
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url
