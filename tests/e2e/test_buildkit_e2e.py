"""BuildKit templates, as projects write them today, locked and rebuilt pinned (issue 21).

One template holds every BuildKit form the issue names: cache mounts of the APT
archives and lists and of pip's cache, a bind mount of ``requirements.txt``, a
secret mount, a here-document, ``COPY --link``, ``COPY --from`` a build stage
and a final ``--target``. It is built raw with ``docker buildx build``, frozen,
rebuilt with ``relock build`` (BuildKit), verified and diffed against the raw
image: on the test bed's engine with the containerd image store and on its
second engine with the overlay2 store. Then: a cache filled by a newer
unpinned build lets nothing into the pinned image, a changed bind-mounted
``requirements.txt`` fails naming the package, and the classic builder still
builds a classic template on both stores.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relock.lock.lockfile import read
from tests.conftest import run_in, skip_or_fail
from tests.e2e.pyindex import publish_wheel, pypiserver
from tests.e2e.test_build_faults import assert_clean_failure, copy_out, relock
from tests.support.engines import engines

pytestmark = [pytest.mark.engine, pytest.mark.slow]

PROBE = "relock-bk-probe"

TEMPLATE = """\
FROM debian:trixie-slim AS base
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \\
    rm -f /etc/apt/apt.conf.d/docker-clean \\
 && apt-get update && apt-get install -y --no-install-recommends python3-venv
RUN python3 -m venv /opt/venv

FROM base AS tools
RUN <<EOF
set -e
mkdir -p /out
echo tool > /out/tool.txt
EOF

FROM base AS app
ARG INDEX
RUN --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\
    --mount=type=cache,target=/root/.cache/pip \\
    --mount=type=secret,id=token \\
    /opt/venv/bin/pip install --index-url "$INDEX" -r /tmp/requirements.txt
COPY --link --from=tools /out/tool.txt /opt/tool.txt
COPY --link app.txt /app/app.txt
"""

@dataclass
class World:
    """One engine (by image store), a loopback index and the folder of its wheels."""

    store: str
    docker_host: str
    client: Any
    index: str
    packages: Path
    root: Path
    made: list[str]

    def env(self, **more: str) -> dict[str, str | None]:
        return {"DOCKER_HOST": self.docker_host, "PIP_INDEX_URL": self.index,
                "PIP_CONFIG_FILE": os.devnull, "XDG_CACHE_HOME": str(self.root / "cache"),
                **more}

    def tag(self, name: str) -> str:
        tag = f"relock-test-bk-{name}:{uuid.uuid4().hex[:8]}"
        self.made.append(tag)
        return tag

    def buildx(self, context: Path, name: str, *extra: str) -> str:
        """A raw, unpinned ``docker buildx build --load`` of ``context/Dockerfile.in``."""
        tag = self.tag(name)
        done = subprocess.run(
            ["docker", "buildx", "build", "--network", "host", "--load", "-t", tag,
             "--build-arg", f"INDEX={self.index}", "-f", str(context / "Dockerfile.in"),
             *extra, str(context)],
            env={**os.environ, "DOCKER_HOST": self.docker_host}, capture_output=True,
            text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return tag


@pytest.fixture(scope="module", params=["containerd", "overlay2"])
def world(request: pytest.FixtureRequest, client: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import docker

    hosts = engines()
    if request.param not in hosts:
        skip_or_fail(f"the test bed has no engine with the {request.param} image store "
                     f"(it has {', '.join(sorted(hosts))}); scripts/testbed starts both")
    root = tmp_path_factory.mktemp(f"bk-{request.param}")
    packages = root / "packages"
    publish_wheel(packages, PROBE, "1.0")
    other = docker.DockerClient(base_url=hosts[request.param], timeout=600)
    with pypiserver(packages) as index:
        made: list[str] = []
        yield World(request.param, hosts[request.param], other, index, packages, root, made)
        for tag in reversed(made):
            with contextlib.suppress(docker.errors.DockerException):
                other.images.remove(tag, force=True)
    other.close()


def context_of(world: World, name: str, requirements: str) -> Path:
    context = world.root / name
    context.mkdir()
    (context / "Dockerfile.in").write_text(TEMPLATE)
    (context / "requirements.txt").write_text(requirements)
    (context / "app.txt").write_text("the app\n")
    return context


def probe_version(world: World, image: str) -> str:
    return run_in(world.client, image, [
        "/opt/venv/bin/python", "-c",
        "import relock_bk_probe as p; print(p.VERSION)"]).strip()


def test_buildkit_template_locked_and_rebuilt_pinned(world: World) -> None:
    context = context_of(world, "app", f"{PROBE}\n")
    raw = world.buildx(context, "raw")
    # The venv's own pip is locked too: the index carries the wheel ensurepip used.
    assert copy_out(world.client, raw, "/usr/share/python-wheels", ".whl", world.packages)
    lock = world.root / "app.lock"
    frozen = relock("freeze", raw, "-f", context / "Dockerfile.in", "-o", lock,
                    env=world.env())
    assert frozen.exit_code == 0, frozen.output
    text = lock.read_text()
    assert f'name = "{PROBE}"' in text and 'version = "1.0"' in text
    assert "token" not in text.replace("tokens", "")  # the secret's id, never its content

    # A newer version reaches the index and an unpinned build fills the shared
    # caches (pip's and APT's) with it: the pinned image must not take it.
    publish_wheel(world.packages, PROBE, "2.0")
    newer = world.buildx(context_of(world, "newer", f"{PROBE}\n"), "newer", "--no-cache")
    assert probe_version(world, newer) == "2.0"

    pinned = world.tag("pinned")
    built = relock("build", "-f", context / "Dockerfile.in", "--lock", lock, "-t", pinned,
                   "--builder", "buildkit", "--build-arg", f"INDEX={world.index}",
                   env=world.env())
    assert built.exit_code == 0, built.output
    assert "building with BuildKit" in built.stderr
    assert f"{pinned} matches" in built.output
    assert probe_version(world, pinned) == "1.0"
    assert run_in(world.client, pinned, ["cat", "/opt/tool.txt", "/app/app.txt"]) == \
        "tool\nthe app\n"

    verified = relock("verify", pinned, "--lock", lock, env=world.env())
    assert verified.exit_code == 0, verified.output
    diffed = relock("diff", raw, pinned, env=world.env())
    assert diffed.exit_code == 0, diffed.output

    # The bind-mounted requirements.txt now asks for what the lock lacks.
    (context / "requirements.txt").write_text(f"{PROBE}==2.0\n")
    failed = relock("build", "-f", context / "Dockerfile.in", "--lock", lock, "-q",
                    "--builder", "buildkit", "-t", world.tag("changed"),
                    "--build-arg", f"INDEX={world.index}", env=world.env())
    line = assert_clean_failure(failed, 1)
    assert PROBE in line and "not in the lock" in line, line
    (context / "requirements.txt").write_text(f"{PROBE}\n")


def test_classic_builder_on_this_store(world: World) -> None:
    context = world.root / "classic"
    context.mkdir()
    (context / "Dockerfile.in").write_text(
        "FROM debian:trixie-slim\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends python3-venv \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        "ARG INDEX\n"
        "RUN python3 -m venv /opt/venv \\\n"
        f" && /opt/venv/bin/pip install --no-cache-dir --index-url \"$INDEX\" {PROBE}==1.0\n")
    raw = world.tag("classic-raw")
    done = subprocess.run(
        ["docker", "build", "--network", "host", "-t", raw, "--build-arg",
         f"INDEX={world.index}", "-f", str(context / "Dockerfile.in"), str(context)],
        env={**os.environ, "DOCKER_HOST": world.docker_host, "DOCKER_BUILDKIT": "0"},
        capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert copy_out(world.client, raw, "/usr/share/python-wheels", ".whl", world.packages)
    lock = world.root / "classic.lock"
    frozen = relock("freeze", raw, "-f", context / "Dockerfile.in", "-o", lock,
                    env=world.env())
    assert frozen.exit_code == 0, frozen.output
    pinned = world.tag("classic-pinned")
    built = relock("build", "-f", context / "Dockerfile.in", "--lock", lock, "-t", pinned,
                   "--builder", "classic", "--build-arg", f"INDEX={world.index}",
                   env=world.env())
    assert built.exit_code == 0, built.output
    assert "building with the classic builder" in built.stderr
    diffed = relock("diff", raw, pinned, env=world.env())
    assert diffed.exit_code == 0, diffed.output


def test_reproducible_builds_of_one_lock_give_one_image(world: World) -> None:
    """``relock build --reproducible`` of the BuildKit template (cache, bind and secret
    mounts, a here-document, COPY --link, stages, apt, a venv and pip): twice without
    cache, one image digest; the lock records it, verify is one comparison, and a lock
    recording another image fails the build naming both."""
    if world.store == "overlay2":
        lock = world.root / "plain.lock"
        context = world.root / "plain"
        context.mkdir()
        (context / "Dockerfile.in").write_text("FROM debian:trixie-slim\nRUN true\n")
        frozen = relock("freeze", "debian:trixie-slim", "-f", context / "Dockerfile.in",
                        "-o", lock, "--no-index", env=world.env())
        assert frozen.exit_code == 0, frozen.output
        for builder, words in (("buildkit", "overlay2 store"),
                               ("classic", "cannot build reproducibly")):
            refused = relock("build", "--lock", lock, "--reproducible", "--builder", builder,
                             env=world.env())
            line = assert_clean_failure(refused, 2)
            assert line.startswith("relock: error: --reproducible: ") and words in line, line
        return
    context = context_of(world, "repro", f"{PROBE}\n")
    raw = world.buildx(context, "repro-raw")
    assert copy_out(world.client, raw, "/usr/share/python-wheels", ".whl", world.packages)
    lock = world.root / "repro.lock"
    frozen = relock("freeze", raw, "-f", context / "Dockerfile.in", "-o", lock,
                    env=world.env())
    assert frozen.exit_code == 0, frozen.output

    def build(name: str, code: int = 0) -> tuple[str, str]:
        tag = world.tag(name)
        done = relock("build", "--lock", lock, "-t", tag, "--reproducible", "--no-cache",
                      "-q", "--build-arg", f"INDEX={world.index}", env=world.env())
        assert done.exit_code == code, done.output
        return tag, done.stdout

    first, said = build("repro-a")
    image = world.client.images.get(first).id
    assert f"recorded {image} (config sha256:" in said and f"{first} matches" in said, said
    recorded = read(lock).image_digest()
    assert recorded is not None and recorded.manifest == image
    second, said = build("repro-b")
    assert f"reproduced {image}, as {lock} says" in said, said
    assert world.client.images.get(second).id == image
    # Nothing differs, file by file (mtimes too); verify is the one comparison.
    diffed = relock("diff", "--files", "--mtimes", first, second, env=world.env())
    assert diffed.exit_code == 0, diffed.output
    verified = relock("verify", second, "--lock", lock, env=world.env())
    assert verified.exit_code == 0 and "the image the lock records" in verified.stderr
    # A lock recording another image: the build says both, and exits 1.
    other = "sha256:" + "0" * 64
    lock.write_text(lock.read_text().replace(recorded.config, other).replace(
        recorded.manifest, other))
    _, said = build("repro-c", code=1)
    assert "not reproduced: " in said and other in said and image in said, said


def test_a_template_that_writes_the_time_is_not_reproduced_and_says_where(
        world: World) -> None:
    if world.store != "containerd":
        pytest.skip("--reproducible builds on the containerd store (the overlay2 refusal "
                    "is tested above)")
    context = world.root / "dated"
    context.mkdir()
    (context / "Dockerfile.in").write_text(
        "FROM debian:trixie-slim\nRUN echo hello > /etc/hello\n"
        "RUN date +%s%N > /etc/build-date\n")
    lock = world.root / "dated.lock"
    frozen = relock("freeze", "debian:trixie-slim", "-f", context / "Dockerfile.in", "-o", lock,
                    "--no-index", env=world.env())
    assert frozen.exit_code == 0, frozen.output
    first = relock("build", "--lock", lock, "-t", world.tag("dated-a"), "--reproducible",
                   "--no-verify", env=world.env())
    assert first.exit_code == 0 and "recorded sha256:" in first.stdout, first.output
    again = relock("build", "--lock", lock, "-t", world.tag("dated-b"), "--reproducible",
                   "--no-verify", "--no-cache", env=world.env())
    assert again.exit_code == 1, again.output
    lines = again.stdout.splitlines()[1:]  # after the image's name (--no-verify)
    assert lines[0].startswith("not reproduced: ") and lines[1] == (
        "  1 file(s) differ from the recorded image:"), again.stdout
    assert re.fullmatch(r"  /etc/build-date: content sha256:\S+ \(20 B\) → sha256:\S+ \(20 B\) "
                        r"\(RUN date \+%s%N > /etc/build-date\)", lines[2]), lines[2]
