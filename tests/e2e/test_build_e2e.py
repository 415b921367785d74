"""End to end on real images: build, freeze, ``relock build``, ``relock verify``.

For a trixie and a bookworm base, an ordinary build of a Dockerfile.in with
APT packages (from Debian's archive) and pip packages in a venv (from the
Python index) is frozen; ``relock build --apt-live`` then rebuilds it pinned
(Debian's snapshot service is not reachable from the test bed, so APT reads
the live archive with every version pinned). The two images must hold the
same APT and pip sets, as the images themselves report them (dpkg-query and
pip run inside), and sit on the same base digest.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relock.cli import cli
from relock.lockfile import Lock, read
from tests.conftest import BuildImage, run_in

pytestmark = [pytest.mark.engine, pytest.mark.slow]

APT_WANTED = ("ca-certificates", "python3-venv", "tini")
PIP_WANTED = ("six", "idna")


def dockerfile_in(codename: str) -> str:
    return (
        f"FROM debian:{codename}-slim\n"
        "RUN apt-get update \\\n"
        f" && apt-get install -y --no-install-recommends {' '.join(APT_WANTED)} \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        "RUN python3 -m venv /opt/venv \\\n"
        f" && /opt/venv/bin/pip install --no-cache-dir {' '.join(PIP_WANTED)}\n"
        "ENV PATH=/opt/venv/bin:$PATH\n"
    )


def relock(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@dataclass
class Rebuilt:
    """An unpinned image, its lock, and the image ``relock build`` made from that lock."""

    codename: str
    context: Path
    lock_path: Path
    unpinned: str
    pinned: str
    build: Result

    @property
    def lock(self) -> Lock:
        return read(self.lock_path)


@pytest.fixture(scope="module", params=["trixie", "bookworm"])
def rebuilt(request: pytest.FixtureRequest, client: Any, build_image: BuildImage,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rebuilt]:
    codename = str(request.param)
    root = tmp_path_factory.mktemp(codename)
    context = root / "ctx"
    unpinned = build_image(context, dockerfile_in(codename), name=f"e2e-{codename}")
    lock_path = root / f"{codename}.lock"
    frozen = relock("freeze", unpinned, "-f", context / "Dockerfile.in", "-o", lock_path)
    assert frozen.exit_code == 0, frozen.output
    pinned = f"relock-test-e2e-{codename}-pinned:{uuid.uuid4().hex[:8]}"
    built = relock("build", "-f", context / "Dockerfile.in", "--lock", lock_path,
                   "--apt-live", "-t", pinned, "-q")
    try:
        yield Rebuilt(codename, context, lock_path, unpinned, pinned, built)
    finally:
        from docker.errors import DockerException

        with contextlib.suppress(DockerException):
            client.images.remove(pinned, force=True)


def apt_set(client: Any, image: str) -> set[str]:
    out = run_in(client, image, ["dpkg-query", "-W", "-f",
                                 "${binary:Package} ${Version} ${db:Status-Status}\n"])
    return {line for line in out.splitlines() if line.endswith(" installed")}


def pip_set(client: Any, image: str) -> set[str]:
    out = run_in(client, image, ["/opt/venv/bin/python", "-m", "pip", "list", "--format=json",
                                 "--disable-pip-version-check"])
    return {f"{d['name'].lower()}=={d['version']}" for d in json.loads(out)}


def test_lock_records_the_image(client: Any, rebuilt: Rebuilt) -> None:
    lock = rebuilt.lock
    assert lock.distro.codename == rebuilt.codename
    base_ref = f"debian:{rebuilt.codename}-slim"
    repo_digests = client.images.get(base_ref).attrs["RepoDigests"]
    assert [(b.ref, f"debian@{b.digest}") for b in lock.base] == [(base_ref, repo_digests[0])]
    apt = {p.name for p in lock.apt}
    assert set(APT_WANTED) <= apt
    pip = {p.name: p for p in lock.pip if p.env == "/opt/venv"}
    assert set(PIP_WANTED) <= set(pip)
    assert all(p.hashes for p in pip.values())


def test_pinned_build_renders_pins_and_verifies(client: Any, rebuilt: Rebuilt) -> None:
    assert rebuilt.build.exit_code == 0, rebuilt.build.output
    assert f"{rebuilt.pinned} matches {rebuilt.lock_path}" in rebuilt.build.stdout
    lock = rebuilt.lock
    pinned = (rebuilt.context / "Dockerfile").read_text()
    assert f"FROM debian:{rebuilt.codename}-slim@{lock.base[0].digest}\n" in pinned
    versions = {p.name: p.version for p in lock.apt}
    for name in APT_WANTED:
        assert f"{name}={versions[name]}" in pinned
    requirements = (rebuilt.context / "relock.d/pip/opt-venv.txt").read_text()
    for p in lock.pip:
        assert f"{p.name}=={p.version} --hash=" in requirements

    verified = relock("verify", rebuilt.pinned, "--lock", rebuilt.lock_path)
    assert verified.exit_code == 0, verified.output
    assert verified.stdout == f"{rebuilt.pinned} matches {rebuilt.lock_path}\n"


def test_apt_sets_identical(client: Any, rebuilt: Rebuilt) -> None:
    unpinned = apt_set(client, rebuilt.unpinned)
    assert set(APT_WANTED) <= {line.split(" ")[0].split(":")[0] for line in unpinned}
    assert apt_set(client, rebuilt.pinned) == unpinned


def test_pip_sets_identical(client: Any, rebuilt: Rebuilt) -> None:
    unpinned = pip_set(client, rebuilt.unpinned)
    assert set(PIP_WANTED) <= {s.split("==")[0] for s in unpinned}
    assert pip_set(client, rebuilt.pinned) == unpinned
    locked = {f"{p.name}=={p.version}" for p in rebuilt.lock.pip if p.env == "/opt/venv"}
    assert locked == unpinned


def test_same_base_digest(client: Any, rebuilt: Rebuilt) -> None:
    digest = rebuilt.lock.base[0].digest
    base = client.images.get(f"debian@{digest}").attrs["RootFS"]["Layers"]
    for image in (rebuilt.unpinned, rebuilt.pinned):
        layers = client.images.get(image).attrs["RootFS"]["Layers"]
        assert layers[: len(base)] == base, image
