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

Every request of the index, the archive and the registry goes through
``request``, under one retry policy (``Retry``): an answer of 429, 502, 503
or 504 is asked again, up to ``TRIES`` tries in all, after what its
``Retry-After`` says (seconds or an HTTP date), else after ``BACKOFF``; no
wait is longer than ``MAX_WAIT`` seconds. A connection that fails is not
retried (the archive remembers its host as down instead). The last answer
is the caller's, whatever its status: each turns it into its own one-line
error. URLs in messages go through ``redact``: no ``user:password@``, no
token in the query.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from relock import bounds
from relock.errors import RelockError, one_line

if TYPE_CHECKING:
    import socket

    import requests
    from requests.adapters import HTTPAdapter
    from urllib3._base_connection import BaseHTTPConnection  # the type _get_conn returns
    from urllib3.poolmanager import PoolManager
    from urllib3.response import BaseHTTPResponse

    class Answer(requests.Response):
        """An answer of ``request``; a streamed one carries its deadline's watch."""

        relock_watch: Watch | None

DEFAULT_TIMEOUT = 60.0
# The body's minimum pace: this many bytes in every ``stall`` seconds.
MIN_PROGRESS = 16 * 1024
_TICK = 0.05  # how often the watch looks at its requests

# The retry policy (module docstring): statuses asked again, tries in all,
# waits without a Retry-After (the last one repeats), the longest wait.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
TRIES = 3
BACKOFF = (1.0, 2.0)
MAX_WAIT = 30.0


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
        text = os.environ.get("RELOCK_HTTP_TIMEOUT", "").strip()
        if not text:
            return cls()
        seconds = positive_seconds(text)
        if seconds is None:
            raise RelockError(f"RELOCK_HTTP_TIMEOUT={text!r} is not a positive number "
                              "of seconds")
        return cls(headers=seconds, stall=seconds)

    @classmethod
    def whole(cls, seconds: float) -> Limits:
        """The whole answer, headers and body, within ``seconds``."""
        return cls(headers=seconds, stall=seconds, total=seconds)


# Query parameters whose values are secrets (signed URLs, upload states, tokens).
_SECRET_QUERY = re.compile(r"token|sig|secret|passw|credential|auth|key|_state", re.I)
# ``user:password@`` (or ``user@``) in a URL inside free text.
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


def redact(url: str) -> str:
    """``url`` without user name, password or query tokens, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    if parts.query and _SECRET_QUERY.search(parts.query):
        query = [(k, "***" if _SECRET_QUERY.search(k) else v)
                 for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
        parts = parts._replace(query=urllib.parse.urlencode(query, safe="*:/"))
    return urllib.parse.urlunsplit(parts)


def scrub(text: str, urls: Iterable[str] = ()) -> str:
    """``text`` (a message from below) without credentials: of any URL in it, and of ``urls``."""
    text = _USERINFO.sub(r"\1", text)
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        for secret in (parts.password, parts.username):
            if secret:
                text = text.replace(secret, "***")
    return text


def positive_seconds(text: str) -> float | None:
    """``text`` as a positive, finite number of seconds (a time-out); None if it is not one."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


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
            raise HttpTimeoutError(f"{redact(self.url)}: {self.expired} (timed out)")

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
        import socket  # here: importing this module costs no sockets

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


def _tell(raw: BaseHTTPResponse | None) -> int:
    if raw is None:
        return 0
    try:
        return int(raw.tell())
    except (AttributeError, TypeError, ValueError, OSError):
        return 0


# -- the one request loop ------------------------------------------------------

class Unanswered(RelockError):
    """No whole answer: refused, unresolvable, broken off, or cut off at its deadline.

    Each client turns it into its own error; the fields say what happened.
    """

    def __init__(self, url: str, reason: str, *, expired: str = "", connection: bool = False,
                 timed_out: bool = False, answered: bool = False) -> None:
        self.url = redact(url)
        self.reason = reason  # short, and without credentials
        self.expired = expired  # the watch's words when the deadline cut it off
        self.connection = connection  # connecting failed (refused, unresolvable, TLS)
        self.timed_out = timed_out  # requests' own socket time-out
        self.answered = answered  # the headers were in: the body broke off
        super().__init__(f"{self.url}: {f'{expired} (timed out)' if expired else reason}")


@dataclass(frozen=True)
class Retry:
    """How busy answers are asked again (module docstring)."""

    tries: int = TRIES
    backoff: tuple[float, ...] = BACKOFF
    max_wait: float | None = None  # None: MAX_WAIT

    def wait(self, header: str | None, attempt: int) -> float:
        """Seconds to wait after try ``attempt`` (from 1) was answered with ``header``."""
        steps = self.backoff or (0.0,)
        cap = MAX_WAIT if self.max_wait is None else self.max_wait
        return retry_after(header, steps[min(attempt, len(steps)) - 1], cap)


ONCE = Retry(tries=1)


def retry_after(header: str | None, default: float, cap: float | None = None) -> float:
    """Seconds a ``Retry-After`` asks for (seconds or an HTTP date), else ``default``; at most
    ``cap`` (None: ``MAX_WAIT``)."""
    seconds = default
    text = (header or "").strip()
    if text:
        try:
            seconds = float(text)
        except ValueError:
            import email.utils

            try:
                seconds = email.utils.parsedate_to_datetime(text).timestamp() - time.time()
            except (TypeError, ValueError, IndexError):
                seconds = default
        if not math.isfinite(seconds):
            seconds = default
    return max(0.0, min(seconds, MAX_WAIT if cap is None else cap))


_MARKERS = (("Failed to resolve", "failed to resolve"), ("Name or service", "name not resolved"),
            ("Connection refused", "connection refused"), ("timed out", "timed out"))


def reason(e: BaseException) -> str:
    """What went wrong, short: urllib3 wraps the cause in layers of reprs."""
    import requests

    if isinstance(e, requests.TooManyRedirects):
        return f"more than {bounds.REDIRECTS} redirects (relock's limit, see docs/limits.md)"
    text = str(e)
    for marker, said in _MARKERS:
        if marker in text:
            return said
    return scrub(one_line(e))


def request(session: requests.Session, method: str, url: str, *, limits: Limits | None,
            retry: Retry = Retry(), stream: bool = False,
            on_try: Callable[[], None] | None = None,
            on_wait: Callable[[float], None] | None = None,
            **kwargs: Any) -> Answer:  # Any: requests' own keyword arguments, passed on
    """``method url`` under ``limits`` (None: unwatched) and ``retry``; the last answer.

    Without ``stream`` the body is read here, under the deadline; with it the
    answer carries its watch: read it with ``read_body`` or ``iter_chunks``
    and let it go with ``release``. ``on_try`` is called before each try (it
    may raise), ``on_wait`` with each wait. No answer raises ``Unanswered``.
    """
    for attempt in range(1, max(1, retry.tries) + 1):
        if on_try is not None:
            on_try()
        resp = _once(session, method, url, limits, stream, kwargs)
        if resp.status_code not in RETRY_STATUSES or attempt >= retry.tries:
            return resp
        wait = retry.wait(resp.headers.get("Retry-After"), attempt)
        release(resp)
        if on_wait is not None:
            on_wait(wait)
        time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _once(session: requests.Session, method: str, url: str, limits: Limits | None,
          stream: bool, kwargs: dict[str, Any]) -> Answer:  # Any: requests' arguments
    import requests

    watch = start(url, limits) if limits is not None else None
    answered = False
    try:
        resp = cast("Answer", session.request(method, url, stream=True, **kwargs))
        answered = True
        if watch is not None:
            watch.answered(resp)
        resp.relock_watch = watch
        if not stream:
            # Read now, under the deadline, and bounded: an answer read whole is small.
            body = read_body(resp, bounds.ANSWER)
            if watch is not None:
                watch.check()
            if len(body) > bounds.ANSWER:
                resp.close()
                raise Unanswered(url, f"the answer is over {bounds.size_text(bounds.ANSWER)} "
                                 "(relock's limit, see docs/limits.md)", answered=True)
            resp._content = body
    except (requests.RequestException, HttpTimeoutError) as e:
        if watch is not None:
            close(watch)
        raise Unanswered(url, reason(e), expired=watch.expired if watch else "",
                         connection=isinstance(e, requests.ConnectionError),
                         timed_out=isinstance(e, requests.Timeout),
                         answered=answered) from None
    except BaseException:
        if watch is not None:
            close(watch)
        raise
    if watch is not None and not stream:
        close(watch)
        watch = None
    resp.relock_watch = watch
    return resp


def release(resp: requests.Response) -> None:
    """Close an answer of ``request`` and stop watching it."""
    watch = getattr(resp, "relock_watch", None)
    if watch is not None:
        close(watch)
    resp.close()


def read_body(resp: Answer, limit: int | None = None) -> bytes:
    """The body of a streamed answer, within its deadline; past ``limit`` bytes it stops
    (the caller sees more than ``limit``)."""
    chunks: list[bytes] = []
    size = 0
    raw = resp.raw
    # read1 returns what has arrived, not waiting for a full 64 KiB.
    read = getattr(raw, "read1", raw.read)
    with _broken_off(resp):
        while limit is None or size <= limit:
            chunk = read(65536, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            chunks.append(chunk)
    return b"".join(chunks)


def iter_chunks(resp: Answer, size: int) -> Iterator[bytes]:
    """The body of a streamed answer in chunks of ``size``, within its deadline."""
    with _broken_off(resp):
        yield from resp.iter_content(size)


@contextlib.contextmanager
def _broken_off(resp: Answer) -> Iterator[None]:
    """Reading a body: a cut or broken read, or a cut that looks like the end, raises
    ``Unanswered``."""
    import requests
    from urllib3.exceptions import HTTPError as Urllib3Error

    watch = resp.relock_watch
    url = str(resp.url or "")
    try:
        yield
    except (requests.RequestException, Urllib3Error, OSError, ValueError) as e:
        expired = watch.expired if watch is not None else ""
        raise Unanswered(url, reason(e), expired=expired, answered=True) from None
    if watch is not None and watch.expired:
        raise Unanswered(url, "", expired=watch.expired, answered=True)


def thread_session(local: threading.local,
                   setup: Callable[[requests.Session], None] | None = None) -> requests.Session:
    """This thread's ``session()`` kept in ``local`` (a session is not thread-safe);
    ``setup`` readies a new one (its CA bundle, proxies)."""
    found: requests.Session | None = getattr(local, "session", None)
    if found is None:
        found = session()
        if setup is not None:
            setup(found)
        local.session = found
    return found


def session() -> requests.Session:
    """A ``requests.Session`` whose requests the watch can cut off."""
    import requests

    s = requests.Session()
    s.max_redirects = bounds.REDIRECTS
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
    import socket

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
