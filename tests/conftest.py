"""Shared fixtures: the engine of the test bed, and image builds.

Engine tests are marked ``engine``. The ``client`` fixture brings the test
bed up (scripts/testbed) once per session when it is not; that needs root only
where something must be installed or started. Outside CI they are skipped when
no engine answers even then; with ``CI`` set a missing engine fails the run
loudly, so a green CI always means they ran.

``second_host`` is a second engine in a network namespace with only loopback
(scripts/secondhost), started as root for the session and stopped after it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from relock.image.engine import DockerEngine

ROOT = Path(__file__).resolve().parent.parent


def _testbed_engine() -> DockerEngine:
    from relock.image import engine

    e = engine.connect()
    e.image("debian:trixie-slim")
    e.image("debian:bookworm-slim")
    return e


@pytest.fixture(scope="session")
def docker_engine() -> DockerEngine:
    """The test bed's engine behind relock's seam, brought up once if it is not."""
    from relock.errors import EngineError

    try:
        return _testbed_engine()
    except EngineError as e:
        first = e
    # `make test` runs scripts/testbed first; a bare `pytest` does it here.
    # It asks for root itself if something must be installed or started.
    subprocess.run([str(ROOT / "scripts" / "testbed")], check=False)
    try:
        return _testbed_engine()
    except EngineError as e:
        first = e
    message = f"the test bed is not up ({first}); run scripts/testbed"
    skip_or_fail(message)


def skip_or_fail(message: str) -> NoReturn:
    """Skip, or in CI fail loudly: a green CI means every engine test ran."""
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def client(docker_engine: DockerEngine) -> Any:
    """The docker SDK client of the test bed's engine, to take the truth independently."""
    return docker_engine.client


class StoreEngine:
    """The test bed's engine of one image store: its DOCKER_HOST, relock's seam and a client."""

    def __init__(self, store: str, host: str, engine: DockerEngine) -> None:
        self.store = store
        self.host = host
        self.engine = engine
        self.client: Any = engine.client


@pytest.fixture(scope="session")
def overlay2_engine(docker_engine: DockerEngine) -> Iterator[StoreEngine]:
    """The test bed's engine with the overlay2 image store (the main one or the other):
    for what only that store has (its layer folders, an image ID that is the config's
    digest, a digest kept by an image whose tag moved)."""
    from relock.image import engine
    from tests.support.engines import engines

    host = engines().get("overlay2")
    if host is None:
        skip_or_fail("the test bed has no overlay2 engine; scripts/testbed starts one")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_HOST", host)
        e = engine.connect()
    e.image("debian:trixie-slim")
    yield StoreEngine("overlay2", host, e)
    e.client.close()


SECONDHOST = ROOT / "scripts" / "secondhost"


class SecondHost:
    """A scripts/secondhost instance: its name, DOCKER_HOST and a client of it."""

    def __init__(self, name: str, docker_host: str, client: Any) -> None:
        self.name = name
        self.docker_host = docker_host
        self.client = client

    def load(self, *images: str) -> None:
        """Copy ``images`` from the test bed's engine into this one (no network)."""
        done = secondhost(self.name, "load", *images)
        assert done.returncode == 0, done.stdout + done.stderr


def secondhost(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/secondhost on the instance ``name``, from the test bed's engine."""
    environ = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    environ.update(RELOCK_SECONDHOST_NAME=name, **env)
    return subprocess.run([str(SECONDHOST), *args], env=environ, capture_output=True,
                          text=True, check=False)


@pytest.fixture(scope="session")
def second_host(client: Any) -> Iterator[SecondHost]:
    """A second engine with only loopback, of this session alone (started as root)."""
    yield from _second_host("overlay2")


@pytest.fixture(scope="session")
def second_host_containerd(client: Any) -> Iterator[SecondHost]:
    """The same with the containerd image store (whose BuildKit builds reproducibly)."""
    yield from _second_host("containerd")


def _second_host(store: str) -> Iterator[SecondHost]:
    import docker

    if os.geteuid() != 0:
        skip_or_fail("the second host needs root to start (a network namespace, a dockerd)")
    name = f"relock-sh-{uuid.uuid4().hex[:8]}"
    done = secondhost(name, "start", RELOCK_SECONDHOST_IMAGE_STORE=store)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        docker_host = secondhost(name, "env").stdout.strip().split("=", 1)[1]
        other = docker.DockerClient(base_url=docker_host, timeout=600)
        try:
            other.ping()
            yield SecondHost(name, docker_host, other)
        finally:
            other.close()
    finally:
        stopped = secondhost(name, "stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        shutil.rmtree(Path("/var/log") / name, ignore_errors=True)   # kept on failure


BuildImage = Callable[..., str]


@pytest.fixture(scope="session")
def build_image(client: Any, docker_engine: DockerEngine) -> Iterator[BuildImage]:
    """Build a Dockerfile text (with optional extra files) into a tagged image.

    Returns the tag; every image made this way is removed at the end.
    """
    from relock.build.enginebuild import build

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
