"""Tools' own locks whose source is an https index, built pinned (issue 23):
``pipenv install --system --deploy`` from a Pipfile.lock (``--deploy`` forbids changing
its source, so the view must answer it) and ``poetry install`` from a poetry.lock (poetry
asks that source for each package's links and checks the lock's hashes).

The source is the loopback https upstream of ``test_hermetic_e2e`` (it counts requests);
the tool itself comes from relock's index (poetry: 51 wheels). Raw build, freeze, pinned
build (the upstream hears nothing), diff exit 0, then the pinned build on the offline
second host from a store.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relock.lock.lockfile import read
from tests.conftest import SecondHost
from tests.e2e.pyindex import image_pip_wheels, publish_wheel, pypiserver
from tests.e2e.test_build_faults import relock
from tests.e2e.test_hermetic_e2e import Upstream, https_upstream
from tests.e2e.test_vendor_e2e import vendor_and_build_offline

pytestmark = [pytest.mark.engine, pytest.mark.slow]

HEAD = """\
FROM debian:trixie-slim
ARG INDEX
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv \\
 && rm -rf /var/lib/apt/lists/*
"""

PIPENV = HEAD + """\
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

POETRY = HEAD + """\
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

# poetry's wheels for the image's Python (3.13), some of them compiled.
FOR_THE_IMAGE = ("--python-version", "3.13", "--implementation", "cp", "--abi", "cp313",
                 "--abi", "abi3", "--abi", "none", "--platform", "manylinux_2_28_x86_64",
                 "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                 "--platform", "any")


def pipenv_project(context: Path, source: str, root: Path) -> tuple[list[str], dict[str, str]]:
    (context / "Pipfile").write_text(
        f'[[source]]\nurl = "{source}"\nverify_ssl = true\nname = "upstream"\n\n'
        '[packages]\nhx-a = "*"\n')
    return ["lock"], {"PIPENV_VENV_IN_PROJECT": "1", "PIP_CONFIG_FILE": os.devnull,
                      "PIPENV_NOSPIN": "1", "PIPENV_CACHE_DIR": str(root / "pipenv-cache")}


def poetry_project(context: Path, source: str, root: Path) -> tuple[list[str], dict[str, str]]:
    (context / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["hx-a"]\n\n[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "upstream"\nurl = "{source}/"\n'
        'priority = "primary"\n')
    return ["lock", "--no-interaction"], {
        "POETRY_CACHE_DIR": str(root / "poetry-cache"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


@dataclass(frozen=True)
class Tool:
    name: str
    template: str
    download: tuple[str, ...]  # pip download's options for the tool's wheels
    project: Callable[[Path, str, Path], tuple[list[str], dict[str, str]]]  # -> lock command
    lock_file: str
    shows: str  # what the tool's lock file must hold ({source}: the https index)


TOOLS = {"pipenv": Tool("pipenv", PIPENV, (), pipenv_project, "Pipfile.lock", "{source}"),
         "poetry": Tool("poetry", POETRY, FOR_THE_IMAGE, poetry_project, "poetry.lock",
                        'name = "hx-a"')}


@dataclass
class World:
    tool: Tool
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


def host_tool(root: Path, name: str) -> Path:
    """``name`` on this host, in a venv of its own (from the index pip is configured with)."""
    from relock.upstream.index import pip_config

    uv = Path(sys.executable).with_name("uv")
    venv = root / f"{name}-tool"
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "UV_CACHE_DIR": str(root / "uv-cache")}
    for args in ([str(uv), "venv", "-q", str(venv)],
                 [str(uv), "pip", "install", "-q", "--index-url", pip_config().urls[0], name]):
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    return venv / "bin" / name


@pytest.fixture(scope="module", params=sorted(TOOLS))
def world(request: pytest.FixtureRequest, client: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import docker

    tool = TOOLS[request.param]
    root = tmp_path_factory.mktemp(tool.name)
    packages = root / "packages"
    publish_wheel(packages, "hx-a", "1.0", requires=["hx-b"])
    publish_wheel(packages, "hx-b", "1.0")
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                          "--only-binary=:all:", *tool.download, "--dest", str(packages),
                          tool.name], capture_output=True, text=True, check=False)
    assert got.returncode == 0, got.stderr[-2000:]
    image_pip_wheels(client, packages, f"relock-test-{tool.name}-probe:{uuid.uuid4().hex[:8]}")
    program = host_tool(root, tool.name)
    made: list[str] = []
    with https_upstream(packages) as upstream, pypiserver(packages) as index:
        context = root / "ctx"
        context.mkdir()
        ca = context / "upstream-ca.pem"
        ca.write_bytes(upstream.ca)
        (context / "Dockerfile.in").write_text(tool.template)
        source = f"{upstream.url}/simple"
        args, env = tool.project(context, source, root)
        locked = subprocess.run(
            [str(program), *args], cwd=context, capture_output=True, text=True, check=False,
            env={**os.environ, "REQUESTS_CA_BUNDLE": str(ca), "PIP_CERT": str(ca),
                 "SSL_CERT_FILE": str(ca), **env})
        assert locked.returncode == 0, locked.stdout[-1500:] + locked.stderr[-1500:]
        assert tool.shows.format(source=source) in (context / tool.lock_file).read_text()
        raw = f"relock-test-{tool.name}-raw:{uuid.uuid4().hex[:8]}"
        made.append(raw)
        done = subprocess.run(
            ["docker", "buildx", "build", "--network", "host", "--load", "-t", raw,
             "--build-arg", f"INDEX={index}", "--build-arg",
             "SSL_CERT_FILE=/run/upstream-ca.pem", "-f", str(context / "Dockerfile.in"),
             str(context)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        assert any("hx_a" in h for h in upstream.heard), upstream.heard
        yield World(tool, root, context, upstream, index, root / "app.lock", raw, made)
    for tag in made:
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(tag, force=True)


def test_a_tools_lock_with_an_https_source_builds_pinned(world: World) -> None:
    frozen = relock("freeze", world.raw, "-f", world.context / "Dockerfile.in", "-o",
                    world.lock, env=world.env())
    assert frozen.exit_code == 0, frozen.output
    names = {p.name for p in read(world.lock).pip}
    assert {"hx-a", "hx-b", world.tool.name} <= names, names
    world.upstream.heard.clear()
    pinned = f"relock-test-{world.tool.name}-pinned:{uuid.uuid4().hex[:8]}"
    world.made.append(pinned)
    done = relock("build", "-f", world.context / "Dockerfile.in", "--lock", world.lock,
                  "-t", pinned, "--builder", "buildkit", "--no-cache", "--build-arg",
                  f"INDEX={world.index}", env=world.env())
    assert done.exit_code == 0, done.output
    assert f"{pinned} matches" in done.output
    assert world.upstream.heard == []
    diffed = relock("diff", world.raw, pinned, env=world.env())
    assert diffed.exit_code == 0, diffed.output


def test_again_on_the_offline_host_from_the_store(world: World,
                                                  second_host: SecondHost) -> None:
    if not world.lock.exists():
        pytest.fail("the lock of the first test is missing", pytrace=False)
    vendor_and_build_offline(second_host, world.context, world.lock, world.root, world.env(),
                             "--builder", "buildkit", "--build-arg", f"INDEX={world.index}")
