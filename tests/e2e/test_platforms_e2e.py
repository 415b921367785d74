"""Issues 14 and 21 end to end: one lock for linux/amd64 and linux/arm64, and one
pinned build of both (arm64 under emulation: qemu, registered by scripts/testbed),
pushed and loaded, each platform verified.

Small on purpose: one tiny APT package of every architecture (netbase, all),
an architecture-specific one (hello), and a venv with one pure wheel (six).
The base is the test bed's multi-platform debian:trixie-slim, named through
the local registry (127.0.0.1:5000/library/debian) and pinned by its index
digest, so that arm64 pulls never touch the engine's debian:trixie-slim that
other tests use.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relock.cli import cli
from relock.lock.lockfile import read, to_toml, write
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.engine

REPO = "127.0.0.1:5000/library/debian"
PLATFORMS = ("linux/amd64", "linux/arm64")


def relock(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def index_digest() -> str:
    """The digest of the local registry's debian:trixie-slim, if it is an image index."""
    import requests

    accept = ("application/vnd.oci.image.index.v1+json, "
              "application/vnd.docker.distribution.manifest.list.v2+json")
    try:
        r = requests.get("http://127.0.0.1:5000/v2/library/debian/manifests/trixie-slim",
                         headers={"Accept": accept}, timeout=10)
    except requests.RequestException as e:
        skip_or_fail(f"no local registry ({e}); run scripts/testbed")
    if r.status_code != 200 or "manifests" not in r.json():
        skip_or_fail("debian:trixie-slim is not multi-platform in the local registry; "
                     "run scripts/testbed")
    return str(r.headers["Docker-Content-Digest"])


@pytest.fixture(scope="module")
def made(client: Any) -> Iterator[list[str]]:
    tags: list[str] = []
    yield tags
    for tag in reversed(tags):
        with contextlib.suppress(Exception):  # an image already gone is fine
            client.images.remove(tag, noprune=False)


STEPS = ("RUN apt-get update && apt-get install -y --no-install-recommends "
         "netbase hello python3-venv\n"
         "RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir six\n")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template, its base pinned by the index digest (the same for every platform).

    Beside it, the same steps from the tag, for the first, unpinned builds:
    this engine (the classic builder) keeps a digest for one platform's image
    only, so those builds pull the tag for their platform instead.
    """
    context = tmp_path_factory.mktemp("platforms")
    path = context / "Dockerfile.in"
    path.write_text(f"FROM {REPO}:trixie-slim@{index_digest()}\n{STEPS}")
    (context / "unpinned.Dockerfile").write_text(f"FROM {REPO}:trixie-slim\n{STEPS}")
    return path


@pytest.fixture(scope="module")
def images(docker_engine: Any, template: Path, made: list[str]) -> dict[str, str]:
    """Both platforms built (unpinned): their tags by platform, by relock's builder
    (BuildKit: the classic builder on the containerd image store builds the host's)."""
    from relock.build.enginebuild import build
    from relock.image.buildkit import select

    name = f"relock-test-platforms:{uuid.uuid4().hex[:8]}"
    tags = {}
    for platform in PLATFORMS:
        tag = f"{name}-{platform.rsplit('/', 1)[1]}"
        made.append(tag)
        build(select(docker_engine), template.parent, "unpinned.Dockerfile", tag=tag,
              platform=platform, pull=True)
        tags[platform] = tag
    return tags


@pytest.fixture(scope="module")
def lock(images: dict[str, str], template: Path) -> Path:
    """Both platforms' images frozen from the engine into one lock."""
    out = template.parent / "both.lock"
    for platform, tag in images.items():
        r = relock("freeze", tag, "-f", template, "--platform", platform, "-o", out)
        assert r.exit_code == 0, r.output
    return out


def test_the_registry_names_each_platform_s_manifest() -> None:
    from relock.errors import ImagePlatformError
    from relock.image.platforms import manifest_digest

    ref = f"{REPO}:trixie-slim"
    index = index_digest()
    amd64 = manifest_digest(ref, index, "linux/amd64")
    arm64 = manifest_digest(ref, index, "linux/arm64")
    assert len({index, amd64, arm64}) == 3
    assert manifest_digest(ref, arm64, "linux/arm64") == ""  # a single manifest: nothing to choose
    with pytest.raises(ImagePlatformError, match="has no linux/s390x image"):
        manifest_digest(ref, index, "linux/s390x")


def test_a_platform_manifest_is_lifted_to_the_index_its_tag_names(client: Any) -> None:
    """An engine that pulled a platform's manifest records that digest; a lock
    for several platforms names the tag's index instead. A Docker Hub name is
    asked of the engine's registry mirror, as the engine pulls it."""
    from relock.image.platforms import manifest_digest, tag_index

    ref = f"{REPO}:trixie-slim"
    index = index_digest()
    arm64 = manifest_digest(ref, index, "linux/arm64")
    assert tag_index(ref, arm64, "linux/arm64") == index
    assert tag_index(ref, arm64, "linux/amd64") == ""  # not that platform's manifest
    assert tag_index(f"{REPO}@{arm64}", arm64, "linux/arm64") == ""  # no tag to ask
    mirrors = ["http://127.0.0.1:5000"]
    assert tag_index("debian:trixie-slim", arm64, "linux/arm64", mirrors) == index
    assert manifest_digest("debian:trixie-slim", index, "linux/arm64", mirrors) == arm64


@pytest.mark.slow
def test_one_lock_holds_both_platforms(lock: Path) -> None:
    got = read(lock)
    assert got.platforms == PLATFORMS and got.version == 2
    hello = {(p.platform, p.arch) for p in got.apt if p.name == "hello"}
    assert hello == {("linux/amd64", "amd64"), ("linux/arm64", "arm64")}
    netbase = {(p.platform, p.arch) for p in got.apt if p.name == "netbase"}
    assert netbase == {("linux/amd64", "all"), ("linux/arm64", "all")}
    for platform in PLATFORMS:
        part = got.for_platform(platform)
        assert part.base[0].manifest and part.base[0].manifest != part.base[0].digest
        assert [p.name for p in part.pip if p.name == "six"] == ["six"]
        assert all(p.sha256 for p in part.apt if not p.stage), platform


@pytest.mark.slow
def test_one_build_of_both_platforms_pushed_then_loaded_each_verified_and_reproduced(
        docker_engine: Any, lock: Path, template: Path, made: list[str]) -> None:
    """Issue 21's one command for every platform (and 22's digests per platform): one
    ``relock build --platform all --push --reproducible`` builds the pinned amd64 and
    arm64 (emulated) images in one BuildKit build, pushes the index, verifies each
    platform from the registry and records each one's digests; the same build loaded
    into the engine (the containerd image store) gives those digests again and its
    image verifies per platform. A lock whose arm64 part differs names linux/arm64."""
    import dataclasses
    import shutil

    from relock.image.buildkit import select
    from relock.image.registrysource import RegistrySource

    problem = select(docker_engine).platforms_problem(2, False)
    if problem:
        pytest.skip(f"no multi-platform BuildKit build loaded here: {problem}")
    pinned = template.parent / "reproducible.lock"
    shutil.copyfile(lock, pinned)
    pushed = f"127.0.0.1:5000/relock-test/platforms:pinned-{uuid.uuid4().hex[:8]}"
    r = relock("build", "-f", template, "--lock", pinned, "--platform", "all", "--push",
               "--reproducible", "-t", pushed, "-q")
    assert r.exit_code == 0, r.output
    assert "in one build with BuildKit" in r.stderr, r.stderr
    assert f"pushed to {pushed.rsplit(':', 1)[0]}" in r.stderr, r.stderr
    assert all(f"verifying the {p} image" in r.stderr for p in PLATFORMS), r.stderr
    assert "matches" in r.stdout
    recorded = {d.platform: (d.config, d.manifest) for d in read(pinned).image}
    assert sorted(recorded) == sorted(PLATFORMS)
    assert len({m for _, m in recorded.values()}) == 2  # two images, not one twice
    for platform, (config, manifest) in recorded.items():
        assert f"recorded {manifest} (config {config}) for {platform} in {pinned}" \
            in r.stdout, r.stdout
    assert RegistrySource().platforms(f"oci://{pushed}") == sorted(PLATFORMS)
    # A lock whose arm64 part says another hello: that platform drifts, named.
    got = read(lock)
    other = template.parent / "other.lock"
    write(dataclasses.replace(got, apt=tuple(
        dataclasses.replace(p, version=p.version + "+other")
        if p.name == "hello" and p.platform == "linux/arm64" else p for p in got.apt)), other)
    r = relock("verify", f"oci://{pushed}", "--lock", other)
    assert r.exit_code == 1, r.output
    drift = [line for line in r.stdout.splitlines() if line.startswith("  ")]
    assert drift and all("[linux/arm64]" in line for line in drift), r.stdout
    assert any(line.strip().startswith("apt hello:") for line in drift), r.stdout
    # Loaded into the engine: the same two images, and verify reads each of them.
    tag = f"relock-test-platforms:pinned-{uuid.uuid4().hex[:8]}"
    made.append(tag)
    r = relock("build", "-f", template, "--lock", pinned, "--platform", "all",
               "--reproducible", "-t", tag, "-q")
    assert r.exit_code == 0, r.output
    assert "loaded into the engine" in r.stderr, r.stderr
    for platform, (_, manifest) in recorded.items():
        assert f"reproduced {manifest} for {platform}, as {pinned} says" in r.stdout, r.stdout
    r = relock("verify", tag, "--lock", lock)
    assert r.exit_code == 0, r.output
    assert all(f"verifying the {p} image" in r.stderr for p in PLATFORMS), r.stderr
    r = relock("verify", tag, "--lock", other)
    assert r.exit_code == 1 and "[linux/arm64]" in r.stdout, r.output


@pytest.mark.slow
def test_amd64_only_lock_built_for_arm64_stops_before_any_step(
        lock: Path, template: Path, made: list[str], client: Any) -> None:
    amd64 = template.parent / "amd64.lock"
    write(read(lock).for_platform("linux/amd64"), amd64)
    tag = f"relock-test-platforms:never-{uuid.uuid4().hex[:8]}"
    r = relock("build", "-f", template, "--lock", amd64, "--platform", "linux/arm64",
               "-t", tag)
    assert r.exit_code == 2
    assert "the lock has no linux/arm64 part (it holds linux/amd64)" in r.stderr
    assert "Step " not in r.output
    assert not client.images.list(name=tag)


@pytest.mark.slow
def test_freeze_of_an_index_in_a_registry(images: dict[str, str], lock: Path, template: Path,
                                          made: list[str], client: Any) -> None:
    """Both images pushed, an index put over them: one freeze from the registry gives
    the lock the engine freezes of each platform's image gave, byte for byte."""
    import json

    from relock.upstream import registry as reg

    repo = f"relock-test-index-{uuid.uuid4().hex[:8]}"
    entries = []
    registry = reg.registry_for("127.0.0.1:5000")
    for platform, tag in images.items():
        arch = platform.rsplit("/", 1)[1]
        pushed = f"127.0.0.1:5000/{repo}:{arch}"
        client.images.get(tag).tag(pushed)
        made.append(pushed)
        out = client.images.push(f"127.0.0.1:5000/{repo}", tag=arch)
        assert '"error"' not in out, out
        m = registry.manifest(repo, arch)
        entries.append({"mediaType": m.media_type, "digest": m.digest, "size": len(m.data),
                        "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": reg.DOCKER_LIST,
                        "manifests": entries}).encode()
    registry.push_manifest(repo, "both", reg.DOCKER_LIST, index)
    out = template.parent / "registry.lock"
    r = relock("freeze", f"oci://127.0.0.1:5000/{repo}:both", "-f", template, "-o", out)
    assert r.exit_code == 0, r.output
    got, want = read(out), read(lock)
    assert got.platforms == PLATFORMS
    for platform in PLATFORMS:
        assert got.for_platform(platform) == want.for_platform(platform), platform
    assert to_toml(got) == to_toml(want)
    # One platform chosen: its part alone, as an engine freeze of that image gives.
    r = relock("freeze", f"oci://127.0.0.1:5000/{repo}:both", "-f", template,
               "--platform", "linux/arm64", "-o", template.parent / "arm64.lock")
    assert r.exit_code == 0, r.output
    assert read(template.parent / "arm64.lock") == want.for_platform("linux/arm64")


def test_apt_of_each_platform_takes_its_own_part_from_the_view(
        docker_engine: Any, client: Any, tmp_path: Path) -> None:
    """One view of a two-platform lock, the rendered RUN prefix, and real apt in an
    amd64 and an arm64 (emulated) container of the base: each installs its own
    platform's versions, an ``all`` package that differs included."""
    import hashlib

    from relock.build.view import AptFile, LockedView, deb_control
    from relock.image.platforms import manifest_digest
    from relock.lock.lockfile import AptPackage
    from relock.template import render
    from tests.factories import make_lock
    from tests.support.aptarchive import Deb, build_deb

    versions = {"amd64": ("1.0-1", "2.0-1"), "arm64": ("1.0-1+b1", "2.0-2")}
    files: dict[str, list[AptFile]] = {}
    for arch, (own, data) in versions.items():
        files[arch] = []
        for deb in (Deb("relock-hello", own, arch=arch), Deb("relock-data", data)):
            folder = tmp_path / arch
            folder.mkdir(exist_ok=True)
            path = build_deb(deb, folder)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            package = AptPackage(deb.name, deb.version, deb.arch, sha256=sha,
                                 filename=path.name)
            files[arch].append(AptFile(package, path, deb_control(path)))
    parts = [make_lock(platform=f"linux/{arch}", apt=tuple(f.package for f in fs))
             for arch, fs in files.items()]
    lock = parts[0].with_part(parts[1])
    view = LockedView([f for fs in files.values() for f in fs], lock, None)
    index = index_digest()
    with view.serve() as server:
        prefix = render.view_prefix(server.url, render.view_id(lock), per_arch=lock.multi)
        script = (f"{prefix} apt-get update -qq && apt-get install -y -qq --no-install-recommends"
                  " relock-hello relock-data >/dev/null"
                  " && dpkg-query -W -f '${Package} ${Version} ${Architecture}\\n'"
                  " relock-hello relock-data")
        for arch, (own, data) in versions.items():
            image = docker_engine.pull(
                f"{REPO}@{manifest_digest(f'{REPO}:trixie-slim', index, f'linux/{arch}')}")
            out = client.containers.run(image.id, ["sh", "-c", script], network_mode="host",
                                        remove=True, entrypoint=[]).decode()
            assert sorted(out.split("\n")[:-1]) == [f"relock-data {data} all",
                                                    f"relock-hello {own} {arch}"], arch
