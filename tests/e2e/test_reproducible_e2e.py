"""The same image on another host: ``relock build --reproducible`` on the test bed's engine
records the image's digest in the lock; the offline second host (the containerd image
store, only loopback) builds it from a store and gets that very digest.

The template installs APT packages, makes a venv (pip's own files, compiled), pip-installs
a pure and a compiled distribution, and copies a file with ``COPY --link``: what the
normalisation of docs/reproducible.md is for. The two builds run minutes apart with
different engines, data roots and caches; the digest comes from the lock, not the clock.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from relock.lock.lockfile import read
from tests.conftest import BuildImage, SecondHost
from tests.e2e.test_vendor_e2e import on_second_host, relock
from tests.support.engines import main_store

pytestmark = [pytest.mark.engine, pytest.mark.slow]

TEMPLATE = """\
FROM debian:trixie-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv less \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir six markupsafe
COPY --link app.txt /app/app.txt
"""


def test_the_offline_second_host_builds_the_image_the_lock_records(
        client: Any, build_image: BuildImage, second_host_containerd: SecondHost,
        tmp_path: Path) -> None:
    if main_store() != "containerd":
        pytest.fail("the test bed's main engine must have the containerd image store "
                    "(scripts/testbed sets it)", pytrace=False)
    context = tmp_path / "ctx"
    raw = build_image(context, TEMPLATE, name="repro-raw", files={"app.txt": "the app\n"})
    lock = tmp_path / "app.lock"
    frozen = relock("freeze", raw, "-f", context / "Dockerfile.in", "-o", lock)
    assert frozen.exit_code == 0, frozen.output
    store = tmp_path / "store"
    vendored = relock("vendor", "--lock", lock, "--store", store, "--apt-live")
    assert vendored.exit_code == 0, vendored.output

    first = f"relock-test-repro-first:{uuid.uuid4().hex[:8]}"
    second = f"relock-test-repro-second:{uuid.uuid4().hex[:8]}"
    # One view port for both builds (its address is in every RUN), not relock's default:
    # another build on this machine may hold that one.
    port = str(_free_port())
    built = relock("build", "--lock", lock, "-t", first, "--reproducible", "-q",
                   "--view-port", port)
    try:
        assert built.exit_code == 0, built.output
        digest = client.images.get(first).id
        assert f"recorded {digest} (config sha256:" in built.stdout
        recorded = read(lock).image_digest()
        assert recorded is not None and recorded.manifest == digest

        # The second host: no index, no archive, no Docker Hub; the store and the lock only.
        host = second_host_containerd
        # Another checkout, as another host has: the template and app.txt copied now (their
        # times are this moment's) and made group-writable (another umask).
        checkout = tmp_path / "checkout"
        checkout.mkdir()
        for name in ("Dockerfile.in", "app.txt"):
            (checkout / name).write_bytes((context / name).read_bytes())
            (checkout / name).chmod(0o664)
        there = on_second_host(host, checkout, tmp_path / "cache2", "build", "--lock", lock,
                               "-f", checkout / "Dockerfile.in",
                               "--store", store, "-t", second, "--reproducible", "-q",
                               "--view-port", port)
        assert there.returncode in (0, 1), there.stdout + there.stderr
        if f"reproduced {digest}, as {lock} says" not in there.stdout:
            why = _file_differences(host, first, second, tmp_path)
            pytest.fail(f"{there.stdout}{there.stderr}{why}", pytrace=False)
        assert there.returncode == 0, there.stdout + there.stderr
        assert host.client.images.get(second).id == digest
        # verify there: the one comparison.
        verified = on_second_host(host, checkout, tmp_path / "cache2", "verify", second,
                                  "--lock", lock)
        assert verified.returncode == 0 and "the image the lock records" in verified.stderr
    finally:
        for tag in (first, second):
            with contextlib.suppress(Exception):
                client.images.remove(tag, force=True)


def _file_differences(host: SecondHost, first: str, second: str, tmp_path: Path) -> str:
    """What differs between the first host's image and the second's, file by file: the second
    host's image saved and loaded here, then ``relock diff --files --mtimes``."""
    archive = tmp_path / "second.tar"
    with archive.open("wb") as out:
        for chunk in host.client.images.get(second).save(named=True):
            out.write(chunk)
    loaded = subprocess.run(["docker", "load", "-q", "-i", str(archive)], capture_output=True,
                            text=True, check=False)
    if loaded.returncode:
        return f"\n(the second host's image could not be loaded here: {loaded.stderr})"
    diffed = relock("diff", "--files", "--mtimes", first, second)
    return f"\nrelock diff --files --mtimes {first} {second}:\n{diffed.output}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
