"""The registry seam: references, transport choice, token auth, digest checks.

A tiny loopback HTTP server stands in for a registry here only to make it
misbehave (wrong bytes, auth challenges); the real registry of the test bed
is used in tests/e2e/test_store_e2e.py.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from relock.errors import RegistryError
from relock.upstream import registry as reg

D = "sha256:" + "a" * 64


# References: tests/test_reference.py (one parser, relock.lock.reference).


def test_plain_http_only_for_loopback() -> None:
    assert reg.Registry("127.0.0.1:5000").base == "http://127.0.0.1:5000"
    assert reg.Registry("localhost:5001").base == "http://localhost:5001"
    assert reg.Registry("[::1]:5000").base == "http://[::1]:5000"
    assert reg.Registry("127.9.0.1").base == "http://127.9.0.1"
    assert reg.Registry("registry.example:5000").base == "https://registry.example:5000"
    assert reg.Registry("10.0.0.1:5000").base == "https://10.0.0.1:5000"
    assert reg.Registry("docker.io").base == "https://registry-1.docker.io"


Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@pytest.fixture
def fake() -> Iterator[tuple[str, dict[str, Handler], list[str]]]:
    """A loopback server: (host:port, handlers by path, request log)."""
    routes: dict[str, Handler] = {}
    log: list[str] = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.append(f"{self.command} {self.path} {self.headers.get('Authorization', '-')}")
            path = self.path.split("?")[0]
            if path in routes:
                routes[path](self)
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", routes, log
    finally:
        server.shutdown()
        server.server_close()


def answer(code: int, body: bytes = b"", **headers: str) -> Handler:
    def handle(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(code)
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
    return handle


def test_a_blob_with_other_bytes_is_refused(fake: Any) -> None:
    host, routes, _ = fake
    good = b"the real layer"
    digest = "sha256:" + hashlib.sha256(good).hexdigest()
    routes[f"/v2/x/blobs/{digest}"] = answer(200, b"a forged layer")
    stream = reg.Registry(host).blob("x", digest)
    with pytest.raises(RegistryError, match=rf"x@{digest}: content has digest sha256:\w+, not "
                                            rf"{digest}; refused"):
        stream.read()
    routes[f"/v2/x/blobs/{digest}"] = answer(200, good)
    from relock.upstream import http

    before = set(http._watcher._watches)
    assert reg.Registry(host).blob("x", digest).read() == good
    # Read to its end (or refused), a stream lets go of its answer and deadline
    # watch without a close(): a watch left behind would later cut the pooled
    # connection under another request.
    assert http._watcher._watches <= before


def test_a_manifest_with_other_bytes_is_refused(fake: Any) -> None:
    host, routes, _ = fake
    body = json.dumps({"schemaVersion": 2, "mediaType": reg.OCI_MANIFEST}).encode()
    routes[f"/v2/x/manifests/{D}"] = answer(200, body, Content_Type=reg.OCI_MANIFEST)
    with pytest.raises(RegistryError, match=rf"bytes have digest sha256:\w+, not {D}; refused"):
        reg.Registry(host).manifest("x", D)
    # by tag, the registry's Docker-Content-Digest must agree with the bytes
    routes["/v2/x/manifests/v1"] = answer(200, body, Content_Type=reg.OCI_MANIFEST,
                                          Docker_Content_Digest=D)
    with pytest.raises(RegistryError, match="refused"):
        reg.Registry(host).manifest("x", "v1")
    routes["/v2/x/manifests/v1"] = answer(200, body, Content_Type=reg.OCI_MANIFEST)
    got = reg.Registry(host).manifest("x", "v1")
    assert (got.media_type, got.data) == (reg.OCI_MANIFEST, body)


def test_bearer_token_auth(fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host, routes, log = fake
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no `docker login` of the user
    data = b"layer"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()

    def blob(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") == "Bearer T0K3N":
            answer(200, data)(h)
        else:
            challenge = (f'Bearer realm="http://{host}/token",service="fake",'
                         'scope="repository:org/x:pull"')
            answer(401, WWW_Authenticate=challenge)(h)

    routes[f"/v2/org/x/blobs/{digest}"] = blob
    routes["/token"] = answer(200, json.dumps({"token": "T0K3N"}).encode())
    client = reg.Registry(host)
    assert client.blob("org/x", digest).read() == data
    assert client.has_blob("org/x", digest)  # the token is kept: no second token request
    assert [line.split("?")[0] for line in log] == [
        f"GET /v2/org/x/blobs/{digest} -", "GET /token",
        f"GET /v2/org/x/blobs/{digest} Bearer T0K3N",
        f"HEAD /v2/org/x/blobs/{digest} Bearer T0K3N"]
    assert "scope=repository%3Aorg%2Fx%3Apull" in log[1]


def test_refused_token_is_one_line(fake: Any) -> None:
    host, routes, _ = fake
    routes[f"/v2/x/blobs/{D}"] = answer(
        401, WWW_Authenticate=f'Bearer realm="http://{host}/token",service="s"')
    routes["/token"] = answer(403)
    with pytest.raises(RegistryError, match=r"token service refused 'repository:x:pull' "
                                            r"\(HTTP 403\); check `docker login`"):
        reg.Registry(host).has_blob("x", D)


def test_unreachable_registry_is_one_line() -> None:
    client = reg.Registry("127.0.0.1:9", timeout=(2, 2))
    with pytest.raises(RegistryError, match=r"^127\.0\.0\.1:9: HEAD blob failed: "):
        client.has_blob("x", D)


def test_rate_limits_are_waited_out(fake: Any) -> None:
    host, routes, log = fake
    data = b"layer"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    answers = [answer(429, Retry_After="0"), answer(503, Retry_After="0"), answer(200, data)]
    routes[f"/v2/x/blobs/{digest}"] = lambda h: answers.pop(0)(h)
    assert reg.Registry(host, backoff=(0.0, 0.0)).blob("x", digest).read() == data
    assert len(log) == 3
    answers[:] = [answer(429, Retry_After="0")] * 3
    with pytest.raises(RegistryError, match=r"GET blob sha256:\w+ answered HTTP 429$"):
        reg.Registry(host, backoff=(0.0, 0.0)).blob("x", digest)


def test_an_expired_token_is_renewed(fake: Any, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    host, routes, _ = fake
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    issued = iter(["T1", "T2", "T3"])
    valid = {"token": ""}

    def token(h: http.server.BaseHTTPRequestHandler) -> None:
        valid["token"] = next(issued)
        answer(200, json.dumps({"token": valid["token"]}).encode())(h)

    def blob(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") == f"Bearer {valid['token']}" and valid["token"]:
            answer(200)(h)
        else:
            answer(401, WWW_Authenticate=f'Bearer realm="http://{host}/token"')(h)

    routes[f"/v2/x/blobs/{D}"] = blob
    routes["/token"] = token
    client = reg.Registry(host)
    assert client.has_blob("x", D)
    valid["token"] = "expired"  # the server no longer takes T1
    assert client.has_blob("x", D)
    assert valid["token"] == "T2"


def test_manifest_accessors_check_what_they_hand_out() -> None:
    def manifest(doc: object) -> reg.Manifest:
        data = json.dumps(doc).encode()
        return reg.Manifest(media_type="application/vnd.oci.image.index.v1+json", data=data,
                        digest="sha256:" + hashlib.sha256(data).hexdigest())

    m = manifest({"manifests": [{"digest": "a"}, "junk", 3], "artifactType": "x/y"})
    assert m.array("manifests") == [{"digest": "a"}, "junk", 3]
    assert m.objects("manifests") == [{"digest": "a"}]
    assert m.field("artifactType") == "x/y" and m.field("missing") == ""
    assert manifest({"layers": None}).array("layers") == [] == manifest({}).array("layers")
    assert manifest({"artifactType": 7}).field("artifactType") == ""
    with pytest.raises(RegistryError, match="'layers' is not an array"):
        manifest({"layers": "sha256:abc"}).array("layers")
    with pytest.raises(RegistryError, match="is not a JSON object"):
        manifest([1, 2]).json()
