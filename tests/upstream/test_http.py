"""relock.upstream.http's one request loop, through the index, the archive and the registry.

A real HTTP server on a loopback port answers each path from a script
(503 with Retry-After then 200, 429 then 200, 503 for ever...); the clients
are asked through their public functions.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from relock.blobs import BlobCache
from relock.errors import ArchiveError, IndexError_, RegistryError
from relock.lock.lockfile import AptPackage, AptSource
from relock.upstream import http as client
from relock.upstream.archive import Archive
from relock.upstream.index import Index, IndexConfig
from relock.upstream.registry import Registry

DATA = b"the bytes of a file"
SHA = hashlib.sha256(DATA).hexdigest()
PAGE = f'<a href="demo-1.0.tar.gz#sha256={SHA}">demo-1.0.tar.gz</a>'.encode()
DEB = "pool/main/d/demo/demo_1.0_all.deb"


@dataclass
class Script:
    """What one path answers: (status, Retry-After) in turn, the last for ever."""

    answers: list[tuple[int, str]]
    body: bytes
    hits: list[float] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    scripts: ClassVar[dict[str, Script]] = {}

    def _answer(self, body: bool) -> None:
        script = self.scripts.get(self.path.split("?")[0])
        if script is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        script.hits.append(time.monotonic())
        status, retry_after = script.answers[min(len(script.hits), len(script.answers)) - 1]
        data = script.body if status == 200 else b"busy"
        self.send_response(status)
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def scripts() -> Iterator[dict[str, Script]]:
    _Handler.scripts.clear()
    yield _Handler.scripts
    _Handler.scripts.clear()


# -- the three clients, each asked through its public functions ----------------

def ask_index(host: str, answers: list[tuple[int, str]], scripts: dict[str, Script],
              userinfo: str = "") -> Script:
    scripts["/simple/demo/"] = script = Script(answers, PAGE)
    index = Index(IndexConfig((f"http://{userinfo}{host}/simple",), timeout=5))
    assert index.hashes("demo", "1.0") == (f"sha256:{SHA}",)
    return script


def ask_archive(host: str, answers: list[tuple[int, str]], scripts: dict[str, Script],
                tmp_path: Path, userinfo: str = "") -> Script:
    scripts[f"/debian/{DEB}"] = script = Script(answers, DATA)
    source = AptSource("/etc/apt/sources.list", ("deb",), (f"http://{userinfo}{host}/debian",),
                       ("stable",), ("main",))
    pkg = AptPackage("demo", "1.0", "all", sha256=SHA, filename=DEB)
    path, where = Archive().fetch_deb(pkg, [source], "", BlobCache(tmp_path / "blobs"))
    assert (path.read_bytes(), where) == (DATA, "live")
    return script


def ask_registry(host: str, answers: list[tuple[int, str]], scripts: dict[str, Script],
                 tmp_path: Path, userinfo: str = "") -> Script:
    digest = f"sha256:{SHA}"
    scripts[f"/v2/x/blobs/{digest}"] = script = Script(answers, DATA)
    assert Registry(host).blob("x", digest).read() == DATA
    return script


ASK = {
    "index": lambda host, answers, scripts, tmp_path, userinfo="": ask_index(
        host, answers, scripts, userinfo),
    "archive": ask_archive,
    "registry": ask_registry,
}
ERRORS: dict[str, type[Exception]] = {
    "index": IndexError_, "archive": ArchiveError, "registry": RegistryError}
CLIENTS = sorted(ASK)


@pytest.mark.parametrize("kind", CLIENTS)
def test_503_with_retry_after_then_200(kind: str, server: str, scripts: dict[str, Script],
                                       tmp_path: Path) -> None:
    script = ASK[kind](server, [(503, "1"), (200, "")], scripts, tmp_path)
    assert len(script.hits) == 2
    assert script.hits[1] - script.hits[0] >= 0.9  # Retry-After: 1 was waited out


@pytest.mark.parametrize("kind", CLIENTS)
def test_429_then_200(kind: str, server: str, scripts: dict[str, Script],
                      tmp_path: Path) -> None:
    script = ASK[kind](server, [(429, "0"), (200, "")], scripts, tmp_path)
    assert len(script.hits) == 2


@pytest.mark.parametrize("kind", CLIENTS)
def test_always_503_is_one_line_after_bounded_tries(kind: str, server: str,
                                                    scripts: dict[str, Script],
                                                    tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ERRORS[kind]) as e:
        ASK[kind](server, [(503, "0")], scripts, tmp_path)
    took = time.monotonic() - started
    message = str(e.value)
    assert "\n" not in message and "HTTP 503" in message, message
    assert server in message, message
    (script,) = scripts.values()
    assert len(script.hits) == client.TRIES
    assert took < 3, took


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_retry_after_beyond_the_cap_is_capped(kind: str, server: str,
                                                scripts: dict[str, Script], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "MAX_WAIT", 0.5)
    started = time.monotonic()
    script = ASK[kind](server, [(503, "3600"), (200, "")], scripts, tmp_path)
    assert len(script.hits) == 2
    assert 0.4 <= script.hits[1] - script.hits[0] < 2
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("kind", ["index", "archive"])
def test_credentials_stay_out_of_the_error(kind: str, server: str,
                                           scripts: dict[str, Script], tmp_path: Path) -> None:
    with pytest.raises(ERRORS[kind]) as e:
        ASK[kind](server, [(503, "0")], scripts, tmp_path, userinfo="alice:hunter2@")
    message = str(e.value)
    assert f"http://{server}/" in message and "HTTP 503" in message, message
    assert "hunter2" not in message and "alice" not in message, message


def test_backoff_without_retry_after(server: str, scripts: dict[str, Script],
                                     tmp_path: Path) -> None:
    script = ASK["archive"](server, [(502, ""), (504, ""), (200, "")], scripts, tmp_path)
    gaps = [b - a for a, b in zip(script.hits, script.hits[1:], strict=False)]
    assert [round(g) for g in gaps] == [round(w) for w in client.BACKOFF]


def test_archive_counts_its_retries_and_waits(server: str, scripts: dict[str, Script],
                                              tmp_path: Path) -> None:
    scripts[f"/debian/{DEB}"] = Script([(429, "1"), (503, "0"), (200, "")], DATA)
    archive = Archive()
    source = AptSource("/etc/apt/sources.list", ("deb",), (f"http://{server}/debian",),
                       ("stable",), ("main",))
    archive.fetch_deb(AptPackage("demo", "1.0", "all", sha256=SHA, filename=DEB), [source], "",
                      BlobCache(tmp_path))
    assert (archive.retries, archive.waited, archive.requests_made) == (2, 1.0, 3)


def test_a_registry_with_its_own_backoff_tries_once_more_than_it_waits(
        server: str, scripts: dict[str, Script]) -> None:
    digest = f"sha256:{SHA}"
    scripts[f"/v2/x/blobs/{digest}"] = script = Script([(503, "")], DATA)
    with pytest.raises(RegistryError, match=r"HEAD blob answered HTTP 503$"):
        Registry(server, backoff=(0.0,)).has_blob("x", digest)
    assert len(script.hits) == 2


# -- the policy's parts ----------------------------------------------------------

def test_retry_after_is_read_and_capped() -> None:
    assert client.retry_after(None, 2.0) == 2.0
    assert client.retry_after("3", 2.0) == 3.0
    assert client.retry_after(" 1.5 ", 2.0) == 1.5
    assert client.retry_after("100000", 2.0) == client.MAX_WAIT
    assert client.retry_after("100000", 2.0, cap=5) == 5
    assert client.retry_after("-3", 2.0) == 0.0
    assert client.retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 2.0) == 0.0  # past
    assert client.retry_after("Fri, 01 Jan 2100 00:00:00 GMT", 2.0) == client.MAX_WAIT
    assert client.retry_after("soon", 2.0) == 2.0
    assert client.retry_after("nan", 2.0) == 2.0


def test_retry_waits_follow_the_backoff() -> None:
    policy = client.Retry(backoff=(1.0, 2.0))
    assert [policy.wait(None, n) for n in (1, 2, 3)] == [1.0, 2.0, 2.0]
    assert policy.wait("0", 1) == 0.0
    assert client.Retry(max_wait=0.5).wait("60", 1) == 0.5


@pytest.mark.parametrize(("url", "shown"), [
    ("http://alice:hunter2@127.0.0.1:8/simple", "http://127.0.0.1:8/simple"),
    ("https://token@h.example/x", "https://h.example/x"),
    ("http://a:b@[::1]:5000/v2/", "http://[::1]:5000/v2/"),
    ("https://h.example/u?_state=abc&digest=sha256:1", "https://h.example/u?_state=***&digest=sha256:1"),
    ("https://h.example/f?X-Amz-Signature=s&X-Amz-Date=d", "https://h.example/f?X-Amz-Signature=***&X-Amz-Date=d"),
    ("https://h.example/f?access_token=t", "https://h.example/f?access_token=***"),
    ("http://h.example/debian/pool/a.deb", "http://h.example/debian/pool/a.deb"),
])
def test_redact(url: str, shown: str) -> None:
    assert client.redact(url) == shown


def test_scrub_takes_credentials_out_of_free_text() -> None:
    text = "proxy http://bob:s3cret@proxy:3128 refused; user alice said hunter2"
    scrubbed = client.scrub(text, ("http://alice:hunter2@127.0.0.1/simple",))
    assert "s3cret" not in scrubbed and "bob" not in scrubbed
    assert "hunter2" not in scrubbed and "alice" not in scrubbed
    assert "http://proxy:3128" in scrubbed
