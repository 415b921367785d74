"""Issue 21, item 3 end to end: two platforms in one ``relock build``.

One raw BuildKit build of linux/amd64 and linux/arm64 (arm64 under qemu, as
scripts/testbed registers it) is pushed to the local registry as an image
index and frozen from there into one lock of both platforms. Then one
``relock build --platform linux/amd64,linux/arm64 --push`` builds both pinned
in one build, pushed and verified per platform from the registry; the same
build loaded into the engine (the containerd image store) is verified per
platform from ``docker save``; and a lock whose arm64 part differs fails
verify with a line naming linux/arm64.

Small on purpose (emulated arm64 is slow): the test bed's multi-platform
debian:trixie-slim through the local registry, pinned by its index digest,
one small APT package of each architecture (hello), a venv and one pure wheel
(six).
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relock.lock.lockfile import read, write
from tests.e2e.test_platforms_e2e import PLATFORMS, REPO, index_digest, relock

pytestmark = [pytest.mark.engine, pytest.mark.slow]

REGISTRY = "127.0.0.1:5000"
STEPS = ("RUN apt-get update && apt-get install -y --no-install-recommends "
         "hello python3-venv\n"
         "RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir six\n")


@pytest.fixture(scope="module")
def made(client: Any) -> Iterator[list[str]]:
    tags: list[str] = []
    yield tags
    for tag in reversed(tags):
        with contextlib.suppress(Exception):  # an image already gone is fine
            client.images.remove(tag, noprune=False)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("multiplat") / "Dockerfile.in"
    path.write_text(f"FROM {REPO}:trixie-slim@{index_digest()}\n{STEPS}")
    return path


@pytest.fixture(scope="module")
def lock(docker_engine: Any, template: Path) -> Path:
    """Both platforms built raw in one BuildKit build, pushed as an index, frozen from
    the registry into one lock."""
    from relock.build.enginebuild import build
    from relock.image.buildkit import select

    builds = select(docker_engine)
    if builds.platforms_problem(2, True):
        pytest.skip(f"no multi-platform BuildKit here: {builds.platforms_problem(2, True)}")
    raw = f"{REGISTRY}/relock-test/multiplat:raw-{uuid.uuid4().hex[:8]}"
    build(builds.pushing(), template.parent, template.name, tag=raw,
          platform=",".join(PLATFORMS))
    out = template.parent / "both.lock"
    r = relock("freeze", f"oci://{raw}", "-f", template, "-o", out)
    assert r.exit_code == 0, r.output
    assert read(out).platforms == PLATFORMS
    return out


def test_one_build_pushes_both_platforms_verified_each(lock: Path, template: Path) -> None:
    pinned = f"{REGISTRY}/relock-test/multiplat:pinned-{uuid.uuid4().hex[:8]}"
    r = relock("build", "-f", template, "--lock", lock, "--platform", ",".join(PLATFORMS),
               "--push", "-t", pinned, "-q")
    assert r.exit_code == 0, r.output
    assert "in one build with BuildKit" in r.stderr and f"pushed to {pinned.rsplit(':', 1)[0]}" \
        in r.stderr
    for platform in PLATFORMS:
        assert f"verifying the {platform} image" in r.stderr
    assert "matches" in r.stdout
    # One index of both, in the registry; verify of it checks each platform.
    from relock.image.registrysource import RegistrySource

    assert RegistrySource().platforms(f"oci://{pinned}") == sorted(PLATFORMS)
    r = relock("verify", f"oci://{pinned}", "--lock", lock)
    assert r.exit_code == 0, r.output
    # A lock whose arm64 part says another hello: that platform drifts, named.
    got = read(lock)
    apt = tuple(dataclasses.replace(p, version=p.version + "+other")
                if p.name == "hello" and p.platform == "linux/arm64" else p for p in got.apt)
    other = lock.parent / "other.lock"
    write(dataclasses.replace(got, apt=apt), other)
    r = relock("verify", f"oci://{pinned}", "--lock", other)
    assert r.exit_code == 1, r.output
    drift = [line for line in r.stdout.splitlines() if line.startswith("  ")]
    assert drift and all("[linux/arm64]" in line for line in drift), r.stdout
    assert any(line.strip().startswith("apt hello:") for line in drift), r.stdout


def test_one_build_loads_both_platforms_verified_each(lock: Path, template: Path,
                                                      made: list[str], client: Any) -> None:
    tag = f"relock-test-multiplat:loaded-{uuid.uuid4().hex[:8]}"
    made.append(tag)
    r = relock("build", "-f", template, "--lock", lock, "--platform", "all", "-t", tag, "-q")
    assert r.exit_code == 0, r.output
    assert "loaded into the engine" in r.stderr
    for platform in PLATFORMS:
        assert f"verifying the {platform} image" in r.stderr
    # relock verify of the engine's image reads each platform of it.
    r = relock("verify", tag, "--lock", lock)
    assert r.exit_code == 0, r.output
    assert all(f"verifying the {p} image" in r.stderr for p in PLATFORMS), r.stderr
    other = lock.parent / "other.lock"
    if other.exists():
        r = relock("verify", tag, "--lock", other)
        assert r.exit_code == 1 and "[linux/arm64]" in r.stdout, r.output


def test_a_reproducible_build_of_both_platforms_records_and_reproduces_each(
        lock: Path, template: Path, made: list[str]) -> None:
    """Pushed twice: the first records each platform's digests, the second gives them
    again; loaded into the engine (an OCI archive, docker load): the same images."""
    import shutil

    pinned = template.parent / "reproducible.lock"
    shutil.copyfile(lock, pinned)
    name = f"{REGISTRY}/relock-test/multiplat"
    r = relock("build", "-f", template, "--lock", pinned, "--platform", "all", "--push",
               "--reproducible", "-t", f"{name}:rep-{uuid.uuid4().hex[:8]}", "-q")
    assert r.exit_code == 0, r.output
    recorded = {d.platform: (d.config, d.manifest) for d in read(pinned).image}
    assert sorted(recorded) == sorted(PLATFORMS)
    for platform in PLATFORMS:
        assert f"recorded {recorded[platform][1]} (config {recorded[platform][0]}) for " \
               f"{platform} in {pinned}" in r.stdout, r.stdout
    r = relock("build", "-f", template, "--lock", pinned, "--platform", "all", "--push",
               "--reproducible", "-t", f"{name}:rep-{uuid.uuid4().hex[:8]}", "-q")
    assert r.exit_code == 0, r.output
    for platform in PLATFORMS:
        assert f"reproduced {recorded[platform][1]} for {platform}, as {pinned} says" \
            in r.stdout, r.stdout
    # Loaded into the engine against a lock of its own: the same images as pushed.
    loaded = template.parent / "loaded.lock"
    shutil.copyfile(lock, loaded)
    tag = f"relock-test-multiplat:rep-{uuid.uuid4().hex[:8]}"
    made.append(tag)
    r = relock("build", "-f", template, "--lock", loaded, "--platform", "all",
               "--reproducible", "-t", tag, "-q")
    assert r.exit_code == 0, r.output
    got = {d.platform: (d.config, d.manifest) for d in read(loaded).image}
    assert got == recorded, (got, recorded)
