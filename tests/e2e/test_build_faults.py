"""The faults ``relock build`` must survive (project issue 4), each against real servers.

* the APT archive moved on: a local archive laid out like the snapshot
  service (``aptarchive``) publishes a newer version after the freeze;
* the base tag moved: another image is pushed under the same tag to a
  registry (docker-registry) the test runs on loopback;
* a wheel on the package index was tampered with: a pypiserver on loopback
  serves other bytes under the locked file name;
* a locked version is gone: withdrawn from the snapshot, or no longer in the
  live archive;
* the engine is unreachable, or the build itself fails.

Everything runs through the CLI (click's CliRunner) and the test bed's
engine with host networking; servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import socketserver
import subprocess
import tarfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relock.cli import cli
from relock.lock.lockfile import Lock, read
from tests.conftest import StoreEngine, run_in
from tests.e2e.pyindex import free_port, publish_wheel, pypiserver
from tests.support.aptarchive import AptArchive, Deb, serve
from tests.support.engines import main_store

pytestmark = pytest.mark.engine

T1 = "20240101T000000Z"  # the snapshot the lock is frozen at
T2 = "20240601T000000Z"  # the archive after it moved on
HELLO_09 = Deb("relock-hello", "0.9")
HELLO_10 = Deb("relock-hello", "1.0")
HELLO_11 = Deb("relock-hello", "1.1")


# -- helpers -------------------------------------------------------------------

def relock(*args: object, env: dict[str, str | None] | None = None) -> Result:
    """Run the relock CLI in-process; stdout and stderr stay apart."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, env=env)


def error_lines(result: Result) -> list[str]:
    """The one-line errors relock printed (``relock: error: ...``)."""
    return [line for line in result.stderr.splitlines() if line.startswith("relock: error:")]


def assert_clean_failure(result: Result, code: int) -> str:
    """Exit ``code``, exactly one error line, no traceback; return that line."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    return lines[0]


def image_exists(client: Any, ref: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(ref)
    except ImageNotFound:
        return False
    return True


def layers(client: Any, ref: str) -> list[str]:
    return list(client.images.get(ref).attrs["RootFS"]["Layers"])


@dataclass
class Frozen:
    """An image built from a Dockerfile.in, and the lock frozen from it."""

    context: Path
    image: str
    lock_path: Path

    @property
    def dockerfile(self) -> Path:
        return self.context / "Dockerfile.in"

    @property
    def lock(self) -> Lock:
        return read(self.lock_path)


class Images:
    """Images a module builds or pulls, removed (newest first) when it ends."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.made: list[str] = []
        self.steps: list[str] = []

    def tag(self, name: str) -> str:
        """A fresh tag for ``relock build -t``; the image is removed at the end."""
        tag = f"relock-test-{name}:{uuid.uuid4().hex[:8]}"
        self.made.append(tag)
        return tag

    def build(self, context: Path, text: str, name: str, nocache: bool = False) -> str:
        """An ordinary, unpinned build of ``text`` as ``context/Dockerfile.in``."""
        from relock.build.enginebuild import build
        from relock.image.engine import DockerEngine

        context.mkdir(parents=True, exist_ok=True)
        (context / "Dockerfile.in").write_text(text)
        tag = self.tag(name)
        build(DockerEngine(self.client), context, "Dockerfile.in", tag=tag, nocache=nocache)
        return tag

    def keep(self, ref: str) -> None:
        self.made.append(ref)

    def after_failure(self, log: str) -> None:
        """Note the step images a failed build left behind (from its streamed log)."""
        self.steps += re.findall(r"^ ---> ([0-9a-f]{12})$", log, re.MULTILINE)

    def remove_all(self) -> None:
        from docker.errors import DockerException

        ids = []
        for ref in self.made:
            with contextlib.suppress(DockerException):
                ids.append(self.client.images.get(ref).id)
        for ref in reversed(self.made):
            with contextlib.suppress(DockerException):
                self.client.images.remove(ref, force=True)
        # Images that still have a digest reference stay after their tags go.
        for image_id in reversed(ids):
            with contextlib.suppress(DockerException):
                self.client.images.remove(image_id, force=True)
        # Not forced: a step image that is also a cached parent of another
        # image stays.
        for step in reversed(self.steps):
            with contextlib.suppress(DockerException):
                self.client.images.remove(step)


@pytest.fixture(scope="module")
def images(client: Any) -> Iterator[Images]:
    made = Images(client)
    yield made
    made.remove_all()


def freeze(frozen: Frozen, env: dict[str, str | None] | None = None) -> None:
    result = relock("freeze", frozen.image, "-f", frozen.dockerfile, "-o", frozen.lock_path,
                    env=env)
    assert result.exit_code == 0, result.output


def read_version(client: Any, image: str) -> tuple[str, str]:
    """relock-hello's version as dpkg knows it, and as its file says."""
    dpkg = run_in(client, image, ["dpkg-query", "-W", "-f", "${Version}\n", "relock-hello"])
    text = run_in(client, image, ["cat", "/usr/share/relock-hello/VERSION"])
    return dpkg.strip(), text.strip()


# -- 1 and 4: the APT archive moved on; a locked version is gone -----------------

def hello_dockerfile(archive: AptArchive) -> str:
    # The local archive is the image's only APT source, so the lock's sources
    # point only at it (Debian's would be rewritten to this server too).
    return (
        "FROM debian:trixie-slim\n"
        "RUN rm -f /etc/apt/sources.list.d/debian.sources \\\n"
        f" && echo '{archive.source_line()}' > /etc/apt/sources.list.d/relocktest.list \\\n"
        " && apt-get update \\\n"
        " && apt-get install -y --no-install-recommends relock-hello\n"
    )


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory,
          images: Images) -> Iterator[tuple[AptArchive, Frozen]]:
    """relock-hello 1.0 built and frozen at T1; then 1.1 published at T2 and live."""
    root = tmp_path_factory.mktemp("hello")
    with serve(root / "apt") as archive:
        archive.publish(T1, [HELLO_10])
        context = root / "ctx"
        image = images.build(context, hello_dockerfile(archive), "hello")
        frozen = Frozen(context, image, root / "hello.lock")
        freeze(frozen)
        archive.publish(T2, [HELLO_11])
        yield archive, frozen


def test_archive_moved_on_pinned_build_keeps_the_locked_version(
        client: Any, images: Images, hello: tuple[AptArchive, Frozen],
        tmp_path: Path) -> None:
    archive, frozen = hello
    lock = frozen.lock
    # The snapshot comes from the Release file the image kept: T1, the
    # archive's state when the image was built.
    assert (lock.snapshot, lock.snapshot_from) == (T1, "release-date")
    assert {(p.name, p.version) for p in lock.apt if p.name == "relock-hello"} == {
        ("relock-hello", "1.0")}
    assert read_version(client, frozen.image) == ("1.0", "1.0")

    tag = images.tag("hello-pinned")
    result = relock("build", "-f", frozen.dockerfile, "--lock", frozen.lock_path,
                    "--apt-snapshot-url", archive.snapshot_url, "-t", tag, "-q",
                    env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.exit_code == 0, result.output
    assert f"{tag} matches {frozen.lock_path}" in result.stdout
    # The live archive has only 1.1 now: the locked 1.0 came from the snapshot.
    assert "checked against the lock: 1 from snapshot" in result.stderr
    assert read_version(client, tag) == ("1.0", "1.0")

    # The same Dockerfile.in built the ordinary way now gets the new version,
    # and verify says how that image drifted from the lock.
    unpinned = images.build(tmp_path / "unpinned", hello_dockerfile(archive), "hello-unpinned",
                            nocache=True)
    assert read_version(client, unpinned) == ("1.1", "1.1")
    drift = relock("verify", unpinned, "--lock", frozen.lock_path)
    assert drift.exit_code == 1, drift.output
    assert "apt relock-hello:all: locked 1.0, image has 1.1" in drift.stdout


def test_version_withdrawn_from_snapshot_names_package_and_version(
        client: Any, images: Images, hello: tuple[AptArchive, Frozen],
        tmp_path: Path) -> None:
    _, frozen = hello
    # Another snapshot service whose T1 once had 1.0 and lost it: only 0.9 is
    # left; the live archive has moved on to 1.1. Nothing is built.
    with serve(tmp_path / "apt") as damaged:
        damaged.publish(T1, [HELLO_09, HELLO_10])
        damaged.withdraw(T1, HELLO_10)
        tag = images.tag("hello-withdrawn")
        result = relock("build", "-f", frozen.dockerfile, "--lock", frozen.lock_path,
                        "--apt-snapshot-url", damaged.snapshot_url, "--no-cache", "-t", tag,
                        env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    line = assert_clean_failure(result, 2)
    assert line.startswith("relock: error: relock-hello 1.0 (all) is in no source (snapshot ")
    assert f"/relocktest/{T1}/" in line and "live http://127.0.0.1:" in line
    assert line.endswith("pass --apt-mirror with an archive that still has it")
    assert "Step 1/" not in result.stderr
    assert not image_exists(client, tag)


def test_version_gone_from_live_archive_names_package_and_version(
        client: Any, images: Images, hello: tuple[AptArchive, Frozen],
        tmp_path: Path) -> None:
    # --apt-live reads the archive as it is now, which has only 1.1: relock
    # refuses before building rather than install another version.
    _, frozen = hello
    tag = images.tag("hello-live")
    result = relock("build", "-f", frozen.dockerfile, "--lock", frozen.lock_path,
                    "--apt-live", "--no-cache", "-t", tag,
                    env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    line = assert_clean_failure(result, 2)
    assert line.startswith("relock: error: relock-hello 1.0 (all) is in no source (live ")
    assert not image_exists(client, tag)


# -- 2: the base tag moved --------------------------------------------------------

@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A docker-registry of its own on a free loopback port, as whatever user runs
    the tests (the engine talks plain HTTP to 127.0.0.0/8); yields ``host:port``."""
    root = tmp_path_factory.mktemp("registry")
    addr = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n"
        f"    enabled: true\nhttp:\n  addr: {addr}\n")
    log = (root / "registry.log").open("wb")
    server = subprocess.Popen(["docker-registry", "serve", str(config)],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{addr}/v2/", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    (root / "registry.log").read_text()[-2000:])
                time.sleep(0.2)
        yield addr
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def push_and_pull(client: Any, image: str, repo: str, tag: str) -> str:
    """Push ``image`` as ``repo:tag`` and pull it back, as a base image is pulled;
    return the registry digest."""
    client.images.get(image).tag(repo, tag)
    try:
        for chunk in client.images.push(repo, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise AssertionError(f"push of {repo}:{tag} failed: {chunk['error']}")
    finally:
        client.images.remove(f"{repo}:{tag}")
    pulled = client.images.pull(repo, tag=tag)
    digests = [d.split("@", 1)[1] for d in pulled.attrs.get("RepoDigests", [])
               if d.split("@", 1)[0] == repo]
    assert digests, pulled.attrs.get("RepoDigests")
    return str(digests[0])


@dataclass
class MovedTag:
    frozen: Frozen
    name: str
    old_digest: str
    new_digest: str
    old_base: str


@pytest.fixture(scope="module")
def moved_tag(tmp_path_factory: pytest.TempPathFactory, client: Any,
              images: Images, registry: str) -> Iterator[MovedTag]:
    """An app frozen on ``relocktest-base-*:1``, after which the tag was moved."""
    root = tmp_path_factory.mktemp("tag")
    name = f"{registry}/relocktest-base-{uuid.uuid4().hex[:8]}"
    old = images.build(root / "old", "FROM debian:trixie-slim\nRUN echo old > /base\n",
                       "base-old")
    old_digest = push_and_pull(client, old, name, "1")
    images.keep(f"{name}:1")
    frozen = Frozen(root / "app", "", root / "app.lock")
    frozen.image = images.build(frozen.context, f"FROM {name}:1\nRUN echo app > /app\n", "app")
    freeze(frozen)
    new = images.build(root / "new", "FROM debian:trixie-slim\nRUN echo new > /base\n",
                       "base-new")
    new_digest = push_and_pull(client, new, name, "1")
    assert new_digest != old_digest
    # The registry, and all it holds, goes when the module ends.
    yield MovedTag(frozen, name, old_digest, new_digest, old)


def test_tag_moved_refreeze_records_the_digest_the_image_sits_on(
        client: Any, moved_tag: MovedTag, tmp_path: Path) -> None:
    # The tag now names the new base, but the app image was built on the old
    # one: a freeze made now must still lock the old digest.
    out = tmp_path / "again.lock"
    again = ("freeze", moved_tag.frozen.image, "-f", moved_tag.frozen.dockerfile, "-o", out)
    result = relock(*again)
    if main_store() == "containerd":
        # That store keeps one image per name: the old base lost its name, and with it its
        # digest, when the tag moved. Freeze says so, and what to do, which then works.
        line = assert_clean_failure(result, 2)
        assert "pull that base by digest" in line, line
        client.images.pull(f"{moved_tag.name}@{moved_tag.old_digest}")
        result = relock(*again)
    assert result.exit_code == 0, result.output
    assert "has moved since the build" in result.stderr
    assert [b.digest for b in read(out).base] == [moved_tag.old_digest]


def test_tag_moved_pinned_build_stays_on_the_locked_digest(
        client: Any, images: Images, moved_tag: MovedTag, tmp_path: Path) -> None:
    frozen = moved_tag.frozen
    assert [(b.ref, b.digest) for b in frozen.lock.base] == [
        (f"{moved_tag.name}:1", moved_tag.old_digest)]

    tag = images.tag("app-pinned")
    result = relock("build", "-f", frozen.dockerfile, "--lock", frozen.lock_path,
                    "-t", tag, "-q")
    assert result.exit_code == 0, result.output
    assert f"{tag} matches {frozen.lock_path}" in result.stdout
    assert not (frozen.context / "Dockerfile").exists()
    assert run_in(client, tag, ["cat", "/base"]).strip() == "old"
    old_layers = layers(client, moved_tag.old_base)
    assert layers(client, tag)[: len(old_layers)] == old_layers

    # An ordinary build follows the tag to the new image; verify catches it.
    text = frozen.dockerfile.read_text()
    unpinned = images.build(tmp_path / "unpinned", text, "app-unpinned")
    assert run_in(client, unpinned, ["cat", "/base"]).strip() == "new"
    drift = relock("verify", unpinned, "--lock", frozen.lock_path)
    assert drift.exit_code == 1, drift.output
    assert f"base {moved_tag.name}:1: locked {moved_tag.name}:1@{moved_tag.old_digest}" in (
        drift.stdout)


# -- 3: a wheel on the index was tampered with --------------------------------------

PROBE = "relocktest-probe"


def copy_out(client: Any, image: str, folder: str, suffix: str, dest: Path) -> list[Path]:
    """Copy the files of ``folder`` in ``image`` whose names end with ``suffix``."""
    container = client.containers.create(image, command=["true"], entrypoint=[],
                                         network_mode="none")
    try:
        stream, _ = container.get_archive(folder)
        data = io.BytesIO(b"".join(stream))
    finally:
        container.remove(force=True)
    out = []
    with tarfile.open(fileobj=data) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(suffix):
                blob = tar.extractfile(member)
                assert blob is not None
                target = dest / Path(member.name).name
                target.write_bytes(blob.read())
                out.append(target)
    return out


def probe_dockerfile(index_url: str) -> str:
    return (
        "FROM debian:trixie-slim\n"
        "RUN apt-get update \\\n"
        " && apt-get install -y --no-install-recommends python3-venv \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        "RUN python3 -m venv /opt/venv \\\n"
        f" && /opt/venv/bin/pip install --no-cache-dir --index-url {index_url} {PROBE}\n"
    )


def test_tampered_wheel_fails_the_pinned_build_on_its_hash(
        client: Any, images: Images, tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    packages.mkdir()
    wheel = publish_wheel(packages, PROBE, "1.0")
    with pypiserver(packages) as index_url:
        frozen = Frozen(tmp_path / "ctx", "", tmp_path / "probe.lock")
        frozen.image = images.build(frozen.context, probe_dockerfile(index_url), "probe")
        # The venv's own pip is locked too, so the index must carry it, as a
        # private index mirroring everything an image uses would: the very
        # wheel ensurepip installed it from.
        assert copy_out(client, frozen.image, "/usr/share/python-wheels", ".whl", packages)
        # Only the local index: no pip configuration of this machine.
        freeze(frozen, env={"PIP_INDEX_URL": index_url, "PIP_CONFIG_FILE": os.devnull,
                            "XDG_CACHE_HOME": str(tmp_path / "cache")})
        locked = {p.name: p for p in frozen.lock.pip}
        original = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert locked[PROBE].hashes == (f"sha256:{original}",)

        # Same name, same version, other bytes (still a valid wheel).
        publish_wheel(packages, PROBE, "1.0", body="VERSION = '1.0'\nimport os  # tampered\n")
        tampered = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert tampered != original
        tag = images.tag("probe-pinned")
        # The template names the index itself (--index-url): pip still reaches
        # only the locked view, which takes the file from that index and checks it.
        result = relock("build", "-f", frozen.dockerfile, "--lock", frozen.lock_path,
                        "--no-cache", "-t", tag,
                        env={"PIP_INDEX_URL": index_url, "PIP_CONFIG_FILE": os.devnull,
                             "XDG_CACHE_HOME": str(tmp_path / "cache")})
    images.after_failure(result.stderr)
    line = assert_clean_failure(result, 1)
    assert line == (
        f"relock: error: {wheel.name} from the index does not match the lock "
        f"(expected sha256 {original[:16]}..., got {tampered[:16]}...): the file changed "
        "upstream; refusing to install it"
    )
    assert not image_exists(client, tag)


# -- 5: the engine is unreachable; the build fails ----------------------------------

FAILING = (
    "FROM debian:trixie-slim\n"
    "ARG BREAK=no\n"
    'RUN echo "relock-marker break=$BREAK" && test "$BREAK" = no\n'
)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, images: Images) -> Frozen:
    """A one-step image that fails to build with ``--build-arg BREAK=yes``."""
    root = tmp_path_factory.mktemp("plain")
    frozen = Frozen(root / "ctx", "", root / "plain.lock")
    frozen.image = images.build(frozen.context, FAILING, "plain")
    freeze(frozen)
    return frozen


@pytest.mark.parametrize("command", [
    lambda f: ["build", "-f", f.dockerfile, "--lock", f.lock_path, "-q"],
    lambda f: ["verify", f.image, "--lock", f.lock_path],
    lambda f: ["freeze", f.image, "-f", f.dockerfile, "-o", f.lock_path.with_suffix(".new")],
], ids=["build", "verify", "freeze"])
def test_engine_unreachable_is_one_line_and_exit_2(
        plain: Frozen, tmp_path: Path, command: Callable[[Frozen], list[object]]) -> None:
    nowhere = f"unix://{tmp_path}/no-engine.sock"
    result = relock(*command(plain), env={"DOCKER_HOST": nowhere})
    line = assert_clean_failure(result, 2)
    assert line.startswith(f"relock: error: cannot reach the container engine at {nowhere}: ")
    assert not plain.lock_path.with_suffix(".new").exists()


class _VanishingEngine(socketserver.StreamRequestHandler):
    """Answers like an engine until a build starts, then drops the connection."""

    def handle(self) -> None:
        while True:
            request = self.rfile.readline().decode()
            if not request:
                return
            target = request.split(" ")[1]
            length, chunked = 0, False
            while (header := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                key, _, value = header.decode().partition(":")
                length = int(value) if key.lower() == "content-length" else length
                chunked = chunked or (key.lower() == "transfer-encoding" and "chunked" in value)
            if "/build" in target:
                while chunked and (size := int(self.rfile.readline().strip(), 16)):
                    self.rfile.read(size + 2)
                self.rfile.read(length if not chunked else 2)
                line = json.dumps({"stream": "Step 1/2 : FROM debian\n"}).encode() + b"\r\n"
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                return  # the engine goes away in the middle of the build
            self.rfile.read(length)
            if "/images/" in target and target.endswith("/json"):
                # The base image as the real engine has it: relock reads which
                # packages it holds (its overlay layers are on this machine).
                body = json.dumps(getattr(self.server, "image_json", {})).encode()
            else:
                body = b"OK" if "_ping" in target else json.dumps(
                    {"ApiVersion": "1.41", "Version": "20.10.0"}).encode()
            self.wfile.write(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


class _EngineServer(socketserver.ThreadingUnixStreamServer):
    # The client keeps its connections open; closing must not wait for them.
    daemon_threads = True
    block_on_close = False


def test_engine_lost_during_the_build_is_one_line_and_exit_2(
        overlay2_engine: StoreEngine, plain: Frozen, tmp_path: Path) -> None:
    # A stand-in engine on a unix socket: the test bed's real engine is shared
    # and must not be stopped in the middle of a build. It serves the base image as
    # the overlay2 engine has it (whose layer folders relock reads on this machine).
    sock = tmp_path / "engine.sock"
    server = _EngineServer(str(sock), _VanishingEngine)
    base = plain.lock.base[0]
    server.image_json = overlay2_engine.client.api.inspect_image(f"{base.ref}@{base.digest}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # The stand-in speaks the classic builder's API only (buildx cannot boot on it).
        result = relock("build", "-f", plain.dockerfile, "--lock", plain.lock_path,
                        "--builder", "classic", env={"DOCKER_HOST": f"unix://{sock}"})
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    line = assert_clean_failure(result, 2)
    assert line.startswith("relock: error: lost the engine during the build: ")
    assert "Step 1/2 : FROM debian" in result.stderr


def test_failing_build_prints_its_log_tail_and_exits_1(
        client: Any, images: Images, plain: Frozen) -> None:
    tag = images.tag("plain-broken")
    result = relock("build", "-f", plain.dockerfile, "--lock", plain.lock_path,
                    "--build-arg", "BREAK=yes", "--no-cache", "-t", tag, "-q")
    images.after_failure(result.stderr)
    line = assert_clean_failure(result, 1)
    assert line.startswith("relock: error: the build failed: ")
    # The classic builder's words, or BuildKit's naming the step.
    assert ("returned a non-zero code: 1" in line
            or re.search(r"RUN echo .*: did not complete successfully: exit code: 1$", line)), line
    # -q keeps the log quiet while it streams, but its tail is shown on failure.
    tail = result.stderr.split("relock: the build log ends with:\n", 1)[1]
    assert "relock-marker break=yes" in tail
    assert not image_exists(client, tag)

    # The same lock with the step passing builds and matches.
    ok = images.tag("plain-ok")
    result = relock("build", "-f", plain.dockerfile, "--lock", plain.lock_path, "-t", ok, "-q")
    assert result.exit_code == 0, result.output
