"""``relock diff --files`` of real images of the test bed's engine (docker save), built twice
from one Dockerfile whose one step writes the time: that file and its step are named, and
nothing else (mtimes aside)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.image.engine import DockerEngine

DOCKERFILE = ("FROM debian:trixie-slim\n"
              "RUN echo hello > /etc/hello\n"
              "RUN date +%s%N > /etc/build-date\n"
              'CMD ["true"]\n')


@pytest.fixture
def tags(client: Any) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for tag in made:
        with contextlib.suppress(Exception):  # an image already gone is fine
            client.images.remove(tag, force=True)


def _classic(client: Any, context: Path, made: list[str]) -> str:
    tag = f"relock-difffiles-{uuid.uuid4().hex[:8]}:classic"
    client.images.build(path=str(context), tag=tag, nocache=True, rm=True, forcerm=True)
    made.append(tag)
    return tag


def _buildkit(context: Path, made: list[str]) -> str:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "buildx", "version"], capture_output=True,
                                        check=False).returncode != 0:
        pytest.skip("docker buildx is not installed")
    tag = f"relock-difffiles-{uuid.uuid4().hex[:8]}:buildkit"
    # The test bed's engine has no bridge network: RUN steps take the host's, as relock's.
    subprocess.run([docker, "buildx", "build", "--no-cache", "--load", "--provenance=false",
                    "--network", "host", "--allow", "network.host", "-q", "-t", tag,
                    str(context)], check=True, capture_output=True)
    made.append(tag)
    return tag


def _diff(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["diff", "--files", *args], catch_exceptions=False)
    return r.exit_code, r.stdout


@pytest.mark.engine
@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_two_builds_differ_only_by_the_file_a_step_wrote_the_time_into(
        docker_engine: DockerEngine, client: Any, tags: list[str], tmp_path: Path,
        builder: str) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    make = (lambda: _classic(client, tmp_path, tags)) if builder == "classic" else (
        lambda: _buildkit(tmp_path, tags))
    a = make()
    # A layer tar may keep whole seconds only (the containerd store's does): two builds
    # within one second could write /etc/hello at the same recorded time.
    time.sleep(1.1)
    b = make()
    code, out = _diff(a, b, "--json")
    assert code == 1, out
    doc = json.loads(out)
    assert [(f["path"], f["differs"]) for f in doc["files"]] == [
        ("/etc/build-date", ["content"])]
    (found,) = doc["files"]
    steps = [x["step"] for x in doc["a"]["layers"]]
    assert steps[found["a"]["layer"]] == "RUN date +%s%N > /etc/build-date"
    assert steps[found["b"]["layer"]] == "RUN date +%s%N > /etc/build-date"
    assert found["a"]["layer"] == len(steps) - 1
    # The same image is the same; mtimes are only compared when asked.
    assert _diff(a, a)[0] == 0
    code, out = _diff(a, b, "--mtimes", "--json")
    differ = {f["path"] for f in json.loads(out)["files"]}
    assert "/etc/build-date" in differ and "/etc/hello" in differ
