"""The locked view as every RUN's proxy, for http and https alike (issue 23).

A real TLS client (requests, through the view as its proxy, trusting the view's
certificate only) asks for the URLs tools carry: uv.lock's file URLs on another host, an
https index page, a plain download. The view answers locked files from the lock, checked
by sha256; anything else is a 404 naming the URL, and never reaches that host.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from relock.build.view import IndexSource, LockedView
from relock.lock.lockfile import PipPackage
from tests.factories import make_lock
from tests.fakes import FakeIndex

WHEEL = "tiny_pkg-1.0-py3-none-any.whl"
DATA = b"the locked wheel's bytes"
# Hosts no test reaches: the view must answer for them itself.
FILES = "https://files.relock.invalid"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LockedView, str, Path, FakeIndex]]:
    index = FakeIndex()
    index.add("tiny-pkg", WHEEL, DATA)
    index.add("tiny-pkg", "tiny_pkg-2.0-py3-none-any.whl", b"a newer, unlocked wheel")
    sha = hashlib.sha256(DATA).hexdigest()
    lock = make_lock(pip=(PipPackage("tiny-pkg", "1.0", "/opt/venv",
                                     hashes=(f"sha256:{sha}",)),))
    view = LockedView([], lock, IndexSource(index))  # type: ignore[arg-type]
    with view.serve() as server:
        assert view.authority is not None
        ca = tmp_path / "ca.pem"
        ca.write_bytes(requests.get(f"{server.url}/relock/ca.pem", timeout=10).content)
        yield view, server.url, ca, index


def through(url: str, proxy: str, ca: Path) -> requests.Response:
    return requests.get(url, proxies={"http": proxy, "https": proxy}, verify=str(ca),
                        timeout=10)


def test_a_lock_files_url_on_another_https_host_is_served_from_the_lock(served) -> None:
    view, proxy, ca, index = served
    got = through(f"{FILES}/packages/ab/cd/{WHEEL}", proxy, ca)
    assert got.status_code == 200 and got.content == DATA
    # The bytes came from the configured index (the view's source), checked by hash.
    assert index.opened == ["http://127.0.0.1:1/files/" + WHEEL]
    assert not view.misses.foreign and not view.misses.untrusted


def test_an_https_index_page_is_the_views_page(served) -> None:
    _view, proxy, ca, _index = served
    page = through("https://pypi.relock.invalid/simple/tiny-pkg/", proxy, ca)
    assert page.status_code == 200
    assert WHEEL in page.text and "tiny_pkg-2.0" not in page.text


def test_an_unlocked_file_or_download_is_refused_naming_its_url(served) -> None:
    view, proxy, ca, index = served
    newer = f"{FILES}/packages/{'tiny_pkg-2.0-py3-none-any.whl'}"
    assert through(newer, proxy, ca).status_code == 404
    plain = "https://downloads.relock.invalid:8443/data/model.bin"
    got = through(plain, proxy, ca)
    assert got.status_code == 404 and plain in got.text
    http = "http://downloads.relock.invalid/tool.tar.xz"
    assert through(http, proxy, ca).status_code == 404
    assert view.misses.foreign == [newer, plain, http]
    assert index.opened == []


def test_a_client_that_does_not_trust_the_view_is_remembered(served) -> None:
    view, proxy, _ca, _index = served
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{FILES}/{WHEEL}", proxies={"https": proxy}, timeout=10)
    deadline = time.monotonic() + 5  # the view's side of the handshake ends a moment later
    while not view.misses.untrusted and time.monotonic() < deadline:
        time.sleep(0.02)
    assert view.misses.untrusted and view.misses.untrusted[0].startswith(FILES)


def test_the_certificate_is_of_the_host_asked_for_and_signed_by_the_view(served) -> None:
    view, proxy, ca, _index = served
    host, port = proxy.removeprefix("http://").split(":")
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"CONNECT 127.0.0.1:4443 HTTP/1.1\r\nHost: 127.0.0.1:4443\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # A CA of this view alone: a second view has another.
    other = LockedView([], make_lock(), None)
    with other.serve():
        assert other.authority is not None and view.authority is not None
        assert other.authority.cert_pem != view.authority.cert_pem
    assert other.authority is None  # forgotten when the view stops


def test_a_head_of_a_locked_file_has_no_body(served) -> None:
    _view, proxy, ca, _index = served
    got = requests.head(f"{FILES}/packages/{WHEEL}", proxies={"https": proxy},
                        verify=str(ca), timeout=10)
    assert got.status_code == 200 and got.headers["Content-Length"] == str(len(DATA))
    # The connection is still good for the next request.
    assert through(f"{FILES}/packages/{WHEEL}", proxy, ca).content == DATA
