"""The test bed's two engines, one per image store (scripts/testbed starts both): the
main one (``DOCKER_HOST``, the containerd image store unless the test bed was told
otherwise) and the other (``scripts/testbed --other-engine``)."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def engine_store(docker_host: str) -> str:
    """``containerd`` or ``overlay2``: the image store of the engine at ``docker_host``."""
    out = subprocess.run(["docker", "info", "--format", "{{json .DriverStatus}}"],
                         env={**os.environ, "DOCKER_HOST": docker_host},
                         capture_output=True, text=True, check=False)
    return "containerd" if "io.containerd.snapshotter" in out.stdout else "overlay2"


def main_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


@functools.cache
def engines() -> dict[str, str]:
    """DOCKER_HOST of the test bed's engine of each image store."""
    first = main_host()
    found = {engine_store(first): first}
    other = subprocess.run([str(ROOT / "scripts" / "testbed"), "--other-engine"],
                           capture_output=True, text=True, check=False)
    if other.returncode == 0:
        host = other.stdout.strip().split("=", 1)[1]
        found.setdefault(engine_store(host), host)
    return found


def main_store() -> str:
    """The image store of the main engine."""
    return engine_store(main_host())
