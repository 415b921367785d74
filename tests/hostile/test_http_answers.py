"""Package indexes, archives and registries that misbehave: bad pages, statuses, drips.

Each is a server on loopback. A bad answer is one line naming the URL (without
its password); a slow one is cut off at its deadline; nothing is cached from it.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.errors import IndexError_
from relock.lock import lockfile
from relock.upstream.index import Index, IndexConfig
from tests.hostile.contract import H, one_line_error, rootfs


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]]] = {}

    def do_GET(self) -> None:
        name = self.path.strip("/").split("/")[-1]
        self.routes[name](self)

    def log_message(self, *args: object) -> None:
        pass


def _send(body: bytes, ctype: str = "application/vnd.pypi.simple.v1+json",
          status: int = 200) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return answer


def _drip(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    try:
        for _ in range(40):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.3)
    except OSError:
        pass


@pytest.fixture(scope="module")
def index_server() -> Iterator[str]:
    files = b'{"files": [{"filename": "ok-1.0.tar.gz", "hashes": {"sha256": "%s"}}]}' % (
        H.encode())
    _Handler.routes = {
        "ok": _send(files),
        "notjson": _send(b"{not json"),
        "alist": _send(b"[1, 2]"),
        "nofilename": _send(b'{"files": [{"hashes": {"sha256": "%s"}}]}' % H.encode()),
        "nofiles": _send(b'{"meta": {}}'),
        "badhash": _send(b'{"files": [{"filename": "badhash-1.0.tar.gz", '
                         b'"hashes": {"sha256": "zz"}}]}'),
        "htmlbadhash": _send(b'<a href="htmlbadhash-1.0.tar.gz#sha256=..%2f">x</a>',
                             "text/html"),
        "drip": _drip,
        "broken": _send(b"no", "text/plain", 500),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()


def test_index_answer_that_is_good(index_server: str) -> None:
    assert Index(IndexConfig((index_server,), timeout=5)).hashes("ok", "1.0") == (
        f"sha256:{H}",)


# Issue 12's review: B1.
@pytest.mark.parametrize(("name", "message"), [
    ("notjson", "not valid JSON"),
    ("alist", "not a PEP 691 project page"),
    ("nofiles", "not a PEP 691 project page"),
    ("nofilename", "has no 'filename'"),
    ("badhash", "'zz' is not a sha256 digest"),
    ("htmlbadhash", "is not a sha256 digest"),
    ("broken", "answered HTTP 500"),
])
def test_malformed_index_answers(index_server: str, name: str, message: str) -> None:
    with pytest.raises(IndexError_, match=message) as e:
        Index(IndexConfig((index_server,), timeout=5)).hashes(name, "1.0")
    assert "\n" not in str(e.value)


def test_dripping_index_is_cut_off(index_server: str) -> None:
    """B9: one byte every 0.3 s never trips a 1 s read time-out; the deadline does."""
    index = Index(IndexConfig((index_server,), timeout=1.5))
    start = time.monotonic()
    with pytest.raises(IndexError_, match=r"within 1\.5 s \(timed out\)"):
        index.hashes("drip", "1.0")
    assert time.monotonic() - start < 4


def test_index_password_stays_out_of_messages(index_server: str) -> None:
    """S5: an index URL's password never appears in an error."""
    secret_url = index_server.replace("http://", "http://alice:hunter2@")
    for name in ("broken", "notjson", "missing-everywhere"):
        if name == "missing-everywhere":
            _Handler.routes[name] = _send(b"", "text/html", 404)
        with pytest.raises(IndexError_) as e:
            Index(IndexConfig((secret_url,), timeout=5)).hashes(name, "1.0")
        assert "hunter2" not in str(e.value) and "alice" not in str(e.value), str(e.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(IndexError_, match="unreachable") as e:
        Index(IndexConfig((f"http://alice:hunter2@127.0.0.1:{port}/simple",),
                          timeout=2)).hashes("six", "1.0")
    assert "hunter2" not in str(e.value)


def test_file_index_name_cannot_leave_the_folder(tmp_path: Path) -> None:
    """S6: '%2e%2e/secret' is refused before it becomes a path."""
    secret = tmp_path / "secret" / "index.html"
    secret.parent.mkdir()
    secret.write_text(f'<a href="x-1.0.tar.gz#sha256={H}">x</a>')
    (tmp_path / "simple").mkdir()
    index = Index(IndexConfig(((tmp_path / "simple").as_uri(),)))
    for name in ("%2e%2e/secret", "../secret", "..%2fsecret"):
        with pytest.raises(IndexError_, match="not a normalised"):
            index.hashes(name, "1.0")
    assert index.requests_made == 0


@pytest.mark.parametrize("version", ["1.0\n2.0", "not a version", "1.0 "])
def test_a_bad_dist_version_is_refused_before_the_index_is_asked(tmp_path: Path,
                                                                 version: str) -> None:
    """B1: a folded or bad METADATA version is one line, not InvalidVersion."""
    index = Index(IndexConfig(((tmp_path / "simple").as_uri(),)))
    with pytest.raises(IndexError_, match="PEP 440"):
        index.hashes("six", version)


def test_tampered_index_cache_is_not_trusted(tmp_path: Path) -> None:
    simple = tmp_path / "simple" / "six"
    simple.mkdir(parents=True)
    (simple / "index.html").write_text(f'<a href="six-1.0.tar.gz#sha256={H}">x</a>')
    index = Index(IndexConfig(((tmp_path / "simple").as_uri(),)), tmp_path / "cache")
    assert index.hashes("six", "1.0") == (f"sha256:{H}",)
    [cached] = (tmp_path / "cache").rglob("1.0.json")
    cached.write_text('["sha256:aa\\nRUN id"]')
    again = Index(IndexConfig(((tmp_path / "simple").as_uri(),)), tmp_path / "cache")
    assert again.hashes("six", "1.0") == (f"sha256:{H}",)
    assert again.requests_made == 1


class _Drip:
    """A loopback HTTP server that answers every request slowly, one way or another.

    ``headers``: the status line and headers one byte a second; ``body``:
    headers at once, then the body one byte a second; ``steady``: a 96 KiB
    body in 32 KiB parts, one a second (slow, but keeping pace).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.requests += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                b"Content-Length: %d\r\n\r\n")
        try:
            conn.recv(65536)
            if self.mode == "headers":
                for byte in head % 10:
                    if self.stop.is_set():
                        break
                    conn.sendall(bytes([byte]))
                    time.sleep(1)
            elif self.mode == "body":
                conn.sendall(head % 1000)
                for _ in range(1000):
                    if self.stop.is_set():
                        break
                    conn.sendall(b" ")
                    time.sleep(1)
            else:
                conn.sendall(head % (3 * 32768))
                for _ in range(3):
                    time.sleep(1)
                    conn.sendall(b"x" * 32768)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.server.close()


@pytest.fixture
def drip(request: pytest.FixtureRequest) -> Iterator[_Drip]:
    server = _Drip(request.param)
    yield server
    server.close()


# Issue 12's review: S5, B9.
@pytest.mark.parametrize("drip", ["headers", "body"], indirect=True)
def test_freeze_with_a_dripping_index_is_cut_off(tmp_path: Path, drip: _Drip) -> None:
    """B9: an index that drips its headers or its page is cut off at pip's time-out."""
    site = "opt/venv/lib/python3.13/site-packages/"
    root = rootfs(tmp_path, {
        "opt/venv/pyvenv.cfg": "version = 3.13.1\n",
        site + "six-1.16.0.dist-info/METADATA": "Name: six\nVersion: 1.16.0\n",
        site + "six-1.16.0.dist-info/INSTALLER": "pip\n",
    })
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DEFAULT_TIMEOUT": "2",
            "PIP_INDEX_URL": drip.url.replace("http://", "http://alice:hunter2@") + "/simple",
            "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = tmp_path / "locks" / "x.lock"
    started = time.monotonic()
    r = CliRunner().invoke(cli, ["freeze", "--rootfs", str(root), "-o", str(out),
                                 "--snapshot", "20261101T000000Z"],
                           catch_exceptions=False, env=env)  # type: ignore[arg-type]
    took = time.monotonic() - started
    line = one_line_error(r, f"package index {drip.url}/simple", "within 2 s (timed out)")
    assert "hunter2" not in line and "alice" not in line
    assert not out.parent.exists()
    assert drip.requests == 1
    assert took < 12, took  # two pip runs (~1 s each), then the 2 s deadline


def _deb_lock(url: str) -> lockfile.Lock:
    from relock.lock.lockfile import AptPackage, AptSource
    from tests.factories import make_lock

    return make_lock(
        apt_sources=(AptSource("/etc/apt/sources.list", ("deb",), (url + "/debian",),
                               ("trixie",), ("main",)),),
        apt=(AptPackage("pkga", "1.0", "amd64", sha256=H,
                        filename="pool/main/p/pkga/pkga_1.0_amd64.deb"),))


# Issue 12's review: S5, B9.
@pytest.mark.parametrize("drip", ["headers", "body"], indirect=True)
def test_fetching_debs_from_a_dripping_archive_is_cut_off(
        tmp_path: Path, drip: _Drip, monkeypatch: pytest.MonkeyPatch) -> None:
    """B9 for a build's fetch of .debs: RELOCK_HTTP_TIMEOUT bounds headers and pace."""
    from relock.build import rebuild
    from relock.errors import ArchiveError
    from relock.upstream import http

    monkeypatch.setenv("RELOCK_HTTP_TIMEOUT", "2")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lock = _deb_lock(drip.url.replace("http://", "http://bob:s3cret@"))
    before = set(http._watcher._watches)  # other tests' requests are not this one's business
    started = time.monotonic()
    with pytest.raises(ArchiveError) as e:
        options = rebuild.RebuildOptions(use_snapshot=False, cache_dir=tmp_path / "blobs")
        rebuild.fetch_debs(lock, list(lock.apt), options, lambda _: None,
                           rebuild.upstream_archive(options))
    took = time.monotonic() - started
    message = str(e.value)
    assert "\n" not in message
    assert f"{drip.url}/debian/pool/main/p/pkga/pkga_1.0_amd64.deb" in message
    assert "timed out" in message and "2 s" in message and "RELOCK_HTTP_TIMEOUT" in message
    assert "s3cret" not in message and "bob" not in message
    assert took < 8, took
    assert http._watcher._watches <= before  # every request let go of its watch
    blobs = tmp_path / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


# Issue 12's review: B9.
@pytest.mark.parametrize("drip", ["headers", "body", "steady"], indirect=True)
def test_http_headers_have_a_deadline_and_a_body_a_pace(drip: _Drip) -> None:
    """The rule itself: headers have a deadline, a body a pace; slow and steady passes."""
    from relock.upstream import http

    limits = http.Limits(headers=2, stall=2)
    session = http.session()
    before = set(http._watcher._watches)
    started = time.monotonic()
    if drip.mode == "steady":
        with http.watched(drip.url, limits) as watch:
            resp = session.get(drip.url, stream=True, timeout=10)
            watch.answered(resp)
            assert len(resp.content) == 3 * 32768
        return
    with pytest.raises(http.HttpTimeoutError, match=r"within 2 s|in 2 s") as e, \
            http.watched(drip.url, limits) as watch:
        resp = session.get(drip.url, stream=True, timeout=10)
        watch.answered(resp)
        resp.content  # noqa: B018  (reading is the point)
    assert drip.url in str(e.value)
    assert time.monotonic() - started < 5
    assert http._watcher._watches <= before


# Issue 12's review: B9.
@pytest.mark.parametrize("drip", ["headers"], indirect=True)
def test_registry_that_drips_is_cut_off(drip: _Drip, monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.upstream.registry import Registry, RegistryUnreachable

    monkeypatch.setenv("RELOCK_HTTP_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(RegistryUnreachable, match=r"within 1 s .*timed out"):
        Registry(drip.url.removeprefix("http://")).manifest("x", "latest")
    assert time.monotonic() - started < 5
