"""relock merge: locks merged package by package, as git's merge driver."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.lock import lockfile
from relock.lock import merge as core
from relock.lock.lockfile import AptPackage, Lock, PipPackage
from tests.factories import make_lock
from tests.support.tools import missing

SHA = "cd" * 32


def apt(name: str, version: str, **kw: str) -> AptPackage:
    return AptPackage(name, version, "amd64", sha256=SHA, **kw)


def pip(name: str, version: str) -> PipPackage:
    return PipPackage(name, version, "/opt/venv", hashes=("sha256:" + "ef" * 32,))


BASE = make_lock(
    snapshot="20261101T000000Z", snapshot_from="image-created",
    apt=(apt("curl", "8.1-1"), apt("libssl3", "3.0.1-1"), apt("zlib1g", "1:1.2-1")),
    pip=(pip("numpy", "2.1.0"), pip("requests", "2.31.0")),
)


def with_apt(lock: Lock, *packages: AptPackage, drop: str = "") -> Lock:
    new = {p.name: p for p in lock.apt if p.name != drop}
    new.update({p.name: p for p in packages})
    return dataclasses.replace(lock, apt=tuple(new.values())).sorted()


def with_pip(lock: Lock, *packages: PipPackage) -> Lock:
    new = {p.name: p for p in lock.pip}
    new.update({p.name: p for p in packages})
    return dataclasses.replace(lock, pip=tuple(new.values())).sorted()


def test_each_side_changes_a_different_package() -> None:
    ours = with_apt(BASE, apt("curl", "8.2-1"))
    theirs = with_pip(BASE, pip("numpy", "2.2.0"))
    result = core.merge(BASE, ours, theirs)
    assert result.clean
    assert result.lock == with_pip(with_apt(BASE, apt("curl", "8.2-1")), pip("numpy", "2.2.0"))


def test_same_change_on_both_sides_is_taken_once() -> None:
    ours = with_apt(BASE, apt("curl", "8.2-1"))
    result = core.merge(BASE, ours, ours)
    assert result.clean
    assert result.lock == ours.sorted()


def test_added_and_removed_packages_merge() -> None:
    ours = with_apt(BASE, apt("libcurl4", "8.2-1"))
    theirs = with_apt(BASE, drop="zlib1g")
    result = core.merge(BASE, ours, theirs)
    assert result.clean
    assert [p.name for p in result.lock.apt] == ["curl", "libcurl4", "libssl3"]


def test_different_changes_to_one_package_conflict_by_name() -> None:
    ours = with_apt(BASE, apt("curl", "8.2-1"), apt("zlib1g", "1:1.3-1"))
    theirs = with_apt(BASE, apt("curl", "8.3-1"))
    result = core.merge(BASE, ours, theirs)
    assert [c.name for c in result.conflicts] == ["apt curl amd64"]
    # Everything else is merged: zlib1g took our side's change.
    assert {p.name: p.version for p in result.lock.apt}["zlib1g"] == "1:1.3-1"


def test_removed_on_one_side_changed_on_the_other_conflicts() -> None:
    ours = with_apt(BASE, drop="curl")
    theirs = with_apt(BASE, apt("curl", "8.3-1"))
    result = core.merge(BASE, ours, theirs)
    assert [(c.name, c.ours) for c in result.conflicts] == [("apt curl amd64", None)]
    text = core.conflict_text(result, "")
    assert '<<<<<<< ours\n=======\n[[apt]]\nname = "curl"\nversion = "8.3-1"' in text


def test_two_new_snapshots_merge_to_the_later() -> None:
    ours = dataclasses.replace(with_apt(BASE, apt("curl", "8.2-1")), snapshot="20261120T000000Z")
    theirs = dataclasses.replace(with_pip(BASE, pip("numpy", "2.2.0")),
                                 snapshot="20261115T000000Z")
    result = core.merge(BASE, ours, theirs)
    assert result.clean
    assert result.lock.snapshot == "20261120T000000Z"


def test_conflicting_platform_marks_the_head() -> None:
    ours = dataclasses.replace(BASE, platform="linux/arm64")
    theirs = dataclasses.replace(BASE, platform="linux/riscv64")
    result = core.merge(BASE, ours, theirs)
    assert [c.name for c in result.conflicts] == ["platform"]
    text = core.conflict_text(result, "")
    assert text.startswith(f'<<<<<<< ours\nversion = {BASE.version}\nplatform = "linux/arm64"')


def test_conflict_text_has_markers_around_only_the_conflict() -> None:
    ours = with_apt(BASE, apt("curl", "8.2-1"), apt("zlib1g", "1:1.3-1"))
    theirs = with_apt(BASE, apt("curl", "8.3-1"))
    result = core.merge(BASE, ours, theirs)
    text = core.conflict_text(result, "# head\n", marker=9)
    assert text.count("<<<<<<<<< ours\n") == 1
    block = text.split("<<<<<<<<< ours\n", 1)[1].split(">>>>>>>>> theirs\n", 1)[0]
    ours_part, theirs_part = block.split("=========\n")
    assert 'version = "8.2-1"' in ours_part and 'version = "8.3-1"' in theirs_part
    assert "zlib1g" not in block
    # Without the markers and their side, the text is our side of the merge.
    resolved = text.replace("<<<<<<<<< ours\n", "").replace(
        "=========\n" + theirs_part + ">>>>>>>>> theirs\n", "")
    assert lockfile.loads(resolved) == result.lock


def test_merged_text_is_a_sorted_valid_lock() -> None:
    ours = with_apt(BASE, apt("aaa", "1-1"))
    theirs = with_pip(BASE, pip("attrs", "23.1.0"))
    result = core.merge(BASE, ours, theirs)
    text = core.merged_text(result, "# generated\n")
    assert text == "# generated\n\n" + lockfile.to_toml(result.lock)
    assert lockfile.loads(text) == result.lock
    assert [p.name for p in result.lock.pip] == ["attrs", "numpy", "requests"]


def test_cli_writes_ours_and_exits_1_on_conflict(tmp_path: Path) -> None:
    paths = {}
    for name, lock in (("base", BASE), ("ours", with_apt(BASE, apt("curl", "8.2-1"))),
                       ("theirs", with_apt(BASE, apt("curl", "8.3-1")))):
        paths[name] = tmp_path / f"{name}.lock"
        lockfile.write(lock, paths[name])
    result = CliRunner().invoke(cli, ["merge", *map(str, paths.values())],
                                catch_exceptions=False)
    assert result.exit_code == 1
    assert "conflict: apt curl amd64 changed differently on both sides" in result.stderr
    assert "<<<<<<< ours" in paths["ours"].read_text()


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)


@pytest.mark.skipif(missing("git"), reason="needs git (scripts/testbed installs it)")
@pytest.mark.parametrize("conflict", [False, True])
def test_real_git_merge_with_the_documented_setup(tmp_path: Path, conflict: bool) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "t@example.invalid"],
                 ["config", "user.name", "t"]):
        _git(repo, *args).check_returncode()
    # The documented lines (README "Locks that merge"), with this test's relock.
    (repo / ".gitattributes").write_text("*.lock merge=relock\n")
    relock = f"{sys.executable} -m relock"
    _git(repo, "config", "merge.relock.driver",
         f"{relock} merge %O %A %B --marker-size %L").check_returncode()
    lock_path = repo / "locks" / "sci.lock"
    lockfile.write(BASE, lock_path, image="sci")
    _git(repo, "add", ".").check_returncode()
    _git(repo, "commit", "-qm", "base").check_returncode()
    _git(repo, "checkout", "-qb", "a").check_returncode()
    # Each branch moves the snapshot too: as text, that line conflicts.
    ours = dataclasses.replace(with_apt(BASE, apt("curl", "8.2-1")), snapshot="20261120T000000Z")
    lockfile.write(ours, lock_path, image="sci")
    _git(repo, "commit", "-qam", "a: curl").check_returncode()
    _git(repo, "checkout", "-q", "main").check_returncode()
    _git(repo, "checkout", "-qb", "b").check_returncode()
    theirs = (with_apt(BASE, apt("curl", "8.3-1")) if conflict
              else with_apt(BASE, apt("libssl3", "3.0.2-1")))
    theirs = dataclasses.replace(theirs, snapshot="20261110T000000Z")
    lockfile.write(theirs, lock_path, image="sci")
    _git(repo, "commit", "-qam", "b: update").check_returncode()
    _git(repo, "checkout", "-q", "a").check_returncode()
    merged = _git(repo, "merge", "--no-edit", "b")
    if conflict:
        assert merged.returncode == 1
        assert "apt curl amd64" in merged.stderr + merged.stdout
        text = lock_path.read_text()
        assert text.startswith("# This file is generated by relock")
        assert text.count("<<<<<<< ") == 1 and "libssl3" in text
        assert "both modified:   locks/sci.lock" in _git(repo, "status").stdout
        return
    assert merged.returncode == 0, merged.stdout + merged.stderr
    got = lockfile.read(lock_path)
    assert {p.name: p.version for p in got.apt} == {
        "curl": "8.2-1", "libssl3": "3.0.2-1", "zlib1g": "1:1.2-1"}
    assert got.pip == BASE.sorted().pip
    assert got.snapshot == "20261120T000000Z"
    assert lock_path.read_text().startswith("# This file is generated by relock")
    assert _git(repo, "status", "--porcelain").stdout == ""


def test_a_frontend_pinned_on_one_side_is_kept_and_two_pins_conflict() -> None:
    pin = lockfile.Frontend("docker/dockerfile:1", "sha256:" + "f" * 64)
    ours = with_apt(BASE, apt("curl", "8.2-1"))
    theirs = dataclasses.replace(BASE, frontend=pin)
    result = core.merge(BASE, ours, theirs)
    assert result.clean
    assert result.lock.frontend == pin
    moved = dataclasses.replace(pin, digest="sha256:" + "e" * 64)
    other = dataclasses.replace(BASE, frontend=moved)
    clash = core.merge(BASE, other, theirs)
    assert [c.name for c in clash.conflicts] == ["frontend"]
    assert clash.lock.frontend == other.frontend and clash.theirs_lock.frontend == pin
