"""Shared fixtures: the engine of the test bed, and image builds.

Engine tests are marked ``engine``. The ``client`` fixture brings the test
bed up (scripts/testbed) once per session when it is not, as root. Outside CI
they are skipped when no engine answers even then; with ``CI`` set a missing
engine fails the run loudly, so a green CI always means they ran.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from relock.engine import DockerEngine

ROOT = Path(__file__).resolve().parent.parent


def _testbed_engine() -> DockerEngine:
    from relock import engine

    e = engine.connect()
    e.image("debian:trixie-slim")
    e.image("debian:bookworm-slim")
    return e


@pytest.fixture(scope="session")
def docker_engine() -> DockerEngine:
    """The test bed's engine behind relock's seam, brought up once if it is not."""
    import subprocess

    from relock.errors import EngineError

    try:
        return _testbed_engine()
    except EngineError as e:
        first = e
    if os.geteuid() == 0:
        # `make test` runs scripts/testbed first; a bare `pytest` does it here.
        subprocess.run([str(ROOT / "scripts" / "testbed")], check=False)
        try:
            return _testbed_engine()
        except EngineError as e:
            first = e
    message = f"the test bed is not up ({first}); run scripts/testbed as root"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def client(docker_engine: DockerEngine) -> Any:
    """The docker SDK client of the test bed's engine, to take the truth independently."""
    return docker_engine.client


BuildImage = Callable[..., str]


@pytest.fixture(scope="session")
def build_image(client: Any, docker_engine: DockerEngine) -> Iterator[BuildImage]:
    """Build a Dockerfile text (with optional extra files) into a tagged image.

    Returns the tag; every image made this way is removed at the end.
    """
    from relock.build import build

    made: list[str] = []

    def _build(context: Path, dockerfile_text: str, name: str = "img",
               files: dict[str, str] | None = None, dockerfile: str = "Dockerfile.in",
               nocache: bool = False) -> str:
        context.mkdir(parents=True, exist_ok=True)
        (context / dockerfile).write_text(dockerfile_text)
        for rel, text in (files or {}).items():
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            (context / rel).write_text(text)
        tag = f"relock-test-{name}:{uuid.uuid4().hex[:8]}"
        build(docker_engine, context, dockerfile, tag=tag, nocache=nocache)
        made.append(tag)
        return tag

    yield _build
    for tag in made:
        with contextlib.suppress(Exception):  # an image already gone is fine
            client.images.remove(tag, force=True)


def run_in(client: Any, image: str, command: list[str]) -> str:
    """Run ``command`` in ``image`` (host network, removed after) and return stdout.

    Tests use this to take the truth independently of relock; relock itself
    never runs anything in an image.
    """
    container = client.containers.create(image, command, network_mode="host", entrypoint=[])
    try:
        container.start()
        status = container.wait(timeout=300)
        out = container.logs(stdout=True, stderr=False)
        if status.get("StatusCode") != 0:
            err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
            raise AssertionError(f"{command} failed in {image}: {err[-2000:]}")
    finally:
        container.remove(force=True)
    return str(out.decode("utf-8"))
