"""The Python package index, as pip is configured to use it.

Answers one question: the sha256 of every file of a given distribution
version, which ``pip install --require-hashes`` needs. It speaks the simple
repository API (PEP 691 JSON, PEP 503 HTML with hash fragments, and
``file://`` folders), asks concurrently, and caches answers on disk so that a
second freeze of the same image does not ask again. It also lists a
project's files (``links``) and streams one (``open``), for the locked view,
vendoring and ``relock outdated``. ``PackageIndex`` names what relock asks
of an index, so that those are typed against it and a test can hand a fake;
``Index`` answers it.
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
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from relock import bounds
from relock.errors import IndexError_
from relock.files import cache_home, write_cache
from relock.lock.grammar import problem, show

if TYPE_CHECKING:
    import requests

# A project page of the biggest projects is a few MiB; far more is not one.
MAX_PAGE = bounds.INDEX_PAGE

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)


@dataclass(frozen=True)
class IndexConfig:
    """Where pip looks for distributions, and how it trusts TLS."""

    urls: tuple[str, ...]
    cert: str | None = None
    # Total seconds for one request, from connecting to the last byte.
    timeout: float = 60.0
    # Hosts (``host`` or ``host:port``) pip is told to trust without TLS checks.
    trusted_hosts: tuple[str, ...] = ()


def pip_config() -> IndexConfig:
    """The index URLs, CA bundle, trusted hosts and time-out pip is configured with.

    pip has no Python API, so its own command line is asked, run by this
    interpreter: ``pip config list`` (files and ``PIP_*`` variables, merged
    with pip's precedence) and, when no index-url is set, the default that
    ``pip install --help`` states.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:  # both pip runs at once: each takes ~1 s
        listed = pool.submit(_pip, "config", "list")
        helped = pool.submit(_pip, "install", "--help")
        values = _pip_config_values(listed.result())
        help_text = helped.result() if not any(
            k.endswith(".index-url") and v for k, v in values.items()) else ""

    def value(option: str) -> str | None:
        for section in (":env:", "install", "download", "global"):
            found = values.get(f"{section}.{option}")
            if found:
                return found
        return None

    index = value("index-url") or _pip_default_index(help_text)
    extra = (value("extra-index-url") or "").split()
    return IndexConfig(
        urls=(index, *extra),
        cert=value("cert"),
        timeout=parse_timeout(value("timeout") or value("default-timeout")),
        trusted_hosts=tuple((value("trusted-host") or "").split()),
    )


def parse_timeout(text: str | None) -> float:
    """pip's time-out setting as seconds; 60 when unset, one line when it is not a time."""
    from relock.upstream.http import positive_seconds

    if text is None:
        return 60.0
    seconds = positive_seconds(text)
    if seconds is None:
        raise IndexError_(
            f"pip's time-out setting {text!r} is not a positive number of seconds; "
            "fix timeout in pip's configuration or PIP_DEFAULT_TIMEOUT"
        )
    return seconds


def _pip(*args: str) -> str:
    import subprocess
    import sys

    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True,
                              text=True, errors="replace", env=env, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise IndexError_(f"cannot ask pip for its configuration: {e}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit code {done.returncode}"
        raise IndexError_(
            f"cannot read pip's configuration (pip {' '.join(args)}: {why}); "
            "relock takes the package index from it: fix it, or pass --no-index"
        )
    return done.stdout


def _pip_config_values(listing: str) -> dict[str, str]:
    import ast

    out: dict[str, str] = {}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        out[key.strip()] = str(value)
    return out


def _pip_default_index(help_text: str) -> str:
    import re

    text = " ".join(help_text.split())
    m = re.search(r"--index-url <url> .*?\(default (\S+?)\)", text)
    if not m:
        raise IndexError_("pip does not say its default index; set index-url in pip's "
                          "configuration (pip config set global.index-url URL)")
    return m.group(1)


def default_cache_dir() -> Path:
    """Where index answers are cached (``$XDG_CACHE_HOME/relock/index``)."""
    return cache_home() / "index"


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


class PackageIndex(Protocol):
    """What relock asks of the Python package index (``Index``; a fake in a test)."""

    @property
    def config(self) -> IndexConfig:
        """The index URLs asked, in order."""
        ...

    @property
    def cache_hits(self) -> int:
        """Answers given from the cache so far."""
        ...

    @property
    def requests_made(self) -> int:
        """Pages asked for so far."""
        ...

    def hashes_many(
        self,
        wanted: Iterable[tuple[str, str]],
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[tuple[str, str], tuple[str, ...]]:
        """``sha256:...`` of every file of each (name, version) wanted."""
        ...

    def links(self, name: str) -> list[IndexLink]:
        """Every file of project ``name`` on the configured indexes, with its URL."""
        ...

    def open(self, url: str) -> tuple[BinaryIO, int | None]:
        """A stream of the file at ``url`` (from ``links``) and its length if known."""
        ...


class Index:
    """A client for the configured indexes, with an on-disk cache (a ``PackageIndex``)."""

    def __init__(self, config: IndexConfig, cache_dir: Path | None = None,
                 workers: int = 8) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.workers = workers
        self.requests_made = 0
        self.cache_hits = 0
        self._local = threading.local()
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        from relock.upstream import http

        def setup(session: requests.Session) -> None:
            if self.config.cert:
                session.verify = self.config.cert

        return http.thread_session(self._local, setup)

    def _project_files(self, index: str, name: str) -> list[tuple[str, str]]:
        """(filename, sha256) of every file of project ``name`` on ``index``."""
        url = index.rstrip("/") + "/" + name + "/"
        with self._lock:
            self.requests_made += 1
        if url.startswith("file://"):
            return self._local_files(index, name)
        body, ctype, _ = self._fetch(url, index, name)
        from relock.upstream.http import redact

        where = f"package index {redact(index)}"
        if "json" in ctype:
            return _parse_json(body, f"{where} for {name}")
        return _parse_html(body.decode("utf-8", "replace"), f"{where} for {name}")

    def _local_files(self, index: str, name: str) -> list[tuple[str, str]]:
        # ``name`` is a checked PEP 503 name, so the page is inside the folder.
        folder = Path(urllib.parse.unquote(urllib.parse.urlparse(index).path))
        page = folder / name / "index.html"
        if not page.is_file():
            return []
        try:
            text = page.read_text("utf-8", "replace")
        except OSError as e:
            raise IndexError_(f"package index {index}: cannot read {page}: "
                              f"{e.strerror or e}") from None
        return _parse_html(text, f"package index {index} for {name}")

    def _fetch(self, url: str, index: str, name: str) -> tuple[bytes, str, str]:
        """The body, Content-Type and final URL of ``url``, each try within the time-out.

        A 404 is ``(b"", "", url)``: the project is not on that index. The
        time-out bounds the whole answer, headers included; busy answers are
        retried (``relock.upstream.http``).
        """
        from relock.upstream import http

        shown = http.redact(index)
        timeout = self.config.timeout
        host = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
        trusted = host in self.config.trusted_hosts or host.split(":")[0] in \
            self.config.trusted_hosts
        try:
            resp = http.request(self._session(), "GET", url, limits=http.Limits.whole(timeout),
                                stream=True, headers={"Accept": _ACCEPT}, timeout=timeout,
                                verify=False if trusted else None)  # None: the session's own
            try:
                if resp.status_code == 404:
                    return b"", "", url
                if resp.status_code >= 400:
                    raise IndexError_(f"package index {shown} answered HTTP "
                                      f"{resp.status_code} for {name}")
                body = http.read_body(resp, MAX_PAGE)
                if len(body) > MAX_PAGE:
                    raise IndexError_(f"package index {shown} sent more than {MAX_PAGE} "
                                      f"bytes for {name}; not a project page")
                return body, resp.headers.get("Content-Type", ""), str(resp.url)
            finally:
                http.release(resp)
        except http.Unanswered as e:
            if e.timed_out and not e.answered:
                raise IndexError_(f"package index {shown} did not answer for {name} "
                                  f"within {timeout:g} s (timed out)") from None
            if e.expired:
                raise IndexError_(f"package index {shown} did not send its page for {name} "
                                  f"within {timeout:g} s (timed out)") from None
            if e.answered:
                raise IndexError_(f"package index {shown} broke off its answer for "
                                  f"{name}: {http.scrub(e.reason, self.config.urls)}") from None
            raise IndexError_(f"package index {shown} is unreachable: "
                              f"{http.scrub(e.reason, self.config.urls)}") from None

    def hashes(self, name: str, version: str) -> tuple[str, ...]:
        """``sha256:...`` of every file of ``name==version`` on the configured indexes."""
        name = _checked_name(str(canonicalize_name(name)))
        wrong = problem("pep440-version", version)
        if wrong:
            raise IndexError_(f"a distribution in the image: {show(version)} {wrong}; "
                              "not asking the package index about it")
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
            from relock.upstream.http import redact

            where = ", ".join(redact(u) for u in self.config.urls)
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
        name = _checked_name(str(canonicalize_name(name)))
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
            body, ctype, final = self._fetch(url, index, name)
            if not ctype and not body:
                continue  # 404: not on this index
            if "json" in ctype:
                from relock.upstream.http import redact

                where = f"package index {redact(index)} for {name}"
                out += _json_links(_load_json(body, where), final)
            else:
                out += _html_links(body.decode("utf-8", "replace"), final)
        return out

    def open(self, url: str) -> tuple[BinaryIO, int | None]:
        """A stream of the file at ``url`` (from ``links``) and its length if known."""
        if url.startswith("file://"):
            path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
            try:
                return path.open("rb"), path.stat().st_size
            except OSError as e:
                raise IndexError_(f"{path}: cannot read: {e.strerror}") from None
        from relock.upstream import http

        # A wheel may be big: its headers have a deadline, its body a minimum pace.
        try:
            resp = http.request(self._session(), "GET", url, limits=http.Limits.from_env(),
                                stream=True, timeout=self.config.timeout)
        except http.Unanswered as e:
            raise IndexError_(f"cannot download {e}") from None
        if resp.status_code >= 400:
            http.release(resp)
            raise IndexError_(f"cannot download {http.redact(url)}: HTTP {resp.status_code}")
        watch = resp.relock_watch
        assert watch is not None  # a streamed, watched answer
        length = resp.headers.get("Content-Length")
        resp.raw.decode_content = True
        stream = cast(BinaryIO, http.WatchedStream(resp.raw, watch))
        return stream, int(length) if length and length.isdigit() else None

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
        if isinstance(data, list) and data and all(
                isinstance(h, str) and not problem("sha256-digest", h) for h in data):
            return tuple(data)
        return None  # missing or tampered with: ask the index again

    def _cache_put(self, name: str, version: str, hashes: Sequence[str]) -> None:
        path = self._cache_path(name, version)
        if path is None:
            return
        write_cache(path, json.dumps(list(hashes)))


def _checked_name(name: str) -> str:
    """``name`` if it is a PEP 503 name, which alone may go into a URL or a path.

    An image can hold a dist-info that calls itself ``%2e%2e/...``; as a
    file:// index's folder name that would read outside the index.
    """
    wrong = problem("pep503-name", name)
    if wrong:
        raise IndexError_(f"a distribution in the image: {show(name)} {wrong}; "
                          "not asking the package index about it")
    return name


def _load_json(body: bytes, where: str) -> object:
    try:
        return bounds.load_json(body)
    except ValueError:
        raise IndexError_(f"{where}: the answer is not valid JSON") from None


def _parse_json(body: bytes, where: str) -> list[tuple[str, str]]:
    """(filename, sha256) of a PEP 691 project page; a malformed page is one line."""
    data = _load_json(body, where)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise IndexError_(f"{where}: the answer is not a PEP 691 project page "
                          "(no 'files' list)")
    out = []
    for f in files:
        if not isinstance(f, dict) or not isinstance(f.get("filename"), str):
            raise IndexError_(f"{where}: a file entry has no 'filename'")
        if f.get("yanked"):
            continue
        hashes = f.get("hashes", {})
        digest = hashes.get("sha256", "") if isinstance(hashes, dict) else ""
        out.append((f["filename"], _digest(digest, where)))
    return out


def _parse_html(text: str, where: str = "package index") -> list[tuple[str, str]]:
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
        out.append((filename, _digest(digest, where)))
    return out


def _digest(value: object, where: str) -> str:
    """A sha256 hex digest from an index (lower-cased), '' if none; refuse anything else."""
    if not value:
        return ""
    text = str(value).lower()
    if problem("sha256-hex", text):
        raise IndexError_(f"{where}: {show(str(value))} is not a sha256 digest")
    return text


@dataclass(frozen=True)
class IndexLink:
    """One file on an index page."""

    filename: str
    url: str
    sha256: str
    requires_python: str = ""


def _json_links(data: object, page: str) -> list[IndexLink]:
    files = data.get("files", []) if isinstance(data, dict) else []
    out = []
    for f in files if isinstance(files, list) else []:
        if not isinstance(f, dict) or f.get("yanked") or not isinstance(f.get("filename"), str):
            continue
        hashes = f.get("hashes")
        sha256 = hashes.get("sha256", "") if isinstance(hashes, dict) else ""
        out.append(IndexLink(f["filename"], urllib.parse.urljoin(page, str(f.get("url", ""))),
                             str(sha256), str(f.get("requires-python") or "")))
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
