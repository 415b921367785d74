"""Deadlines for relock's HTTP requests (index, APT archive, registry).

requests' ``timeout`` bounds each read from the socket, not a request: a
server that sends one byte a second holds the client for ever. Here every
request is watched by one daemon thread, which shuts the request's socket
down when it is past its limits, so the blocked read returns at once:

- the status line and headers must have arrived within ``headers`` seconds
  of the start (connecting included);
- the body must keep coming: at least ``MIN_PROGRESS`` bytes in every
  ``stall`` seconds. A big file on a slow line goes on; a drip is cut off.
  A small page is not slowed by the rule: it has ended before a window does;
- with ``total``, the whole answer must be in within that many seconds.

``RELOCK_HTTP_TIMEOUT`` (60 s by default) gives ``headers`` and ``stall``
for every request but an index page, which pip's own time-out bounds whole.
Sessions must come from ``session()``: its connection pools tell the watch
which socket a request uses.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from relock.errors import RelockError

if TYPE_CHECKING:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3._base_connection import BaseHTTPConnection  # the type _get_conn returns
    from urllib3.poolmanager import PoolManager
    from urllib3.response import BaseHTTPResponse

DEFAULT_TIMEOUT = 60.0
# The body's minimum pace: this many bytes in every ``stall`` seconds.
MIN_PROGRESS = 16 * 1024
_TICK = 0.05  # how often the watch looks at its requests


class HttpTimeoutError(RelockError):
    """An HTTP request ran past its deadline and was cut off."""


@dataclass(frozen=True)
class Limits:
    """How long one request may take: see the module docstring."""

    headers: float = DEFAULT_TIMEOUT
    stall: float = DEFAULT_TIMEOUT
    total: float | None = None

    @classmethod
    def from_env(cls) -> Limits:
        """``RELOCK_HTTP_TIMEOUT`` seconds for headers and for each stall window."""
        import math

        text = os.environ.get("RELOCK_HTTP_TIMEOUT", "").strip()
        if not text:
            return cls()
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise RelockError(f"RELOCK_HTTP_TIMEOUT={text!r} is not a positive number "
                              "of seconds")
        return cls(headers=seconds, stall=seconds)

    @classmethod
    def whole(cls, seconds: float) -> Limits:
        """The whole answer, headers and body, within ``seconds``."""
        return cls(headers=seconds, stall=seconds, total=seconds)


def shown(url: str) -> str:
    """``url`` without user name or password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


class Watch:
    """One watched request: the connection it uses, its progress, and why it was cut."""

    def __init__(self, url: str, limits: Limits) -> None:
        self.url = url
        self.limits = limits
        self.started = time.monotonic()
        self.conn: BaseHTTPConnection | None = None  # the urllib3 connection the request uses
        # Its socket, noted when connected: http.client lets go of it when
        # the answer ends the connection, while the body is still read.
        self.sock: socket.socket | None = None
        self.response: BaseHTTPResponse | None = None  # the urllib3 response once headers are in
        self.expired = ""
        self._window = (self.started, 0)

    def answered(self, response: requests.Response) -> None:
        """The headers are in (``response`` is requests'): the body's pace is watched now."""
        raw = getattr(response, "raw", None)
        self._window = (time.monotonic(), _tell(raw))
        self.response = raw
        # Its connection is known: a later request of this thread is not this one's.
        if getattr(_current, "watch", None) is self:
            _current.watch = None

    def check(self) -> None:
        """Raise ``HttpTimeoutError`` if the request was cut off."""
        if self.expired:
            raise HttpTimeoutError(f"{shown(self.url)}: {self.expired} (timed out)")

    def _overdue(self, now: float) -> str:
        limits = self.limits
        if limits.total is not None and now - self.started > limits.total:
            return f"the answer was not complete within {limits.total:g} s"
        if self.response is None:
            if now - self.started > limits.headers:
                return f"no answer (status and headers) within {limits.headers:g} s"
            return ""
        since, count = self._window
        if now - since > limits.stall:
            got = _tell(self.response)
            if got - count < MIN_PROGRESS:
                return (f"the body came slower than {MIN_PROGRESS} bytes "
                        f"in {limits.stall:g} s")
            self._window = (now, got)
        return ""

    def _cut(self) -> None:
        sock = self.sock or getattr(self.conn, "sock", None)
        if isinstance(sock, socket.socket):
            # socket.socket's own shutdown, under a TLS wrapper too: the
            # blocked read in the other thread returns at once.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watcher:
    """The daemon thread that cuts off overdue requests."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="relock-http-deadlines",
                                                daemon=True)
                self._thread.start()
            self._lock.notify()

    def remove(self, watch: Watch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._watches:
                    self._lock.wait()
                watches = list(self._watches)
            now = time.monotonic()
            for watch in watches:
                if not watch.expired:
                    watch.expired = watch._overdue(now)
                if watch.expired:
                    watch._cut()  # again on later ticks: the socket may not exist yet
            time.sleep(_TICK)


_watcher = _Watcher()
_current = threading.local()


@contextlib.contextmanager
def watched(url: str, limits: Limits) -> Iterator[Watch]:
    """``with watched(url, limits) as w:`` make the request and read it inside.

    On leaving, an expired request raises ``HttpTimeoutError`` whatever the
    cut made the read raise (or a clean-looking end of the body).
    """
    watch = start(url, limits)
    try:
        yield watch
    except Exception:
        close(watch)
        watch.check()
        raise
    finally:
        close(watch)
    watch.check()


def start(url: str, limits: Limits) -> Watch:
    """Watch a request that outlives a ``with`` block (a stream); ``close`` it after."""
    watch = Watch(url, limits)
    _current.watch = watch
    _watcher.add(watch)
    return watch


def close(watch: Watch) -> None:
    """Stop watching: the connection may be reused by another request now."""
    _watcher.remove(watch)
    if getattr(_current, "watch", None) is watch:
        _current.watch = None
    watch.conn = None
    watch.sock = None


class WatchedStream:
    """A file-like ``read`` over a streamed urllib3 response, under its watch."""

    def __init__(self, raw: BaseHTTPResponse, watch: Watch) -> None:
        self._raw = raw
        self._watch = watch

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._raw.read(size if size >= 0 else None)
        except Exception:
            self._watch.check()
            raise
        if not data:
            self._watch.check()
        return data

    def close(self) -> None:
        close(self._watch)
        self._raw.close()

    def __enter__(self) -> WatchedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_chunks(response: requests.Response, watch: Watch, size: int) -> Iterator[bytes]:
    """``response.iter_content(size)``; a cut-off body raises ``HttpTimeoutError``."""
    try:
        yield from response.iter_content(size)
    except Exception:
        watch.check()
        raise
    watch.check()


def _tell(raw: BaseHTTPResponse | None) -> int:
    if raw is None:
        return 0
    try:
        return int(raw.tell())
    except (AttributeError, TypeError, ValueError, OSError):
        return 0


def session() -> requests.Session:
    """A ``requests.Session`` whose requests the watch can cut off."""
    import requests

    s = requests.Session()
    adapter = _adapter_class()()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


_ADAPTER: type[HTTPAdapter] | None = None
_C = TypeVar("_C", bound="BaseHTTPConnection")


def _adapter_class() -> type[HTTPAdapter]:
    """The requests adapter class whose pools report each connection they hand out."""
    global _ADAPTER
    if _ADAPTER is not None:
        return _ADAPTER
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def note(conn: _C) -> _C:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.conn = conn
            sock = getattr(conn, "sock", None)
            if isinstance(sock, socket.socket):
                watch.sock = sock
        return conn

    class _Conn(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            note(self)

    class _TLSConn(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            note(self)

    class _Pool(HTTPConnectionPool):
        ConnectionCls = _Conn

        def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
            return note(super()._get_conn(timeout))

    class _TLSPool(HTTPSConnectionPool):
        ConnectionCls = _TLSConn

        def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
            return note(super()._get_conn(timeout))

    pools: dict[str, type[HTTPConnectionPool]] = {"http": _Pool, "https": _TLSPool}

    class _Adapter(HTTPAdapter):
        def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                             **pool_kwargs: Any) -> None:  # Any: urllib3 PoolManager's options
            super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str,
                              **kwargs: Any) -> PoolManager:  # Any: urllib3 ProxyManager's options
            manager: PoolManager = super().proxy_manager_for(proxy, **kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

    _ADAPTER = _Adapter
    return _ADAPTER
