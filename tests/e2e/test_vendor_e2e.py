"""Rebuild with nothing upstream: vendor on the first host, build on an offline second host.

On the test bed's engine a small image (APT packages, a venv with pip
installs) is built the ordinary way, frozen, and vendored into a folder
store. The second host (scripts/secondhost: its own dockerd and registry in a
network namespace with only loopback) cannot reach the Python index or
Debian's archive; relock runs there (in that namespace, DOCKER_HOST at its
engine, an empty cache) and rebuilds from the store alone: the base image is
published from the store into that host's registry with the same digest,
the build verifies, and the lock frozen from the second host's image has
the same APT and pip sets and base digest as the first host's. The same
again with the store in a registry (``oci://``), copied to the registry the
offline host can reach. Then the faults of a store: a missing blob and a
changed blob stop ``relock build --store`` before anything is built.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relock.cli import cli
from relock.lock.lockfile import Lock, read
from relock.store.store import DirStore, lock_tag, read_lock
from tests.conftest import BuildImage, SecondHost

pytestmark = [pytest.mark.engine, pytest.mark.slow]

REGISTRY = "127.0.0.1:5000"  # the test bed's registry here; the second host's in its namespace

SMALL = """\
FROM debian:trixie-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir six markupsafe
"""


def relock(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def on_second_host(host: SecondHost, cwd: Path, cache: Path, *args: object
                   ) -> subprocess.CompletedProcess[str]:
    """Run relock where the second host is: in its namespace, at its engine."""
    env = {**os.environ, "DOCKER_HOST": host.docker_host, "XDG_CACHE_HOME": str(cache)}
    # scripts/secondhost names the network namespace after the instance.
    netns = Path("/var/run/netns") / host.name
    return subprocess.run(["nsenter", f"--net={netns}", sys.executable, "-m", "relock",
                           *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False, timeout=900)


def vendor_and_build_offline(host: SecondHost, context: Path, lock_path: Path, root: Path,
                             env: dict[str, str | None], *flags: str) -> None:
    """``relock vendor`` of ``lock_path`` here into a folder store, then ``relock build
    --store`` of ``context/Dockerfile.in`` on the offline second host (its base forgotten
    there first): exit 0, and the image verified against the lock."""
    from tests.e2e.test_build_faults import relock as relock_with_env

    store = root / "store"
    done = relock_with_env("vendor", "--lock", lock_path, "--store", store, "--apt-live",
                           env=env)
    assert done.exit_code == 0, done.output
    forget_base(host, read(lock_path))
    tag = f"relock-test-offline:{uuid.uuid4().hex[:8]}"
    try:
        again = on_second_host(host, context, root / "cache2", "build", "-f",
                               context / "Dockerfile.in", "--lock", lock_path, "--store",
                               store, "-t", tag, "-q", "--no-cache", *flags)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"{tag} matches {lock_path}" in again.stdout
    finally:
        with contextlib.suppress(Exception):
            host.client.images.remove(tag, force=True)


@dataclass
class Vendored:
    context: Path
    image: str
    lock_path: Path
    store: Path

    @property
    def lock(self) -> Lock:
        return read(self.lock_path)


@pytest.fixture(scope="module")
def vendored(build_image: BuildImage, tmp_path_factory: pytest.TempPathFactory) -> Vendored:
    root = tmp_path_factory.mktemp("vendor")
    context = root / "ctx"
    image = build_image(context, SMALL, name="vendor-small")
    lock_path = root / "small.lock"
    frozen = relock("freeze", image, "-f", context / "Dockerfile.in", "-o", lock_path)
    assert frozen.exit_code == 0, frozen.output
    store = root / "store"
    done = relock("vendor", "--lock", lock_path, "--store", store, "--apt-live")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == lock_tag(lock_path.read_bytes())
    return Vendored(context, image, lock_path, store)


@dataclass
class Offline:
    """The second host, and the tags this module made on it."""

    host: SecondHost
    made: list[str]


@pytest.fixture(scope="module")
def offline(second_host: SecondHost) -> Iterator[Offline]:
    """The second host, checked to be the namespace this module runs relock in."""
    netns = Path("/var/run/netns") / second_host.name
    if not netns.exists() or os.geteuid() != 0:
        pytest.fail(f"relock runs on the second host through {netns}, as root", pytrace=False)
    found = Offline(second_host, [])
    yield found
    for ref in found.made:
        with contextlib.suppress(Exception):
            second_host.client.images.remove(ref, force=True)


def forget_base(host: SecondHost, lock: Lock) -> None:
    """Remove the locked base from the second engine, so the build must publish it."""
    for base in lock.base:
        for ref in (f"{base.ref}", f"{base.ref.split(':', 1)[0]}@{base.digest}"):
            with contextlib.suppress(Exception):
                host.client.images.remove(ref, force=True)


def endpoints(lock: Lock) -> set[tuple[str, int]]:
    from relock.upstream.index import pip_config

    urls = [u for s in lock.apt_sources for u in s.uris]
    urls += [u for u in pip_config().urls if u.startswith(("http://", "https://"))]
    out = set()
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname:
            out.add((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)))
    return out


PROBE = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        print(target, "ok")
    except OSError as e:
        print(target, type(e).__name__)
"""


def test_the_second_host_reaches_neither_index_nor_archive(vendored: Vendored,
                                                          offline: Offline) -> None:
    targets = endpoints(vendored.lock)
    assert len(targets) >= 2, targets  # the archive of the lock's sources, and the index
    for host, port in targets:  # each answers from here, so the probe can tell
        socket.create_connection((host, port), timeout=10).close()
    probe = [f"{h}:{p}" for h, p in sorted(targets)] + [REGISTRY]
    netns = Path("/var/run/netns") / offline.host.name
    seen = subprocess.run(["nsenter", f"--net={netns}", sys.executable, "-c", PROBE, *probe],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    verdict = dict(line.split(" ", 1) for line in seen if line)
    assert verdict.pop(REGISTRY) == "ok"
    assert all(v != "ok" for v in verdict.values()), verdict


def assert_same_contents(first: Lock, second: Lock) -> None:
    assert {(p.name, p.version, p.arch) for p in first.apt} == \
        {(p.name, p.version, p.arch) for p in second.apt}
    assert {(p.env, p.name, p.version) for p in first.pip} == \
        {(p.env, p.name, p.version) for p in second.pip}
    assert [b.digest for b in first.base] == [b.digest for b in second.base]


def rebuild_on_second_host(vendored: Vendored, offline: Offline, store: str,
                           tmp: Path) -> tuple[str, Path]:
    """``relock build --store`` there, then the lock of what it built (frozen there)."""
    host = offline.host
    lock = vendored.lock
    forget_base(host, lock)
    tag = f"relock-test-vendor-offline:{uuid.uuid4().hex[:8]}"
    offline.made.append(tag)
    built = on_second_host(host, vendored.context, tmp / "cache", "build", "--lock",
                           vendored.lock_path, "--store", store, "-t", tag, "-q",
                           "--no-cache")
    assert built.returncode == 0, built.stdout + built.stderr
    assert f"{tag} matches {vendored.lock_path}" in built.stdout
    assert "published base debian:trixie-slim@" in built.stderr
    # The template names debian:trixie-slim: a user of that host tags the base
    # they pulled; freeze reads the digest from the engine.
    base = lock.base[0]
    host.client.images.get(f"debian@{base.digest}").tag("debian", "trixie-slim")
    second = tmp / "second.lock"
    frozen = on_second_host(host, vendored.context, tmp / "cache", "freeze", tag, "-f",
                            vendored.context / "Dockerfile.in", "-o", second, "--no-index",
                            "--no-archive")
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr
    return tag, second


def test_rebuild_from_a_folder_store_on_the_offline_host(vendored: Vendored,
                                                        offline: Offline,
                                                        tmp_path: Path) -> None:
    _, second = rebuild_on_second_host(vendored, offline, str(vendored.store), tmp_path)
    assert_same_contents(vendored.lock, read(second))
    diff = relock("diff", vendored.lock_path, second)
    assert diff.exit_code == 0, diff.output


@pytest.fixture
def registry_store(vendored: Vendored) -> Iterator[str]:
    """The store vendored into the test bed's registry, in a fresh repository."""
    repo = f"relock-test-{uuid.uuid4().hex[:12]}/store"
    url = f"oci://{REGISTRY}/{repo}"
    done = relock("vendor", "--lock", vendored.lock_path, "--store", url, "--apt-live")
    assert done.exit_code == 0, done.output
    yield url
    _delete_tags(REGISTRY, repo)


def _delete_tags(host: str, repo: str) -> None:
    accept = "application/vnd.oci.image.manifest.v1+json, " \
             "application/vnd.docker.distribution.manifest.v2+json"
    with contextlib.suppress(OSError, ValueError):
        with urllib.request.urlopen(f"http://{host}/v2/{repo}/tags/list", timeout=10) as r:
            tags = json.loads(r.read()).get("tags") or []
        for tag in tags:
            head = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}",
                                          method="HEAD", headers={"Accept": accept})
            with urllib.request.urlopen(head, timeout=10) as r:
                digest = r.headers["Docker-Content-Digest"]
            delete = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{digest}",
                                            method="DELETE")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(delete, timeout=10).close()


def test_rebuild_from_a_registry_store_on_the_offline_host(vendored: Vendored,
                                                          offline: Offline,
                                                          registry_store: str,
                                                          tmp_path: Path) -> None:
    # The offline host cannot reach this registry: the store is carried over
    # (as a folder) into the registry it can reach, under the same name.
    carried = tmp_path / "carried"
    assert relock("store", "copy", registry_store, carried).exit_code == 0
    netns = Path("/var/run/netns") / offline.host.name
    pushed = subprocess.run(["nsenter", f"--net={netns}", sys.executable, "-m", "relock",
                             "store", "copy", str(carried), registry_store],
                            capture_output=True, text=True, check=False)
    assert pushed.returncode == 0, pushed.stderr
    _, second = rebuild_on_second_host(vendored, offline, registry_store, tmp_path)
    assert_same_contents(vendored.lock, read(second))


# -- faults of a store: found before anything is built ---------------------------------------

def broken_copy(vendored: Vendored, tmp: Path) -> tuple[Path, str, str]:
    """A copy of the store, and the blob path and "name version" of one of its .debs."""
    copy = tmp / "store"
    shutil.copytree(vendored.store, copy)
    _, files = read_lock(DirStore(copy), lock_tag(vendored.lock_path.read_bytes()))
    deb = next(f for f in files if f.kind == "deb")
    return copy, str(DirStore(copy).path(deb.digest)), f"{deb.name} {deb.version}"


def assert_stopped_before_the_build(result: Result, client: Any, tag: str) -> str:
    from docker.errors import ImageNotFound

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "serving the locked view" not in result.stderr
    with pytest.raises(ImageNotFound):
        client.images.get(tag)
    errors = [line for line in result.stderr.splitlines() if line.startswith("relock: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_blob_missing_from_the_store_stops_before_the_build(
        client: Any, vendored: Vendored, tmp_path: Path) -> None:
    store, blob, named = broken_copy(vendored, tmp_path)
    os.unlink(blob)
    tag = f"relock-test-vendor-missing:{uuid.uuid4().hex[:8]}"
    result = relock("build", "-f", vendored.context / "Dockerfile.in", "--lock",
                    vendored.lock_path, "--store", store, "-t", tag, "-q")
    line = assert_stopped_before_the_build(result, client, tag)
    assert "not in the store" in line and named in line


def test_a_changed_blob_is_refused_by_hash(client: Any, vendored: Vendored,
                                           tmp_path: Path) -> None:
    store, blob, named = broken_copy(vendored, tmp_path)
    data = bytearray(Path(blob).read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    Path(blob).write_bytes(bytes(data))
    tag = f"relock-test-vendor-changed:{uuid.uuid4().hex[:8]}"
    result = relock("build", "-f", vendored.context / "Dockerfile.in", "--lock",
                    vendored.lock_path, "--store", store, "-t", tag, "-q")
    line = assert_stopped_before_the_build(result, client, tag)
    assert named in line and "refused" in line


SYNTAX = """\
# syntax=docker/dockerfile:1
FROM debian:trixie-slim
RUN --mount=type=cache,target=/tmp/cache echo offline > /etc/relock-frontend
"""


def test_a_syntax_template_builds_offline_with_the_frontend_from_the_store(
        offline: Offline, tmp_path: Path) -> None:
    """The frontend ``# syntax=`` names goes into the store beside the base, and the
    offline host's BuildKit pulls it, by the lock's digest, from its own registry mirror:
    it has no other way to get it."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile.in").write_text(SYNTAX)
    lock_path = tmp_path / "syntax.lock"
    frozen = relock("freeze", "debian:trixie-slim", "-f", context / "Dockerfile.in",
                    "-o", lock_path, "--no-index")
    assert frozen.exit_code == 0, frozen.output
    frontend = read(lock_path).frontend
    if frontend is None:
        pytest.fail("no [frontend] in the lock: is docker/dockerfile:1 in the test bed's "
                    "registry (scripts/testbed --frontend)?", pytrace=False)
    store = tmp_path / "store"
    done = relock("vendor", "--lock", lock_path, "--store", store, "--apt-live")
    assert done.exit_code == 0, done.output
    assert f"frontend {frontend.pinned}: " in done.stderr, done.stderr
    tags = DirStore(store).tags()
    assert f"base-{frontend.digest.partition(':')[2]}" in tags

    host = offline.host
    forget_base(host, read(lock_path))
    tag = f"relock-test-vendor-syntax:{uuid.uuid4().hex[:8]}"
    offline.made.append(tag)
    built = on_second_host(host, context, tmp_path / "cache", "build", "--lock", lock_path,
                           "--store", store, "-t", tag, "--builder", "buildkit", "--no-cache")
    assert built.returncode == 0, built.stdout + built.stderr[-3000:]
    assert f"published frontend {frontend.pinned} from the store" in built.stderr
    assert f"docker.io/{frontend.pinned}" in built.stderr  # what BuildKit ran
    assert f"{tag} matches {lock_path}" in built.stdout
