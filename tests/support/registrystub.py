"""A small OCI registry on loopback that keeps every byte sent to it, for hostile tests.

It speaks enough of the Registry HTTP API v2 for relock's pushes and pulls
(blob HEAD/GET, monolithic and chunked uploads, manifests, tag lists) and
records every request body, so that a test can show that something (a canary
standing for a secret) never reached it. It checks nothing itself: an upload
is kept whatever its digest, as a hostile or careless registry would.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Recorded:
    """What the stub holds and heard."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)  # every request body, in order
    requests: list[str] = field(default_factory=list)
    # Served slowly: (bytes per chunk, seconds between chunks) for GET of a blob.
    drip: tuple[int, float] | None = None

    def received(self) -> bytes:
        """Every byte any request sent, joined."""
        return b"".join(self.bodies)


def _handler(state: Recorded) -> type[http.server.BaseHTTPRequestHandler]:
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(n) if n else b""
            if data:
                state.bodies.append(data)
            return data

        def _send(self, code: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def _route(self) -> None:
            state.requests.append(f"{self.command} {self.path}")
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            body = self._body() if self.command in ("POST", "PUT", "PATCH") else b""
            if url.path == "/v2/":
                return self._send(200, b"{}")
            m = re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", url.path)
            if m:
                data = state.blobs.get(m.group(2))
                if data is None:
                    return self._send(404)
                if self.command == "GET" and state.drip is not None:
                    return self._drip(data)
                return self._send(200, data, Docker_Content_Digest=m.group(2))
            m = re.fullmatch(r"/v2/(.+)/blobs/uploads/", url.path)
            if m and self.command == "POST":
                ident = uuid.uuid4().hex
                state.uploads[ident] = bytearray()
                return self._send(202, Location=f"/v2/{m.group(1)}/blobs/uploads/{ident}")
            m = re.fullmatch(r"/v2/(.+)/blobs/uploads/([0-9a-f]+)", url.path)
            if m and m.group(2) in state.uploads:
                state.uploads[m.group(2)] += body
                if self.command == "PATCH":
                    return self._send(202, Location=url.path)
                digest = query.get("digest", "")
                state.blobs[digest] = bytes(state.uploads.pop(m.group(2)))
                return self._send(201, Docker_Content_Digest=digest)
            m = re.fullmatch(r"/v2/(.+)/manifests/(.+)", url.path)
            if m:
                key = (m.group(1), m.group(2))
                if self.command == "PUT":
                    ctype = self.headers.get("Content-Type", "")
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    state.manifests[key] = (ctype, body)
                    state.manifests[(m.group(1), digest)] = (ctype, body)
                    return self._send(201, Docker_Content_Digest=digest)
                found = state.manifests.get(key)
                if found is None:
                    return self._send(404)
                return self._send(200, found[1], Content_Type=found[0],
                                  Docker_Content_Digest="sha256:"
                                  + hashlib.sha256(found[1]).hexdigest())
            m = re.fullmatch(r"/v2/(.+)/tags/list", url.path)
            if m:
                tags = sorted({t for r, t in state.manifests if r == m.group(1)
                               and not t.startswith("sha256:")})
                return self._send(200, json.dumps({"name": m.group(1), "tags": tags}).encode())
            return self._send(404)

        def _drip(self, data: bytes) -> None:
            import time

            size, pause = state.drip or (len(data), 0.0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for start in range(0, len(data), size):
                    self.wfile.write(data[start:start + size])
                    self.wfile.flush()
                    time.sleep(pause)
            except OSError:
                pass

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _route

        def log_message(self, format: str, *args: object) -> None:
            pass

    return H


@contextmanager
def registry() -> Iterator[tuple[str, Recorded]]:
    """A registry stub on loopback: (host:port, what it holds and heard)."""
    state = Recorded()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
