"""Container engines that misbehave: never answering, stopping mid-way, a silent build."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.contract import GOOD, invoke, one_line_error


def test_an_engine_that_never_answers_does_not_hold_relock(tmp_path: Path) -> None:
    """B9: an engine that accepts connections and never answers is cut off, and named."""
    sock_path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # accepted, never answered
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        lock = tmp_path / "good.lock"
        lock.write_text(GOOD)
        r = invoke("verify", "some-image", "--lock", str(lock),
                   env={"DOCKER_HOST": f"unix://{sock_path}", "RELOCK_ENGINE_TIMEOUT": "2"})
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()
    took = time.monotonic() - started
    line = one_line_error(r, "cannot reach the container engine")
    assert "timed out" in line.lower() or "time" in line.lower(), line
    assert held, "the engine was asked"
    assert took < 20, took


class _SilentEngine:
    """A loopback engine API on a unix socket that answers some calls and never others."""

    IMAGE = "sha256:" + "4" * 64
    CONTAINER = "c" * 64

    def __init__(self, path: Path, hang: str) -> None:
        import json
        import re
        import socketserver

        hang_on = hang
        stop = self.stop = threading.Event()
        image, container = self.IMAGE, self.CONTAINER

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                path = re.sub(r"^/v[0-9.]+", "", self.path.split("?")[0])
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                routes = {
                    "version": ("GET", r"/version", {"ApiVersion": "1.43", "Version": "x"}),
                    "image": ("GET", r"/images/[^/]+/json",
                              {"Id": image, "RootFS": {"Layers": []}, "Os": "linux",
                               "Architecture": "amd64"}),
                    "images": ("GET", r"/images/json", []),
                    "info": ("GET", r"/info", {"RegistryConfig": {"Mirrors": []}}),
                    "pull": ("POST", r"/images/create", {}),
                    "create": ("POST", r"/containers/create", {"Id": container}),
                    "inspect": ("GET", r"/containers/[^/]+/json", {"Id": container}),
                    "export": ("GET", r"/containers/[^/]+/export", None),
                    "remove": ("DELETE", r"/containers/[^/]+", None),
                }
                for name, (method, pattern, body) in routes.items():
                    if method == self.command and re.fullmatch(pattern, path):
                        if name == hang_on:
                            stop.wait(60)  # accepted, never answered
                            return
                        data = json.dumps(body).encode() if body is not None else b""
                        self.send_response(200 if body is not None else 204)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                self.send_error(404)

            do_GET = do_POST = do_DELETE = _answer

            def address_string(self) -> str:
                return "local"

            def log_message(self, *args: object) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(str(path), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("hang", "call"), [
    ("image", "image"), ("images", "images"), ("info", "registry_mirrors"), ("pull", "pull"),
    ("export", "open_rootfs"), ("create", "open_rootfs"),
])
def test_an_engine_that_stops_answering_is_cut_off_on_every_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hang: str, call: str) -> None:
    """B9: past connecting, each engine call relock makes (but a build's log) is bounded."""
    from relock.errors import EngineError
    from relock.image import engine

    sock = tmp_path / "engine.sock"
    fake = _SilentEngine(sock, hang)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    started = time.monotonic()
    try:
        client = engine.connect(timeout=1)
        info = engine.ImageInfo(id=_SilentEngine.IMAGE)
        with pytest.raises(EngineError) as e:
            if call == "open_rootfs":
                client._attrs[info.id] = {}
                with client.open_rootfs(info) as fs:
                    fs.read_bytes("etc/os-release")
            elif call == "pull":
                client.pull("localhost:5000/x:1")
            elif call == "image":
                client.image("x")
            else:
                getattr(client, call)()
    finally:
        fake.close()
    message = str(e.value)
    assert "\n" not in message
    assert "timed out" in message and "within 1 s" in message, message
    assert time.monotonic() - started < 10


def test_a_silent_build_is_said(tmp_path: Path) -> None:
    """B9: a build's log stream has no deadline, but its silence is reported while it lasts."""
    from relock.build import enginebuild as build
    from relock.image.engine import BuildEvent, BuildRequest
    from relock.template import render

    prefix = render.view_prefix("http://127.0.0.1:7781", "ab12")

    class Slow:
        def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
            # As the engine echoes a pinned step: relock's prefix, then the template's command.
            yield BuildEvent("log", f"Step 2/3 : RUN {prefix} make")
            time.sleep(1.3)
            yield BuildEvent("image", "sha256:" + "5" * 64)

    said: list[str] = []
    result = build.build(Slow(), tmp_path, "Dockerfile", progress=said.append, silence=0.5)
    assert result.image_id == "sha256:" + "5" * 64
    assert len(said) == 2, said  # at 0.5 s and at 1.0 s of silence
    assert all("said nothing of the build" in line and "(at Step 2/3 : RUN make)" in line
               for line in said), said
