"""The project's image through relock: two releases diffed, a pinned rebuild verified.

Builds the current Dockerfile.in and the one of release 1.0 (taken from git
history), freezes both, diffs them, and rebuilds the current one pinned.
The committed locks are checked too: parseable, not stale, and their diff.
A release keeps the template it was frozen from beside its lock
(``locks/sci-1.0.Dockerfile.in``), so it can be rebuilt with
``relock build -f locks/sci-1.0.Dockerfile.in --lock locks/sci-1.0.lock``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.lock import lockfile
from tests.conftest import run_in

pytestmark = [pytest.mark.engine, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CURRENT, PREVIOUS = ROOT / "locks" / "sci.lock", ROOT / "locks" / "sci-1.0.lock"


def relock(*args: str, cwd: Path = ROOT) -> Any:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def docker_build(context: Path, tag: str, dockerfile: str = "Dockerfile.in") -> str:
    done = subprocess.run(
        ["docker", "build", "--network", "host", "-t", tag, "-f", dockerfile, "."],
        cwd=context, env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True,
        text=True, timeout=1800, check=False)
    if done.returncode != 0:
        pytest.fail("docker build failed:\n" + (done.stdout + done.stderr)[-3000:])
    return tag


def template_of(lock: Path) -> str:
    """The Dockerfile.in a release was frozen from, kept beside its lock."""
    template = lock.with_suffix(".Dockerfile.in")
    want = lockfile.read(lock).input.sha256
    assert hashlib.sha256(template.read_bytes()).hexdigest() == want, (
        f"{template.name} is not the template {lock.name} was frozen from")
    return template.read_text()


@pytest.fixture(scope="module")
def releases(client: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    current = docker_build(ROOT, "relock-sci:test")
    old_ctx = tmp_path_factory.mktemp("sci-1.0")
    (old_ctx / "Dockerfile.in").write_text(template_of(PREVIOUS))
    (old_ctx / "jupyter_server_config.py").write_bytes(
        (ROOT / "image" / "jupyter_server_config.py").read_bytes())
    previous = docker_build(old_ctx, "relock-sci:test-1.0")
    return previous, current


def test_committed_locks_are_current_and_differ_as_documented() -> None:
    current = lockfile.read(CURRENT)
    template = (ROOT / "Dockerfile.in").read_bytes()
    assert current.input.sha256 == hashlib.sha256(template).hexdigest(), (
        "locks/sci.lock is stale: re-freeze it (make demo writes build/demo/sci.lock)")
    r = relock("diff", str(PREVIOUS), str(CURRENT), "--format", "json")
    assert r.exit_code == 1
    changes = {(c["name"], c["change"]) for c in json.loads(r.stdout)["pip"]}
    assert {("numpy", "upgraded"), ("scipy", "upgraded"), ("pandas", "upgraded")} <= changes
    same = relock("diff", str(CURRENT), str(CURRENT))
    assert same.exit_code == 0 and len(same.output.strip().splitlines()) == 1


def pip_versions(client: Any, image: str) -> dict[str, str]:
    out = run_in(client, image, ["/opt/venv/bin/python", "-m", "pip", "list", "--format",
                                 "json"])
    return {d["name"].lower(): d["version"] for d in json.loads(out)}


def test_diff_of_two_real_releases(client: Any, releases: tuple[str, str],
                                   tmp_path: Path) -> None:
    previous, current = releases
    old_lock, new_lock = tmp_path / "old.lock", tmp_path / "new.lock"
    (tmp_path / "old.in").write_text(template_of(PREVIOUS))
    assert relock("freeze", previous, "-f", str(tmp_path / "old.in"), "--no-index",
                  "-o", str(old_lock)).exit_code == 0
    assert relock("freeze", current, "--no-index", "-o", str(new_lock)).exit_code == 0

    r = relock("diff", str(old_lock), str(new_lock), "--format", "json")
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    old_pip, new_pip = pip_versions(client, previous), pip_versions(client, current)
    for row in report["pip"]:
        assert (row["old"], row["new"]) == (old_pip.get(row["name"], ""),
                                            new_pip.get(row["name"], "")), row
    pip_changes = {r["name"]: r["change"] for r in report["pip"]}
    assert pip_changes["numpy"] == "upgraded"
    apt_changes = {r["name"]: r["change"] for r in report["apt"]}
    assert apt_changes["nano"] == "added" and apt_changes["vim-tiny"] == "removed"
    assert report["base"] == []  # both on the same digest

    # The same, with the images themselves as the two sides.
    r = relock("diff", previous, current, "--format", "json", "--only", "apt",
               "--only", "pip")
    assert r.exit_code == 1
    images = json.loads(r.stdout)
    assert (images["apt"], images["pip"]) == (report["apt"], report["pip"])


def test_pinned_rebuild_of_the_project_image(client: Any, releases: tuple[str, str],
                                             tmp_path: Path) -> None:
    previous, current = releases
    lock = tmp_path / "sci.lock"
    assert relock("freeze", current, "-o", str(lock)).exit_code == 0
    r = relock("build", "--lock", str(lock), "-t", "relock-sci:test-pinned", "--apt-live",
               "--quiet")
    try:
        assert r.exit_code == 0, r.output + r.stderr
        assert "relock-sci:test-pinned matches" in r.output
        assert pip_versions(client, "relock-sci:test-pinned") == pip_versions(client, current)
        # The previous release does not match this lock, and verify says how.
        r = relock("verify", previous, "--lock", str(lock))
        assert r.exit_code == 1
        assert "pip numpy (/opt/venv): locked" in r.output
        # Nothing was written into the checkout (the context).
        assert not (ROOT / "Dockerfile").exists() and not (ROOT / "relock.d").exists()
    finally:
        client.images.remove("relock-sci:test-pinned", force=True)
