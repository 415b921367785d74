"""The project's own package, installed from the build context, locked and rebuilt pinned
(issue 23): ``pip install .`` of a setuptools project and of a hatchling project, and
``pip install -e .``, each with a dependency from the index; and a dependency the
index has as an sdist only (pip builds it with setuptools).

The image cannot show what building them took (pip's isolated build environment is
thrown away): freeze finds each project's ``pyproject.toml`` in the context and locks
its ``[build-system] requires`` with their dependencies as build requirements. The
pinned build gets setuptools and hatchling from the locked view alone; then ``relock
vendor`` and the same pinned build on the offline second host from the store.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relock.lock.lockfile import read
from tests.conftest import SecondHost
from tests.e2e.pyindex import image_pip_wheels, publish_wheel, pypiserver
from tests.e2e.test_build_faults import relock
from tests.e2e.test_vendor_e2e import vendor_and_build_offline

pytestmark = [pytest.mark.engine, pytest.mark.slow]

TEMPLATE = """\
FROM debian:trixie-slim
ARG INDEX
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
COPY . /src
RUN /opt/venv/bin/pip install --no-cache-dir --index-url "$INDEX" /src/stapp
RUN cd /src/hatchapp && /opt/venv/bin/pip install --no-cache-dir --index-url "$INDEX" .
RUN /opt/venv/bin/pip install --no-cache-dir --index-url "$INDEX" -e /src/editapp
RUN /opt/venv/bin/pip install --no-cache-dir --index-url "$INDEX" hx-sd
"""

PROJECTS = {
    "stapp": ('[project]\nname = "stapp"\nversion = "3.1.1"\ndependencies = ["hx-b"]\n'
              '[build-system]\nrequires = ["setuptools>=61"]\n'
              'build-backend = "setuptools.build_meta"\n', "stapp/__init__.py"),
    "hatchapp": ('[project]\nname = "hatchapp"\nversion = "0.4.0"\n'
                 '[build-system]\nrequires = ["hatchling"]\n'
                 'build-backend = "hatchling.build"\n', "src/hatchapp/__init__.py"),
    "editapp": ('[project]\nname = "editapp"\nversion = "1.0"\n'
                '[build-system]\nrequires = ["setuptools>=64"]\n'
                'build-backend = "setuptools.build_meta"\n', "editapp/__init__.py"),
}


def publish_sdist(folder: Path, name: str, version: str) -> Path:
    """An sdist of a setuptools project, no wheel beside it, byte for byte reproducible."""
    top = f"{name}-{version}"
    files = {f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{top}/pyproject.toml": (f'[project]\nname = "{name}"\nversion = "{version}"\n'
                                       '[build-system]\nrequires = ["setuptools>=61"]\n'
                                       'build-backend = "setuptools.build_meta"\n'),
             f"{top}/{name}/__init__.py": f"VERSION = {version!r}\n"}
    out = folder / f"{top}.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, text in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(text.encode()), 1704067200
            tar.addfile(info, io.BytesIO(text.encode()))
    out.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return out


@dataclass
class World:
    root: Path
    context: Path
    index: str
    lock: Path
    raw: str
    made: list[str]

    def env(self) -> dict[str, str | None]:
        return {"PIP_INDEX_URL": self.index, "PIP_CONFIG_FILE": os.devnull,
                "XDG_CACHE_HOME": str(self.root / "cache")}


@pytest.fixture(scope="module")
def world(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import docker

    root = tmp_path_factory.mktemp("ownpkg")
    packages = root / "packages"
    publish_wheel(packages, "hx-b", "1.0")
    publish_sdist(packages, "hx_sd", "1.0")
    # The build backends, from the index pip is configured with here.
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                          "--only-binary=:all:", "--dest", str(packages), "setuptools",
                          "hatchling"], capture_output=True, text=True, check=False)
    assert got.returncode == 0, got.stderr[-2000:]
    image_pip_wheels(client, packages, f"relock-test-ownpkg-probe:{uuid.uuid4().hex[:8]}")
    context = root / "ctx"
    for name, (pyproject, module) in PROJECTS.items():
        (context / name / module).parent.mkdir(parents=True)
        (context / name / "pyproject.toml").write_text(pyproject)
        (context / name / module).write_text(f"NAME = {name!r}\n")
    (context / "Dockerfile.in").write_text(TEMPLATE)
    made: list[str] = []
    with pypiserver(packages) as index:
        raw = f"relock-test-ownpkg-raw:{uuid.uuid4().hex[:8]}"
        made.append(raw)
        done = subprocess.run(["docker", "build", "--network", "host", "-t", raw,
                               "--build-arg", f"INDEX={index}", "-f",
                               str(context / "Dockerfile.in"), str(context)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        yield World(root, context, index, root / "app.lock", raw, made)
    for tag in made:
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(tag, force=True)


def test_the_own_packages_are_locked_with_their_build_requirements(world: World) -> None:
    frozen = relock("freeze", world.raw, "-f", world.context / "Dockerfile.in", "-o",
                    world.lock, env=world.env())
    assert frozen.exit_code == 0, frozen.output
    lock = read(world.lock)
    kinds = {(p.name, p.kind) for p in lock.pip}
    assert {("stapp", "context"), ("hatchapp", "context"), ("editapp", "context"),
            ("hx-b", ""), ("hx-sd", ""), ("setuptools", "build"), ("hatchling", "build")
            } <= kinds, kinds
    own = {p.name: p for p in lock.pip if p.kind == "context"}
    assert all(len(p.hashes) == 1 for p in own.values())  # the RECORD of what was built
    build = [p for p in lock.pip if p.kind == "build"]
    assert all(p.hashes for p in build)
    assert "built from the build context" in frozen.stderr
    assert "the distributions pip built from an sdist" in frozen.stderr


def test_the_pinned_build_builds_them_from_the_view(world: World, client: Any) -> None:
    pinned = f"relock-test-ownpkg-pinned:{uuid.uuid4().hex[:8]}"
    world.made.append(pinned)
    done = relock("build", "-f", world.context / "Dockerfile.in", "--lock", world.lock,
                  "-t", pinned, "--build-arg", f"INDEX={world.index}", "--no-cache",
                  env=world.env())
    assert done.exit_code == 0, done.output
    assert f"{pinned} matches" in done.output
    said = client.containers.run(pinned, ["/opt/venv/bin/python", "-c",
                                 "import stapp, hatchapp, editapp, hx_b, hx_sd; print('ok')"],
                                 remove=True, network_mode="none")
    assert said.strip() == b"ok"
    diffed = relock("diff", world.raw, pinned, env=world.env())
    assert diffed.exit_code == 0, diffed.output


def test_the_pinned_build_again_on_the_offline_host_from_the_store(
        world: World, second_host: SecondHost) -> None:
    vendor_and_build_offline(second_host, world.context, world.lock, world.root, world.env(),
                             "--build-arg", f"INDEX={world.index}")
