"""A loopback OCI registry in Python, small but speaking HTTP as a registry does.

Blobs are uploaded (POST then PUT ?digest=) and served by digest; manifests
are put and served by tag or digest. With ``referrers_api`` it answers
``GET /v2/<name>/referrers/<digest>`` from the ``subject`` of the manifests it
holds, as an OCI 1.1 registry does; without it that request is a 404, as
docker-registry 2.8's. ``blobs`` and ``manifests`` may be changed by a test
to make the registry lie; ``routes`` override any path with a handler.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Registry:
    host: str = ""
    referrers_api: bool = False
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    routes: dict[str, Handler] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def put_manifest(self, repo: str, doc: dict[str, object], *tags: str) -> str:
        data = json.dumps(doc).encode()
        for ref in (digest(data), *tags):
            self.manifests[(repo, ref)] = (str(doc["mediaType"]), data)
        return digest(data)

    def referrers(self, repo: str, subject: str) -> bytes:
        seen, entries = set(), []
        for (r, ref), (media_type, data) in sorted(self.manifests.items()):
            doc = json.loads(data)
            if r != repo or not ref.startswith("sha256:") or ref in seen:
                continue
            if (doc.get("subject") or {}).get("digest") == subject:
                seen.add(ref)
                entries.append({"mediaType": media_type, "digest": ref, "size": len(data),
                                "artifactType": doc.get("artifactType", "")})
        return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": entries}).encode()


def send(h: http.server.BaseHTTPRequestHandler, code: int, body: bytes = b"",
         **headers: str) -> None:
    h.send_response(code)
    for k, v in headers.items():
        h.send_header(k.replace("_", "-"), v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


_MANIFEST = re.compile(r"/v2/(.+)/manifests/([^/]+)")
_BLOB = re.compile(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})")
_UPLOAD = re.compile(r"/v2/(.+)/blobs/uploads/([0-9a-z-]*)")
_REFERRERS = re.compile(r"/v2/(.+)/referrers/(sha256:[0-9a-f]{64})")


@contextlib.contextmanager
def serve(referrers_api: bool = False) -> Iterator[Registry]:
    reg = Registry(referrers_api=referrers_api)
    uploads: dict[str, bytes] = {}

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self) -> None:
            path, _, query = self.path.partition("?")
            reg.log.append(f"{self.command} {path}")
            if path in reg.routes:
                reg.routes[path](self)
                return
            body = self._body() if self.command in ("PUT", "POST", "PATCH") else b""
            if path == "/v2/":
                send(self, 200, b"{}")
            elif m := _REFERRERS.fullmatch(path):
                if not reg.referrers_api:
                    send(self, 404, b"404 page not found\n")
                else:
                    send(self, 200, reg.referrers(m[1], m[2]), Content_Type=OCI_INDEX)
            elif m := _UPLOAD.fullmatch(path):
                if self.command == "POST":
                    uploads[str(len(uploads))] = b""
                    send(self, 202, Location=f"/v2/{m[1]}/blobs/uploads/{len(uploads) - 1}")
                else:
                    want = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                    data = uploads.pop(m[2], b"") + body
                    got = digest(data)
                    if want.get("digest", "").replace("%3A", ":") != got:
                        send(self, 400)
                        return
                    reg.blobs[got] = data
                    send(self, 201, Docker_Content_Digest=got)
            elif m := _BLOB.fullmatch(path):
                if m[2] in reg.blobs:
                    send(self, 200, reg.blobs[m[2]])
                else:
                    send(self, 404)
            elif m := _MANIFEST.fullmatch(path):
                if self.command == "PUT":
                    media_type = self.headers.get("Content-Type", "")
                    for ref in {m[2], digest(body)}:
                        reg.manifests[(m[1], ref)] = (media_type, body)
                    extra = {}
                    subject = (json.loads(body).get("subject") or {}).get("digest")
                    if reg.referrers_api and subject:
                        extra["OCI_Subject"] = subject
                    send(self, 201, Docker_Content_Digest=digest(body), **extra)
                elif (m[1], m[2]) in reg.manifests:
                    media_type, data = reg.manifests[(m[1], m[2])]
                    send(self, 200, data, Content_Type=media_type,
                         Docker_Content_Digest=digest(data))
                else:
                    send(self, 404)
            else:
                send(self, 404)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _route

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    reg.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield reg
    finally:
        server.shutdown()
        server.server_close()


def put_image(reg: Registry, repo: str, layers: list[dict[str, bytes | str | None]], *tags: str,
              arch: str = "amd64") -> str:
    """An OCI image of these layers (bottom first) in ``reg``; its manifest's digest."""
    from tests.fakes import layer_tar

    blobs, diff_ids = [], []
    for entries in layers:
        data, diff_id = layer_tar(entries)
        reg.blobs[digest(data)] = data
        blobs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": digest(data), "size": len(data)})
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": arch, "os": "linux", "created": "2026-11-01T00:00:00Z",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    reg.blobs[digest(config)] = config
    return reg.put_manifest(repo, {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config), "size": len(config)},
        "layers": blobs}, *tags)


OS_RELEASE = b'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'


def status(*packages: tuple[str, str]) -> bytes:
    return b"\n".join(f"Package: {n}\nStatus: install ok installed\nVersion: {v}\n"
                      f"Architecture: amd64\n".encode() for n, v in packages)


def base_and_app(reg: Registry, hello: str = "2.10-5") -> tuple[str, str]:
    """``library/debian:trixie-slim`` and ``team/app:1`` built on it; their digests."""
    base = {"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": status(("base-files", "13.8"))}
    app = {"var/lib/dpkg/status": status(("base-files", "13.8"), ("hello", hello))}
    return (put_image(reg, "library/debian", [base], "trixie-slim"),
            put_image(reg, "team/app", [base, app], "1"))
