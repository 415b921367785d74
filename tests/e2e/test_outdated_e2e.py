"""relock outdated against a loopback APT archive (with a security suite) and pypiserver.

No engine: outdated reads only indexes. The archive and the index move on
after the lock was made; outdated must list exactly what moved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.lock import lockfile
from relock.lock.lockfile import AptPackage, AptSource, PipPackage, PythonEnv
from tests.e2e.pyindex import publish_wheel, pypiserver
from tests.factories import make_lock
from tests.support.aptarchive import AptArchive, Deb, serve

T0, T1 = "20260101T000000Z", "20260201T000000Z"
SHA = "ab" * 32


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("outdated")
    wheels = root / "wheels"
    wheels.mkdir()
    with serve(root / "main") as main, \
            serve(root / "sec", name="relocktest-security", suite="stable-security") as sec, \
            pypiserver(wheels) as index_url:
        old = [Deb("pkga", "1.0-1"), Deb("pkgb", "1.0-1"), Deb("pkgc", "1.0-1")]
        main.publish(T0, old)
        sec.publish(T0, [])
        for name in ("relocktest-a", "relocktest-b", "relocktest-c"):
            publish_wheel(wheels, name, "1.0")
        # The world moves on: pkga gets a new version, pkgc a security fix,
        # relocktest-a and -c new releases (the template caps -c below 2).
        main.publish(T1, [*old, Deb("pkga", "2.0-1")])
        sec.publish(T1, [Deb("pkgc", "1.0-1+sec1")])
        publish_wheel(wheels, "relocktest-a", "1.1")
        publish_wheel(wheels, "relocktest-c", "2.0")
        publish_wheel(wheels, "relocktest-b", "1.1rc1")  # a pre-release never counts
        yield {"main": main, "sec": sec, "index": index_url, "root": root}


def _source(a: AptArchive) -> AptSource:
    return AptSource("/etc/apt/sources.list.d/test.list", ("deb",), (a.live_url,), (a.suite,),
                     (a.component,), {"trusted": "yes"})


def _lock(world: dict[str, object]) -> lockfile.Lock:
    main, sec = world["main"], world["sec"]
    assert isinstance(main, AptArchive) and isinstance(sec, AptArchive)
    return make_lock(
        apt_sources=(_source(main), _source(sec)),
        apt=tuple(AptPackage(n, "1.0-1", "all", sha256=SHA) for n in ("pkga", "pkgb", "pkgc")),
        python=(PythonEnv("/opt/venv", "3.13", "/opt/venv/lib/python3.13/site-packages", True),),
        pip=tuple(PipPackage(f"relocktest-{x}", "1.0", "/opt/venv", requested=True,
                             hashes=("sha256:" + "cd" * 32,)) for x in "abc"),
    )


def test_outdated_lists_exactly_what_moved(world: dict[str, object], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    lock_path = tmp_path / "locks" / "t.lock"
    lockfile.write(_lock(world), lock_path)
    template = tmp_path / "Dockerfile.in"
    (tmp_path / "requirements.txt").write_text("relocktest-c<2  # not yet\n")
    template.write_text("FROM debian:trixie-slim\nRUN apt-get install -y pkga pkgb pkgc\n"
                        "RUN python3 -m venv /opt/venv \\\n"
                        " && /opt/venv/bin/pip install relocktest-a relocktest-b \\\n"
                        "      -r requirements.txt\n")
    monkeypatch.setenv("PIP_INDEX_URL", str(world["index"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = ["outdated", "--lock", str(lock_path), "-f", str(template)]
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    got = {(p["kind"], p["name"]): (p["newest"], p["where"], p["security"], p["held_back_by"])
           for p in doc["packages"]}
    assert got == {
        ("apt", "pkga"): ("2.0-1", "stable", False, ""),
        ("apt", "pkgc"): ("1.0-1+sec1", "stable-security", True, ""),
        ("pip", "relocktest-a"): ("1.1", "/opt/venv", False, ""),
        ("pip", "relocktest-c"): ("2.0", "/opt/venv", False, "relocktest-c<2"),
    }
    assert doc["problems"] == []
    text = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert text.exit_code == 1
    lines = text.stdout.splitlines()
    assert [ln.split()[1] for ln in lines[1:-1]] == ["pkga", "pkgc", "relocktest-a",
                                                    "relocktest-c"]
    assert lines[2].endswith("security")
    assert lines[4].endswith("held back by relocktest-c<2")
    assert lines[-1] == "4 outdated (3 can move, 1 security)"


def test_outdated_exits_0_when_nothing_moved_and_2_when_a_source_is_down(
        world: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    lock = _lock(world)
    fresh = dataclasses.replace(
        lock, apt=(AptPackage("pkgb", "1.0-1", "all", sha256=SHA),),
        pip=(PipPackage("relocktest-b", "1.0", "/opt/venv", hashes=("sha256:" + "cd" * 32,)),))
    path = tmp_path / "fresh.lock"
    lockfile.write(fresh, path)
    monkeypatch.setenv("PIP_INDEX_URL", str(world["index"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["outdated", "--lock", str(path), "-f",
                                      str(tmp_path / "none")], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, "nothing outdated\n")
    from tests.support.aptarchive import closed_url

    down = dataclasses.replace(fresh, apt_sources=(dataclasses.replace(
        fresh.apt_sources[0], uris=(closed_url() + "/live/x",)),))
    lockfile.write(down, path)
    result = CliRunner().invoke(cli, ["outdated", "--lock", str(path), "--only", "apt"],
                                catch_exceptions=False)
    assert result.exit_code == 2
    assert "not read:" in result.stderr


def test_outdated_at_a_snapshot_reads_the_sources_as_they_stood(
        world: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    main = world["main"]
    assert isinstance(main, AptArchive)
    lock = dataclasses.replace(_lock(world), apt_sources=(_source(main),), pip=(), python=())
    path = tmp_path / "t.lock"
    lockfile.write(lock, path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = ["outdated", "--lock", str(path), "--apt-snapshot-url", main.snapshot_url]
    then = CliRunner().invoke(cli, [*args, "--snapshot", T0], catch_exceptions=False)
    assert (then.exit_code, then.stdout) == (0, "nothing outdated\n"), then.output
    later = CliRunner().invoke(cli, [*args, "--snapshot", T1, "--format", "json"],
                               catch_exceptions=False)
    assert later.exit_code == 1, later.output
    assert [(p["name"], p["newest"]) for p in json.loads(later.stdout)["packages"]] == [
        ("pkga", "2.0-1")]
    bad = CliRunner().invoke(cli, [*args, "--snapshot", "yesterday"])
    assert bad.exit_code == 2
