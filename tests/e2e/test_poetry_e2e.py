"""``poetry install`` from a poetry.lock whose source is an https index (issue 23): poetry
asks that source for each package's links and checks the lock's hashes.

The source is the loopback https upstream of ``test_hermetic_e2e`` (it counts requests);
poetry itself (51 wheels) comes from relock's index. Raw build, freeze, pinned build (the upstream
hears nothing), diff exit 0, then the pinned build on the offline second host from a
store.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relock.lock.lockfile import read
from tests.conftest import SecondHost
from tests.e2e.pyindex import publish_wheel, pypiserver
from tests.e2e.test_build_faults import copy_out, relock
from tests.e2e.test_hermetic_e2e import Upstream, https_upstream
from tests.e2e.test_vendor_e2e import forget_base, on_second_host

pytestmark = [pytest.mark.engine, pytest.mark.slow]

TEMPLATE = """\
FROM debian:trixie-slim
ARG INDEX
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/poetry \\
 && /opt/poetry/bin/pip install --no-cache-dir --index-url "$INDEX" poetry
WORKDIR /app
COPY pyproject.toml poetry.lock ./
# The raw build is given the upstream's authority (--build-arg SSL_CERT_FILE=...).
ARG SSL_CERT_FILE
ENV POETRY_VIRTUALENVS_IN_PROJECT=true POETRY_VIRTUALENVS_OPTIONS_NO_PIP=true \\
    PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring
RUN --mount=type=bind,source=upstream-ca.pem,target=/run/upstream-ca.pem \\
    --mount=type=cache,target=/root/.cache/pypoetry \\
    REQUESTS_CA_BUNDLE=$SSL_CERT_FILE /opt/poetry/bin/poetry install --no-root --no-interaction
"""


@dataclass
class World:
    root: Path
    context: Path
    upstream: Upstream
    index: str
    lock: Path
    raw: str
    made: list[str]

    def env(self) -> dict[str, str | None]:
        return {"PIP_INDEX_URL": self.index, "PIP_CONFIG_FILE": os.devnull,
                "XDG_CACHE_HOME": str(self.root / "cache")}


def poetry_tool(root: Path) -> Path:
    """poetry on this host, in a venv of its own (from the index pip is configured with)."""
    from relock.upstream.index import pip_config

    uv = Path(sys.executable).with_name("uv")
    venv = root / "poetry-tool"
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "UV_CACHE_DIR": str(root / "uv-cache")}
    for args in ([str(uv), "venv", "-q", str(venv)],
                 [str(uv), "pip", "install", "-q", "--index-url", pip_config().urls[0],
                  "poetry"]):
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    return venv / "bin" / "poetry"


@pytest.fixture(scope="module")
def world(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import docker

    root = tmp_path_factory.mktemp("poetry")
    packages = root / "packages"
    publish_wheel(packages, "hx-a", "1.0", requires=["hx-b"])
    publish_wheel(packages, "hx-b", "1.0")
    # poetry's wheels for the image's Python (3.13), some of them compiled.
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                          "--only-binary=:all:", "--python-version", "3.13",
                          "--implementation", "cp", "--abi", "cp313", "--abi", "abi3",
                          "--abi", "none", "--platform", "manylinux_2_28_x86_64",
                          "--platform", "manylinux_2_17_x86_64", "--platform",
                          "manylinux2014_x86_64", "--platform", "any",
                          "--dest", str(packages), "poetry"],
                         capture_output=True, text=True, check=False)
    assert got.returncode == 0, got.stderr[-2000:]
    probe = f"relock-test-poetry-probe:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "buildx", "build", "--network", "host", "--load", "-t", probe,
                    "-"], input="FROM debian:trixie-slim\nRUN apt-get update && apt-get "
                    "install -y --no-install-recommends python3-venv\n", text=True,
                    check=True, capture_output=True)
    copy_out(client, probe, "/usr/share/python-wheels", ".whl", packages)
    client.images.remove(probe, force=True)
    poetry = poetry_tool(root)
    made: list[str] = []
    with https_upstream(packages) as upstream, pypiserver(packages) as index:
        context = root / "ctx"
        context.mkdir()
        ca = context / "upstream-ca.pem"
        ca.write_bytes(upstream.ca)
        (context / "Dockerfile.in").write_text(TEMPLATE)
        (context / "pyproject.toml").write_text(
            '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
            'dependencies = ["hx-a"]\n\n[tool.poetry]\npackage-mode = false\n\n'
            f'[[tool.poetry.source]]\nname = "upstream"\nurl = "{upstream.url}/simple/"\n'
            'priority = "primary"\n')
        locked = subprocess.run(
            [str(poetry), "lock", "--no-interaction"], cwd=context, capture_output=True,
            text=True, check=False,
            env={**os.environ, "REQUESTS_CA_BUNDLE": str(ca), "SSL_CERT_FILE": str(ca),
                 "POETRY_CACHE_DIR": str(root / "poetry-cache"),
                 "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
        assert locked.returncode == 0, locked.stdout[-1500:] + locked.stderr[-1500:]
        assert 'name = "hx-a"' in (context / "poetry.lock").read_text()
        raw = f"relock-test-poetry-raw:{uuid.uuid4().hex[:8]}"
        made.append(raw)
        done = subprocess.run(
            ["docker", "buildx", "build", "--network", "host", "--load", "-t", raw,
             "--build-arg", f"INDEX={index}", "--build-arg",
             "SSL_CERT_FILE=/run/upstream-ca.pem", "-f", str(context / "Dockerfile.in"),
             str(context)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        assert any("hx_a" in h for h in upstream.heard), upstream.heard
        yield World(root, context, upstream, index, root / "app.lock", raw, made)
    for tag in made:
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(tag, force=True)


def test_poetry_install_from_an_https_source_builds_pinned(world: World, client: Any) -> None:
    frozen = relock("freeze", world.raw, "-f", world.context / "Dockerfile.in", "-o",
                    world.lock, env=world.env())
    assert frozen.exit_code == 0, frozen.output
    names = {p.name for p in read(world.lock).pip}
    assert {"hx-a", "hx-b", "poetry"} <= names, names
    world.upstream.heard.clear()
    pinned = f"relock-test-poetry-pinned:{uuid.uuid4().hex[:8]}"
    world.made.append(pinned)
    done = relock("build", "-f", world.context / "Dockerfile.in", "--lock", world.lock,
                  "-t", pinned, "--builder", "buildkit", "--no-cache", "--build-arg",
                  f"INDEX={world.index}", env=world.env())
    assert done.exit_code == 0, done.output
    assert f"{pinned} matches" in done.output
    assert world.upstream.heard == []
    diffed = relock("diff", world.raw, pinned, env=world.env())
    assert diffed.exit_code == 0, diffed.output


def test_poetry_again_on_the_offline_host_from_the_store(world: World,
                                                         second_host: SecondHost) -> None:
    if not world.lock.exists():
        pytest.fail("the lock of the first test is missing", pytrace=False)
    store = world.root / "store"
    done = relock("vendor", "--lock", world.lock, "--store", store, "--apt-live",
                  env=world.env())
    assert done.exit_code == 0, done.output
    forget_base(second_host, read(world.lock))
    tag = f"relock-test-poetry-offline:{uuid.uuid4().hex[:8]}"
    try:
        again = on_second_host(second_host, world.context, world.root / "cache2", "build",
                               "-f", world.context / "Dockerfile.in", "--lock", world.lock,
                               "--store", store, "-t", tag, "-q", "--builder", "buildkit",
                               "--no-cache", "--build-arg", f"INDEX={world.index}")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"{tag} matches {world.lock}" in again.stdout
    finally:
        with contextlib.suppress(Exception):
            second_host.client.images.remove(tag, force=True)
