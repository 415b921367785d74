"""Tiny wheels of any name and version, and a loopback pypiserver to serve them."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path


def publish_wheel(folder: Path, name: str, version: str,
                  requires: Sequence[str] = (), body: str | None = None) -> Path:
    """A pure-Python wheel of ``name`` ``version`` in ``folder``, byte for byte reproducible.

    ``body`` is its module's ``__init__.py`` (``VERSION = '<version>'`` unless given):
    another body makes a wheel of the same name and version with other bytes.
    """
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n" if body is None else body,
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": ("Wheel-Version: 1.0\nGenerator: relock-tests\n"
                          "Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{path},sha256={b64},{len(text.encode())}\n")
    record.append(f"{info}/RECORD,,\n")
    files[f"{info}/RECORD"] = "".join(record)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0)), text)
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def pypiserver(folder: Path) -> Iterator[str]:
    """A pypiserver for ``folder`` on 127.0.0.1; yields its simple index URL."""
    port = free_port()
    exe = Path(sys.executable).with_name("pypi-server")
    proc = subprocess.Popen(
        [str(exe), "run", "-p", str(port), "-i", "127.0.0.1", "--backend", "simple-dir",
         "--disable-fallback", "--hash-algo", "sha256", "--log-stream", "none", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/simple/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("pypiserver did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def image_pip_wheels(client: object, folder: Path, tag: str) -> None:
    """The wheels ``python3 -m venv`` of debian:trixie-slim installs (its ensurepip's,
    from python3-venv) copied into ``folder``: relock's index must have the venv's pip."""
    from tests.e2e.test_build_faults import copy_out

    subprocess.run(["docker", "buildx", "build", "--network", "host", "--load", "-t", tag,
                    "-"], input="FROM debian:trixie-slim\nRUN apt-get update && apt-get "
                    "install -y --no-install-recommends python3-venv\n", text=True,
                    check=True, capture_output=True)
    try:
        copy_out(client, tag, "/usr/share/python-wheels", ".whl", folder)
    finally:
        client.images.remove(tag, force=True)  # type: ignore[attr-defined]
