"""A loopback HTTP server whose answers a test scripts, path by path, for hostile cases.

``routes`` maps a path (without its query) to a handler that writes the whole
answer; a path not there is a 404. ``endless`` and ``answer`` are the usual
handlers: a body that never ends, and one given whole. Every path asked is
kept in ``asked``.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class Server:
    url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)


def answer(body: bytes, status: int = 200, **headers: str) -> Handler:
    """A handler that answers ``status`` with ``body`` and ``headers`` (``_`` for ``-``)."""
    def send(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
    return send


def endless(chunk: bytes = b" " * 65536, seconds: float = 20.0, **headers: str) -> Handler:
    """A handler whose body goes on (``chunk`` after ``chunk``) until the client stops
    reading or ``seconds`` pass; no Content-Length."""
    def send(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.send_header("Connection", "close")
        h.end_headers()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                h.wfile.write(chunk)
        except OSError:
            pass
    return send


@contextlib.contextmanager
def serve() -> Iterator[Server]:
    """A scripted server on 127.0.0.1; ``Server.url`` is ``http://127.0.0.1:PORT``."""
    state = Server()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _route(self) -> None:
            path = self.path.partition("?")[0]
            state.asked.append(self.path)
            handler = state.routes.get(path)
            if handler is None:
                answer(b"", 404)(self)
            else:
                handler(self)

        do_GET = do_HEAD = do_POST = do_PUT = _route

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
