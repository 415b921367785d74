"""relock update against a loopback APT archive (with a security suite) and pypiserver.

One image is built and frozen; then the archive and the index move on, and
each test updates a copy of that lock. Every pinned rebuild costs tens of
seconds, so only two tests build: the update that succeeds and the one
whose build fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relock.lock import lockfile
from tests.e2e.pyindex import publish_wheel, pypiserver
from tests.e2e.test_build_faults import (
    Frozen,
    Images,
    copy_out,
    freeze,
    relock,
)
from tests.support.aptarchive import AptArchive, Deb, serve

pytestmark = [pytest.mark.engine, pytest.mark.slow]

T0, T1 = "20260101T000000Z", "20260201T000000Z"
OLD = [Deb("pkga", "1.0-1"), Deb("pkgb", "1.0-1"), Deb("pkgc", "1.0-1")]


def template(main: AptArchive, sec: AptArchive, index_url: str) -> str:
    return (
        "FROM debian:trixie-slim\n"
        f"RUN echo '{main.source_line()}' > /etc/apt/sources.list.d/relocktest.list \\\n"
        f" && echo '{sec.source_line()}' >> /etc/apt/sources.list.d/relocktest.list \\\n"
        " && apt-get update \\\n"
        " && apt-get install -y --no-install-recommends python3-venv pkga pkgb pkgc \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        "RUN python3 -m venv /opt/venv \\\n"
        f" && /opt/venv/bin/pip install --no-cache-dir --index-url {index_url} \\\n"
        "      relocktest-a relocktest-b\n"
    )


@pytest.fixture(scope="module")
def made(client: Any) -> Iterator[Images]:
    images = Images(client)
    yield images
    images.remove_all()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, client: Any,
          made: Images) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("update")
    wheels = root / "wheels"
    wheels.mkdir()
    with serve(root / "main") as main, \
            serve(root / "sec", name="relocktest-security", suite="stable-security") as sec, \
            pypiserver(wheels) as index_url:
        main.publish(T0, OLD)
        sec.publish(T0, [])
        publish_wheel(wheels, "relocktest-d", "1.0")
        publish_wheel(wheels, "relocktest-a", "1.0", ["relocktest-d>=1.0"])
        publish_wheel(wheels, "relocktest-b", "1.0")
        context = root / "ctx"
        image = made.build(context, template(main, sec, index_url), "update")
        # The venv's own pip is locked too: the index carries the wheel it came from.
        assert copy_out(client, image, "/usr/share/python-wheels", ".whl", wheels)
        env = {"PIP_INDEX_URL": index_url, "PIP_CONFIG_FILE": os.devnull,
               "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "",
               "XDG_CACHE_HOME": str(root / "cache")}
        frozen = Frozen(context, image, root / "base.lock")
        freeze(frozen, env=env)
        # The world moves on: pkga 2.0-1; a security fix of pkgc; pkgb 2.0-1
        # needs a package no lock has; relocktest-a 1.1 needs relocktest-d 1.1;
        # relocktest-b 1.1 needs a relocktest-zzz that no index has.
        main.publish(T1, [*OLD, Deb("pkga", "2.0-1"), Deb("pkgb", "2.0-1", "pkgz"),
                          Deb("pkgz", "1.0-1")])
        sec.publish(T1, [Deb("pkgc", "1.0-1+sec1")])
        publish_wheel(wheels, "relocktest-d", "1.1")
        publish_wheel(wheels, "relocktest-a", "1.1", ["relocktest-d>=1.1"])
        publish_wheel(wheels, "relocktest-b", "1.1", ["relocktest-zzz>=5"])
        yield {"frozen": frozen, "env": env, "root": root}


def _copy(world: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "t.lock"
    shutil.copyfile(world["frozen"].lock_path, path)
    return path


def _entries(path: Path) -> dict[tuple[str, str], str]:
    """Each APT and pip entry's TOML text, by kind and name: compared byte for byte."""
    from relock.lock.merge import chunks

    out = {}
    for key, text in chunks(lockfile.read(path)):
        if key[0] in ("apt", "pip"):
            # (table, platform, stage, name, arch) or (table, platform, stage, env, name)
            out[(str(key[0]), str(key[3] if key[0] == "apt" else key[4]))] = text
    return out


def test_outdated_then_update_moves_only_the_named_packages(
        world: dict[str, Any], made: Images, tmp_path: Path) -> None:
    frozen: Frozen = world["frozen"]
    path = _copy(world, tmp_path)
    out = relock("outdated", "--lock", path, "-f", frozen.dockerfile, "--format", "json",
                 env=world["env"])
    assert out.exit_code == 1, out.output
    import json

    # Debian's own packages of the base image may be outdated too; only ours are the test's.
    got = {(p["name"], p["newest"], p["security"]) for p in json.loads(out.stdout)["packages"]
           if p["name"].startswith(("pkg", "relocktest-"))}
    assert got == {("pkga", "2.0-1", False), ("pkgb", "2.0-1", False),
                   ("pkgc", "1.0-1+sec1", True), ("relocktest-a", "1.1", False),
                   ("relocktest-b", "1.1", False), ("relocktest-d", "1.1", False)}

    before = _entries(path)
    result = relock("update", "pkga", "relocktest-a", "--lock", path, "-f", frozen.dockerfile,
                    "-q", "-t", made.tag("update-pinned"), env=world["env"])
    assert result.exit_code == 0, result.output
    after = _entries(path)
    moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert moved == {("apt", "pkga"), ("pip", "relocktest-a"), ("pip", "relocktest-d")}
    new = {p.name: p.version for p in lockfile.read(path).apt}
    new_pip = {p.name: p.version for p in lockfile.read(path).pip}
    assert (new["pkga"], new_pip["relocktest-a"], new_pip["relocktest-d"]) == (
        "2.0-1", "1.1", "1.1")
    assert "pkga" in result.stdout and "1.0-1" in result.stdout and "2.0-1" in result.stdout

    # Then the security update alone, on top: only pkgc moves. Debian's own
    # security updates of packages the base image holds stay (named as such).
    before = after
    result = relock("update", "--security", "--lock", path, "-f", frozen.dockerfile, "-q",
                    "-t", made.tag("update-security"), env=world["env"])
    assert result.exit_code == 0, result.output
    after = _entries(path)
    moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert moved == {("apt", "pkgc")}
    assert {p.name: p.version for p in lockfile.read(path).apt}["pkgc"] == "1.0-1+sec1"


def test_update_that_cannot_resolve_fails_before_building(
        world: dict[str, Any], tmp_path: Path) -> None:
    frozen: Frozen = world["frozen"]
    path = _copy(world, tmp_path)
    text = path.read_bytes()
    result = relock("update", "relocktest-b", "--lock", path, "-f", frozen.dockerfile,
                    env=world["env"])
    assert result.exit_code == 2, result.output
    assert "relock: error: pip cannot resolve the update of relocktest-b" in result.stderr
    assert "relocktest-zzz" in result.stderr
    assert "Step 1/" not in result.stderr and "serving the locked view" not in result.stderr
    assert path.read_bytes() == text


def test_update_whose_build_fails_keeps_the_old_lock(
        world: dict[str, Any], made: Images, tmp_path: Path) -> None:
    # pkgb 2.0-1 depends on pkgz, which the candidate lock does not hold: apt
    # in the pinned build cannot install it (APT dependencies are not resolved).
    frozen: Frozen = world["frozen"]
    path = _copy(world, tmp_path)
    text = path.read_bytes()
    result = relock("update", "pkgb", "--lock", path, "-f", frozen.dockerfile, "-q",
                    "-t", made.tag("update-broken"), env=world["env"])
    made.after_failure(result.stderr)
    assert result.exit_code == 1, result.output
    error = [ln for ln in result.stderr.splitlines() if ln.startswith("relock: error:")]
    assert len(error) == 1 and error[0].startswith("relock: error: the build failed")
    assert "pkgz" in result.stderr  # apt's words, in the log tail
    assert path.read_bytes() == text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".t.lock")]


