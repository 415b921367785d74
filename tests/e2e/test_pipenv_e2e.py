"""``pipenv install --system --deploy`` from a Pipfile.lock whose source is an https index
(issue 23): ``--deploy`` forbids changing that source, so the view must answer it.

The source is the loopback https upstream of ``test_hermetic_e2e`` (it counts requests);
pipenv itself comes from relock's index. Raw build, freeze, pinned build (the upstream
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
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir --index-url "$INDEX" pipenv
WORKDIR /app
COPY Pipfile Pipfile.lock ./
# The raw build is given the upstream's authority (--build-arg SSL_CERT_FILE=...).
ARG SSL_CERT_FILE
RUN --mount=type=bind,source=upstream-ca.pem,target=/run/upstream-ca.pem \\
    PIP_CERT=$SSL_CERT_FILE REQUESTS_CA_BUNDLE=$SSL_CERT_FILE PIP_NO_CACHE_DIR=1 \\
    pipenv install --system --deploy
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


def pipenv_tool(root: Path) -> Path:
    """pipenv on this host, in a venv of its own (from the index pip is configured with)."""
    from relock.upstream.index import pip_config

    uv = Path(sys.executable).with_name("uv")
    venv = root / "pipenv-tool"
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "UV_CACHE_DIR": str(root / "uv-cache")}
    for args in ([str(uv), "venv", "-q", str(venv)],
                 [str(uv), "pip", "install", "-q", "--index-url", pip_config().urls[0],
                  "pipenv"]):
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    return venv / "bin" / "pipenv"


@pytest.fixture(scope="module")
def world(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import docker

    root = tmp_path_factory.mktemp("pipenv")
    packages = root / "packages"
    publish_wheel(packages, "hx-a", "1.0", requires=["hx-b"])
    publish_wheel(packages, "hx-b", "1.0")
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                          "--only-binary=:all:", "--dest", str(packages), "pipenv"],
                         capture_output=True, text=True, check=False)
    assert got.returncode == 0, got.stderr[-2000:]
    probe = f"relock-test-pipenv-probe:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "buildx", "build", "--network", "host", "--load", "-t", probe,
                    "-"], input="FROM debian:trixie-slim\nRUN apt-get update && apt-get "
                    "install -y --no-install-recommends python3-venv\n", text=True,
                    check=True, capture_output=True)
    copy_out(client, probe, "/usr/share/python-wheels", ".whl", packages)
    client.images.remove(probe, force=True)
    pipenv = pipenv_tool(root)
    made: list[str] = []
    with https_upstream(packages) as upstream, pypiserver(packages) as index:
        context = root / "ctx"
        context.mkdir()
        ca = context / "upstream-ca.pem"
        ca.write_bytes(upstream.ca)
        (context / "Dockerfile.in").write_text(TEMPLATE)
        (context / "Pipfile").write_text(
            f'[[source]]\nurl = "{upstream.url}/simple"\nverify_ssl = true\n'
            'name = "upstream"\n\n[packages]\nhx-a = "*"\n')
        locked = subprocess.run(
            [str(pipenv), "lock"], cwd=context, capture_output=True, text=True, check=False,
            env={**os.environ, "REQUESTS_CA_BUNDLE": str(ca), "PIP_CERT": str(ca),
                 "SSL_CERT_FILE": str(ca), "PIPENV_VENV_IN_PROJECT": "1",
                 "PIP_CONFIG_FILE": os.devnull, "PIPENV_NOSPIN": "1",
                 "PIPENV_CACHE_DIR": str(root / "pipenv-cache")})
        assert locked.returncode == 0, locked.stdout[-1500:] + locked.stderr[-1500:]
        assert f"{upstream.url}/simple" in (context / "Pipfile.lock").read_text()
        raw = f"relock-test-pipenv-raw:{uuid.uuid4().hex[:8]}"
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


def test_pipenv_deploy_with_an_https_source_builds_pinned(world: World, client: Any) -> None:
    frozen = relock("freeze", world.raw, "-f", world.context / "Dockerfile.in", "-o",
                    world.lock, env=world.env())
    assert frozen.exit_code == 0, frozen.output
    names = {p.name for p in read(world.lock).pip}
    assert {"hx-a", "hx-b", "pipenv"} <= names, names
    world.upstream.heard.clear()
    pinned = f"relock-test-pipenv-pinned:{uuid.uuid4().hex[:8]}"
    world.made.append(pinned)
    done = relock("build", "-f", world.context / "Dockerfile.in", "--lock", world.lock,
                  "-t", pinned, "--builder", "buildkit", "--no-cache", "--build-arg",
                  f"INDEX={world.index}", env=world.env())
    assert done.exit_code == 0, done.output
    assert f"{pinned} matches" in done.output
    assert world.upstream.heard == []
    diffed = relock("diff", world.raw, pinned, env=world.env())
    assert diffed.exit_code == 0, diffed.output


def test_pipenv_again_on_the_offline_host_from_the_store(world: World,
                                                         second_host: SecondHost) -> None:
    if not world.lock.exists():
        pytest.fail("the lock of the first test is missing", pytrace=False)
    store = world.root / "store"
    done = relock("vendor", "--lock", world.lock, "--store", store, "--apt-live",
                  env=world.env())
    assert done.exit_code == 0, done.output
    forget_base(second_host, read(world.lock))
    tag = f"relock-test-pipenv-offline:{uuid.uuid4().hex[:8]}"
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
