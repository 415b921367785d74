"""A template's ``# syntax=docker/dockerfile:1`` frontend, frozen by digest and built pinned
(issue 21).

The test bed's registry holds docker/dockerfile:1 (scripts/testbed builds it from
Debian's BuildKit source) and the engine pulls Docker Hub names through it, as BuildKit
pulls the frontend. A raw ``docker buildx build`` of the template is frozen: the lock's
frontend digest must be the registry's own for the tag. The pinned build must run that
digest (BuildKit's log names it) and verify; a lock pinning a digest no registry has
must fail the build, which shows the pin is what BuildKit runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relock.lock.lockfile import read
from tests.conftest import run_in, skip_or_fail
from tests.e2e.test_build_faults import assert_clean_failure, relock

pytestmark = pytest.mark.engine

FRONTEND = "docker/dockerfile:1"
TEMPLATE = """\
# syntax=docker/dockerfile:1
FROM debian:trixie-slim
RUN --mount=type=cache,target=/tmp/cache echo frontend > /etc/relock-frontend
"""
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


def registry_digest(mirror: str, repo: str, tag: str) -> str:
    """What the registry answers for ``repo:tag``: its Docker-Content-Digest (an index's)."""
    accept = ", ".join((*INDEX_TYPES, "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json"))
    request = urllib.request.Request(f"{mirror.rstrip('/')}/v2/{repo}/manifests/{tag}",
                                     method="HEAD", headers={"Accept": accept})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as answer:
        assert answer.headers["Content-Type"] in INDEX_TYPES, answer.headers["Content-Type"]
        return str(answer.headers["Docker-Content-Digest"])


@pytest.fixture
def frontend_digest(client: Any) -> str:
    mirrors = client.info().get("RegistryConfig", {}).get("Mirrors") or []
    for mirror in mirrors:
        with contextlib.suppress(OSError):
            return registry_digest(mirror, FRONTEND.split(":")[0], "1")
    skip_or_fail(f"no registry mirror of the engine ({', '.join(mirrors) or 'none'}) has "
                 f"{FRONTEND}: scripts/testbed --frontend puts it in the test bed's")


@pytest.fixture
def tags(client: Any) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for tag in made:
        with contextlib.suppress(Exception):
            client.images.remove(tag, force=True)


def test_the_syntax_frontend_is_frozen_by_its_registry_digest_and_built_pinned(
        client: Any, frontend_digest: str, tags: list[str], tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PIP_CONFIG_FILE": os.devnull}
    context = tmp_path / "app"
    context.mkdir()
    (context / "Dockerfile.in").write_text(TEMPLATE)
    suffix = uuid.uuid4().hex[:8]
    raw, pinned = f"relock-test-fe-raw:{suffix}", f"relock-test-fe-pinned:{suffix}"
    tags += [raw, pinned]
    done = subprocess.run(
        ["docker", "buildx", "build", "--network", "host", "--load", "-t", raw,
         "-f", str(context / "Dockerfile.in"), str(context)],
        capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    lock_path = tmp_path / "app.lock"
    frozen = relock("freeze", raw, "-f", context / "Dockerfile.in", "-o", lock_path,
                    "--no-index", env=env)
    assert frozen.exit_code == 0, frozen.output
    lock = read(lock_path)
    assert lock.frontend is not None
    assert (lock.frontend.ref, lock.frontend.digest) == (FRONTEND, frontend_digest)

    rendered = tmp_path / "Dockerfile.relock"
    assert relock("render", "--lock", lock_path, "-f", context / "Dockerfile.in",
                  "-o", rendered, env=env).exit_code == 0
    assert rendered.read_text().splitlines()[0] == f"# syntax={FRONTEND}@{frontend_digest}"

    built = relock("build", "--lock", lock_path, "-f", context / "Dockerfile.in", "-t", pinned,
                   "--builder", "buildkit", "--no-cache", env=env)
    assert built.exit_code == 0, built.output
    assert f"docker.io/{FRONTEND}@{frontend_digest}" in built.stderr, built.stderr[-3000:]
    assert f"{pinned} matches" in built.output
    assert run_in(client, pinned, ["cat", "/etc/relock-frontend"]) == "frontend\n"

    # A lock pinning a frontend no registry has: the pinned build runs what the lock
    # says, so it fails (exit 1, one line).
    absent = "sha256:" + "0" * 64
    lock_path.write_text(lock_path.read_text().replace(frontend_digest, absent))
    failed = relock("build", "--lock", lock_path, "-f", context / "Dockerfile.in", "-q",
                    "-t", f"relock-test-fe-absent:{suffix}", "--builder", "buildkit", env=env)
    line = assert_clean_failure(failed, 1)
    assert f"docker/dockerfile:1@{absent}" in line, line


def test_a_template_naming_another_frontend_than_the_lock_is_refused(
        client: Any, frontend_digest: str, tmp_path: Path) -> None:
    """Render's mismatch, through the CLI: one line, exit 2, nothing built."""
    context = tmp_path / "app"
    context.mkdir()
    template = context / "Dockerfile.in"
    template.write_text("FROM debian:trixie-slim\n")
    lock_path = tmp_path / "app.lock"
    frozen = relock("freeze", "debian:trixie-slim", "-f", template, "-o", lock_path,
                    "--no-index", env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert frozen.exit_code == 0, frozen.output
    text = lock_path.read_text().replace(
        "\n[[base]]", f'\n[frontend]\nref = "{FRONTEND}"\ndigest = "{frontend_digest}"\n'
        "build_arg = false\n\n[[base]]", 1)
    lock_path.write_text(text)
    template.write_text("# syntax=docker/dockerfile:1.7\nFROM debian:trixie-slim\n")
    refused = relock("render", "--lock", lock_path, "-f", template, "--force",
                     "-o", tmp_path / "out")
    line = assert_clean_failure(refused, 2)
    assert "names another frontend than" in line, line
