"""relock diff: version ordering, the comparison, the three formats, the CLI.

Golden outputs live in tests/golden/diff/; after an intended change of the
output, remake them with ``RELOCK_UPDATE_GOLDEN=1 pytest tests/lock/test_diff.py``
and review the diff of the golden files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.errors import EngineError, GitRevisionError, ImageNotFoundError, PlatformMissingError
from relock.freeze import sides
from relock.lock import diff as core
from relock.lock import diffformat
from relock.lock.diff import compare_apt_versions, compare_pip_versions, diff_locks
from relock.lock.lockfile import AptPackage, AptSource, Base, Distro, Input, Lock, PipPackage, write
from tests.factories import make_lock
from tests.fakes import FakeSource

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "diff"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "diff-json.md"
UPDATE = os.environ.get("RELOCK_UPDATE_GOLDEN") == "1"


def sha(c: str) -> str:
    return c * 64


def h(c: str) -> str:
    return "sha256:" + c * 64


# -- fixtures: two locks of the same image, a few months apart -------------------

VENV = "/opt/venv"


def old_lock() -> Lock:
    return make_lock(
        input=Input("Dockerfile.in", sha("0")),
        distro=Distro("debian", "12", "bookworm"),
        snapshot="20250101T000000Z",
        snapshot_from="release-date",
        base=(Base(0, "debian:bookworm-slim", "sha256:" + sha("a")),
              Base(1, "python:3.11-slim", "sha256:" + sha("b"))),
        apt=(
            AptPackage("libc6", "2.36-9", "amd64", sha256=sha("1")),
            AptPackage("epochy", "1:1.0-1", "amd64"),
            AptPackage("rcpkg", "1.0~rc1-1", "amd64"),
            AptPackage("binnmu", "1.0-1", "amd64"),
            AptPackage("zlib1g", "1:1.2.13.dfsg-1", "amd64", sha256=sha("2")),
            AptPackage("tzdata", "2024a-0+deb12u1", "all", sha256=sha("3")),
            AptPackage("oldpkg", "0.9-2", "amd64"),
            AptPackage("same", "1.0-1", "amd64", sha256=sha("4")),
            AptPackage("minor", "1.9-1", "amd64"),
        ),
        pip=(
            PipPackage("numpy", "1.26.4", VENV, hashes=(h("5"),)),
            PipPackage("requests", "2.32.0", VENV),
            PipPackage("postpkg", "1.0", VENV),
            PipPackage("rcdist", "2.0rc1", VENV),
            PipPackage("torch", "2.3.0+cpu", VENV),
            PipPackage("six", "1.16.0", VENV, hashes=(h("6"),)),
            PipPackage("idna", "3.7", VENV, hashes=(h("7"), h("8"))),
            PipPackage("attrs", "23.2.0", VENV, hashes=(h("9"),)),
            PipPackage("gone", "0.1", VENV),
        ),
    )


def new_lock() -> Lock:
    return make_lock(
        input=Input("Dockerfile.in", sha("0")),
        distro=Distro("debian", "12", "bookworm"),
        snapshot="20250601T000000Z",
        snapshot_from="release-date",
        base=(Base(0, "debian:bookworm-slim", "sha256:" + sha("c")),
              Base(1, "python:3.11-slim", "sha256:" + sha("b")),
              Base(2, "node:20", "sha256:" + sha("d"))),
        apt=(
            AptPackage("libc6", "2.36-9+deb12u1", "amd64", sha256=sha("5")),
            AptPackage("epochy", "2.0-1", "amd64"),  # the epoch is gone: a downgrade
            AptPackage("rcpkg", "1.0-1", "amd64"),
            AptPackage("binnmu", "1.0-1+b1", "amd64"),
            AptPackage("zlib1g", "1:1.2.13.dfsg-1", "amd64", sha256=sha("6")),
            AptPackage("tzdata", "2024a-0+deb12u1", "all"),  # no hash here: not compared
            AptPackage("newpkg", "3.0-1", "amd64"),
            AptPackage("same", "1.0-1", "amd64", sha256=sha("4")),
            AptPackage("minor", "1.10-1", "amd64"),
        ),
        pip=(
            PipPackage("numpy", "2.0.0", VENV, hashes=(h("a"),)),
            PipPackage("requests", "2.31.0", VENV),
            PipPackage("postpkg", "1.0.post1", VENV),
            PipPackage("rcdist", "2.0", VENV),
            PipPackage("torch", "2.3.0+cu121", VENV),
            PipPackage("six", "1.16.0", VENV, hashes=(h("f"),)),
            PipPackage("idna", "3.7", VENV, hashes=(h("8"), h("7"))),  # same set
            PipPackage("attrs", "23.2.0", VENV),  # no hashes here: not compared
            PipPackage("fresh", "1.0", VENV),
        ),
    )


def multi_locks() -> tuple[Lock, Lock]:
    """Multiarch APT and two Python environments."""
    debian = "/etc/apt/sources.list.d/debian.sources"
    old = make_lock(
        input=Input("Dockerfile.in", sha("0")), distro=Distro("debian", "12", "bookworm"),
        apt_sources=(AptSource(debian, ("deb",), ("http://127.0.0.1:8/debian",),
                               ("bookworm",), ("main",)),),
        apt=(AptPackage("libc6", "2.36-9", "amd64"), AptPackage("libc6", "2.36-9", "i386"),
             AptPackage("archswap", "1.0-1", "amd64")),
        pip=(PipPackage("numpy", "1.26.4", "/opt/venv"),
             PipPackage("pip", "23.0.1", "/usr")),
    )
    new = make_lock(
        input=Input("Dockerfile.in", sha("0")), distro=Distro("debian", "13", "trixie"),
        platform="linux/arm64",
        apt_sources=(AptSource(debian, ("deb",), ("http://127.0.0.1:8/debian",),
                               ("trixie",), ("main",), {"trusted": "yes"}),),
        apt=(AptPackage("libc6", "2.41-6", "arm64"), AptPackage("libc6", "2.36-9", "i386"),
             AptPackage("archswap", "1.1-1", "all")),
        pip=(PipPackage("numpy", "2.0.0", "/opt/venv"),
             PipPackage("pip", "25.0", "/usr")),
    )
    return old, new


def rows(d: core.LockDiff, category: str) -> dict[tuple[str, str], tuple[str, str, str]]:
    return {(r.name, r.where): (r.change, r.old, r.new) for r in getattr(d, category)}


# -- version ordering -----------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("1:1.0-1", "2.0-1", "downgraded"),  # the epoch outranks everything
    ("2.0-1", "1:1.0-1", "upgraded"),
    ("1.0~rc1", "1.0", "upgraded"),  # ~ sorts before the end
    ("1.0", "1.0~rc1", "downgraded"),
    ("1.0~~", "1.0~", "upgraded"),
    ("1.0-1", "1.0-1+b1", "upgraded"),  # a binNMU
    ("1.0-1+b1", "1.0-1+b2", "upgraded"),
    ("1.0-1+b1", "1.0-2", "upgraded"),
    ("2.36-9", "2.36-9+deb12u1", "upgraded"),
    ("1.9-1", "1.10-1", "upgraded"),  # numbers, not strings
    ("1.0-1", "1.0-10", "upgraded"),
    ("1.0+dfsg-1", "1.0-1", "downgraded"),
    ("1.0", "0:1.0", "changed"),  # the same version, spelt twice
    ("1.0-1", "1.0-1", "same"),
    ("not a version!", "1.0", "changed"),
])
def test_debian_version_order(old: str, new: str, expected: str) -> None:
    assert compare_apt_versions(old, new) == expected


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("1.0", "1.0.post1", "upgraded"),
    ("1.0.post1", "1.0", "downgraded"),
    ("2.0rc1", "2.0", "upgraded"),
    ("2.0", "2.0rc1", "downgraded"),
    ("1.0", "2.0rc1", "upgraded"),
    ("1.0.dev1", "1.0a1", "upgraded"),
    ("1.0", "1.0+local", "upgraded"),  # a local version sorts after its public one
    ("1.0+local", "1.0", "downgraded"),
    ("2.3.0+cpu", "2.3.0+cu121", "upgraded"),
    ("1.9", "1.10", "upgraded"),
    ("1!1.0", "2.0", "downgraded"),
    ("1.0", "1.0.0", "changed"),
    ("1.0", "1.0", "same"),
    ("not-a-version", "1.0", "changed"),
])
def test_pep440_order(old: str, new: str, expected: str) -> None:
    assert compare_pip_versions(old, new) == expected


# -- the comparison -------------------------------------------------------------


def test_diff_apt_rows() -> None:
    d = diff_locks(old_lock(), new_lock())
    assert rows(d, "apt") == {
        ("libc6", "amd64"): ("upgraded", "2.36-9", "2.36-9+deb12u1"),
        ("epochy", "amd64"): ("downgraded", "1:1.0-1", "2.0-1"),
        ("rcpkg", "amd64"): ("upgraded", "1.0~rc1-1", "1.0-1"),
        ("binnmu", "amd64"): ("upgraded", "1.0-1", "1.0-1+b1"),
        ("zlib1g", "amd64"): ("rebuilt", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1"),
        ("oldpkg", "amd64"): ("removed", "0.9-2", ""),
        ("newpkg", "amd64"): ("added", "", "3.0-1"),
        ("minor", "amd64"): ("upgraded", "1.9-1", "1.10-1"),
    }
    assert d.apt is not None
    assert [r.name for r in d.apt] == sorted(r.name for r in d.apt)
    rebuilt = next(r for r in d.apt if r.change == "rebuilt")
    assert (rebuilt.old_hashes, rebuilt.new_hashes) == ((h("2"),), (h("6"),))


def test_diff_pip_rows() -> None:
    d = diff_locks(old_lock(), new_lock())
    assert rows(d, "pip") == {
        ("numpy", VENV): ("upgraded", "1.26.4", "2.0.0"),
        ("requests", VENV): ("downgraded", "2.32.0", "2.31.0"),
        ("postpkg", VENV): ("upgraded", "1.0", "1.0.post1"),
        ("rcdist", VENV): ("upgraded", "2.0rc1", "2.0"),
        ("torch", VENV): ("upgraded", "2.3.0+cpu", "2.3.0+cu121"),
        ("six", VENV): ("rebuilt", "1.16.0", "1.16.0"),
        ("gone", VENV): ("removed", "0.1", ""),
        ("fresh", VENV): ("added", "", "1.0"),
    }


def test_diff_base_system_and_counts() -> None:
    d = diff_locks(old_lock(), new_lock())
    assert d.base == (
        core.BaseChange("debian:bookworm-slim", "changed", "sha256:" + sha("a"),
                        "sha256:" + sha("c")),
        core.BaseChange("node:20", "added", "", "sha256:" + sha("d")),
    )
    assert d.snapshot == core.ValueChange("20250101T000000Z", "20250601T000000Z")
    assert d.distro is None and d.platform is None
    assert d.counts("apt") == {"upgraded": 4, "downgraded": 1, "added": 1, "removed": 1,
                               "rebuilt": 1, "changed": 0}
    assert d.counts("base") == {"changed": 1, "added": 1, "removed": 0}
    assert not d.identical
    assert diffformat.summary_line(d) == (
        "apt: 4 upgraded, 1 downgraded, 1 added, 1 removed, 1 rebuilt · "
        "pip: 4 upgraded, 1 downgraded, 1 added, 1 removed, 1 rebuilt · "
        "base: digest changed, digest added · snapshot: changed"
    )


def test_identical_lock() -> None:
    d = diff_locks(old_lock(), old_lock())
    assert d.identical
    assert d.apt == () and d.pip == () and d.base == ()
    assert diffformat.summary_line(d) == "no differences (9 apt, 9 pip, 2 base)"


def test_hashes_compared_only_when_both_sides_have_them() -> None:
    old = old_lock()
    stripped = dataclasses.replace(
        old,
        apt=tuple(dataclasses.replace(p, sha256="") for p in old.apt),
        pip=tuple(dataclasses.replace(p, hashes=()) for p in old.pip),
    )
    assert diff_locks(old, stripped).identical
    assert diff_locks(stripped, old).identical


def test_pip_names_compared_canonically_and_by_env() -> None:
    old = make_lock(distro=Distro("debian"),
               pip=(PipPackage("PyYAML", "6.0", "/opt/venv"),
                    PipPackage("pyyaml", "5.4", "/usr")))
    new = make_lock(distro=Distro("debian"),
               pip=(PipPackage("pyyaml", "6.0", "/opt/venv"),
                    PipPackage("pyyaml", "6.0", "/usr")))
    d = diff_locks(old, new)
    assert rows(d, "pip") == {("pyyaml", "/usr"): ("upgraded", "5.4", "6.0")}
    assert d.multi_env


def test_multiarch_keys_and_flags() -> None:
    old, new = multi_locks()
    d = diff_locks(old, new)
    assert rows(d, "apt") == {
        ("libc6", "amd64"): ("removed", "2.36-9", ""),
        ("libc6", "arm64"): ("added", "", "2.41-6"),
        ("archswap", "all"): ("added", "", "1.1-1"),
        ("archswap", "amd64"): ("removed", "1.0-1", ""),
    }
    assert d.multi_arch and d.multi_env and d.across is None
    assert d.distro == core.ValueChange("debian 12 (bookworm)", "debian 13 (trixie)")
    assert d.platform == core.ValueChange("linux/amd64", "linux/arm64")
    assert d.apt_counts_by_arch() == {
        "all": {**dict.fromkeys(core.CHANGES, 0), "added": 1},
        "amd64": {**dict.fromkeys(core.CHANGES, 0), "removed": 2},
        "arm64": {**dict.fromkeys(core.CHANGES, 0), "added": 1},
    }


def test_two_platforms_locks_are_compared_with_each_other() -> None:
    """amd64's lock against arm64's: each one's own packages paired by name, not all
    removed and added; foreign and ``all`` packages keyed as ever."""
    old, new = multi_locks()
    d = core.diff_platforms(old, new)
    assert d.across == core.ValueChange("linux/amd64", "linux/arm64")
    assert rows(d, "apt") == {
        ("libc6", "amd64,arm64"): ("upgraded", "2.36-9", "2.41-6"),
        ("archswap", "all"): ("added", "", "1.1-1"),
        ("archswap", "amd64,arm64"): ("removed", "1.0-1", ""),
    }
    assert d.platform == core.ValueChange("linux/amd64", "linux/arm64") and not d.platforms
    # The .deb of each architecture has its own bytes: not "rebuilt". An
    # ``all`` package's .deb is the same file on both: it still is compared.
    a = make_lock(apt=(AptPackage("bash", "5.2-1", "amd64", sha256="1" * 64),
                       AptPackage("tzdata", "2025b-1", "all", sha256="3" * 64)))
    b = make_lock(platform="linux/arm64",
                  apt=(AptPackage("bash", "5.2-1", "arm64", sha256="2" * 64),
                       AptPackage("tzdata", "2025b-1", "all", sha256="4" * 64)))
    d = core.diff_platforms(a, b)
    assert rows(d, "apt") == {("tzdata", "all"): ("rebuilt", "2025b-1", "2025b-1")}
    assert d.across is not None and not d.identical
    # A lock of several platforms holding one counts as that one platform.
    assert core.diff_platforms(a.with_part(a), b).across == d.across
    # The same platform on both sides, or --platform: compared as before.
    assert core.diff_platforms(a, a).across is None
    with pytest.raises(PlatformMissingError, match="has no linux/arm64 part"):
        core.diff_platforms(a, b, platforms=["linux/arm64"])


def test_single_arch_with_all_is_not_multiarch() -> None:
    assert not diff_locks(old_lock(), new_lock()).multi_arch


def test_only_restricts_categories() -> None:
    pip_only: tuple[core.Category, ...] = ("pip",)
    d = diff_locks(old_lock(), new_lock(), only=pip_only)
    assert d.apt is None and d.base is None and d.snapshot is None
    assert d.counts("apt") is None
    assert d.pip
    same_pip = dataclasses.replace(new_lock(), pip=old_lock().pip)
    assert diff_locks(old_lock(), same_pip, only=pip_only).identical
    assert not diff_locks(old_lock(), same_pip).identical


def test_base_not_compared_for_an_image_without_dockerfile() -> None:
    no_bases = dataclasses.replace(old_lock(), base=())
    d = diff_locks(old_lock(), no_bases, compare_base=False)
    assert d.base is None and d.identical
    assert diff_locks(old_lock(), no_bases).base == (
        core.BaseChange("debian:bookworm-slim", "removed", "sha256:" + sha("a")),
        core.BaseChange("python:3.11-slim", "removed", "sha256:" + sha("b")),
    )


def test_base_same_ref_twice_and_local_ids() -> None:
    old = dataclasses.replace(old_lock(), base=(
        Base(0, "debian:bookworm", "sha256:" + sha("a")),
        Base(1, "debian:bookworm", "sha256:" + sha("a")),
        Base(2, "mine:dev", image_id="sha256:" + sha("e")),
    ))
    new = dataclasses.replace(old, base=(
        Base(0, "debian:bookworm", "sha256:" + sha("a")),
        Base(1, "debian:bookworm", "sha256:" + sha("b")),
        Base(2, "mine:dev", image_id="sha256:" + sha("f")),
    ))
    d = diff_locks(old, new)
    assert d.base == (
        core.BaseChange("debian:bookworm", "changed", "sha256:" + sha("a"), "sha256:" + sha("b")),
        core.BaseChange("mine:dev", "changed", "id:sha256:" + sha("e"), "id:sha256:" + sha("f")),
    )


# -- formats --------------------------------------------------------------------


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with RELOCK_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture
def two_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.chdir(tmp_path)
    write(old_lock(), Path("old.lock"))
    write(new_lock(), Path("new.lock"))
    return "old.lock", "new.lock"


def run(*args: str, color: bool = False) -> Any:
    return CliRunner().invoke(cli, ["diff", *args], catch_exceptions=False, color=color)


@pytest.mark.parametrize(("fmt", "golden"), [
    ("text", "text.txt"), ("markdown", "markdown.md"), ("json", "json.json"),
])
def test_golden_formats(two_locks: tuple[str, str], fmt: str, golden: str) -> None:
    result = run(*two_locks, "--format", fmt)
    assert result.exit_code == 1, result.output
    check_golden(golden, result.stdout)


@pytest.mark.parametrize(("fmt", "golden"), [
    ("text", "stat.txt"), ("markdown", "stat.md"), ("json", "stat.json"),
])
def test_golden_stat(two_locks: tuple[str, str], fmt: str, golden: str) -> None:
    result = run(*two_locks, "--stat", "--format", fmt)
    assert result.exit_code == 1
    check_golden(golden, result.stdout)


@pytest.mark.parametrize(("fmt", "golden"), [
    ("text", "multi.txt"), ("markdown", "multi.md"), ("json", "multi.json"),
])
def test_golden_multiarch_multienv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   fmt: str, golden: str) -> None:
    monkeypatch.chdir(tmp_path)
    old, new = multi_locks()
    write(old, Path("a.lock"))
    write(new, Path("b.lock"))
    result = run("a.lock", "b.lock", "--format", fmt)
    assert result.exit_code == 1
    check_golden(golden, result.stdout)


def test_text_is_coloured_on_a_terminal_only(two_locks: tuple[str, str]) -> None:
    coloured = run(*two_locks, color=True).stdout
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == run(*two_locks).stdout
    assert "\x1b[" not in run(*two_locks).stdout


def test_text_columns_line_up(two_locks: tuple[str, str]) -> None:
    text = run(*two_locks).stdout
    apt = text.split("\napt\n")[1].split("\npip\n")[0].splitlines()
    pip = text.split("\npip\n")[1].split("\n\n")[0].splitlines()
    for lines in (apt, pip):
        assert len(lines) == 8
        # The arrows, and so the old versions before them, share a column.
        assert len({ln.index("→") for ln in lines if "→" in ln}) == 1
        # So do the names after the change column.
        assert len({len(ln) - len(ln[2:].lstrip("abcdefghijklmnopqrstuvwxyz").lstrip())
                    for ln in lines}) == 1


def test_markdown_escapes_cells() -> None:
    assert diffformat._md("1.0~rc1|x") == "1.0\\~rc1\\|x"


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_self_diff_is_identical(two_locks: tuple[str, str], fmt: str) -> None:
    result = run("old.lock", "old.lock", "--format", fmt)
    assert result.exit_code == 0
    if fmt == "text":
        assert result.stdout == "no differences (9 apt, 9 pip, 2 base)\n"
    elif fmt == "markdown":
        assert "no differences" in result.stdout and "|" not in result.stdout
    else:
        doc = json.loads(result.stdout)
        assert doc["identical"] is True
        assert doc["apt"] == [] and doc["pip"] == [] and doc["base"] == []


def test_only_sets_the_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(old_lock(), Path("old.lock"))
    write(dataclasses.replace(new_lock(), pip=old_lock().pip), Path("new.lock"))
    result = run("old.lock", "new.lock", "--only", "pip")
    assert (result.exit_code, result.stdout) == (0, "no differences (9 pip)\n")
    result = run("old.lock", "new.lock", "--only", "pip", "--only", "base")
    assert (result.exit_code, result.stdout.splitlines()[-1]) == (
        1, "base: digest changed, digest added")
    doc = json.loads(run("old.lock", "new.lock", "--only", "pip", "--format", "json").stdout)
    assert doc["apt"] is None and doc["base"] is None and doc["pip"] == []
    assert doc["summary"]["apt"] is None and doc["summary"]["snapshot"] is None


# -- trouble: exit 2 with one line ----------------------------------------------


def test_unreadable_lock_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(old_lock(), Path("old.lock"))
    Path("bad.lock").write_text("version = 99\n", encoding="utf-8")
    result = run("old.lock", "bad.lock")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "newer than this relock understands" in result.stderr
    Path("junk.lock").write_text("[[apt]\n", encoding="utf-8")
    result = run("junk.lock", "old.lock")
    assert result.exit_code == 2 and "junk.lock: not valid TOML" in result.stderr


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q", "-b", "main")
    Path("locks").mkdir()
    write(old_lock(), Path("locks/sci.lock"))
    git(tmp_path, "add", "locks/sci.lock")
    git(tmp_path, "commit", "-q", "-m", "old")
    git(tmp_path, "tag", "v1.2")
    write(new_lock(), Path("locks/sci.lock"))
    return tmp_path


def test_git_revision_side(repo: Path) -> None:
    result = run("v1.2:locks/sci.lock", "locks/sci.lock", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["old"] == {"ref": "v1.2:locks/sci.lock", "kind": "git"}
    assert doc["new"] == {"ref": "locks/sci.lock", "kind": "file"}
    assert doc["summary"]["apt"]["upgraded"] == 4
    assert run("HEAD:locks/sci.lock", "v1.2:locks/sci.lock").exit_code == 0


def test_git_unknown_revision(repo: Path) -> None:
    result = run("v9.9:locks/sci.lock", "locks/sci.lock")
    assert result.exit_code == 2
    assert "'v9.9' is not a known git revision" in result.stderr
    assert result.stderr.count("\n") == 1


def test_git_path_not_at_revision(repo: Path) -> None:
    result = run("v1.2:locks/nope.lock", "locks/sci.lock")
    assert result.exit_code == 2
    assert "'locks/nope.lock' is not in revision v1.2" in result.stderr


def test_git_lock_errors_directly(repo: Path) -> None:
    with pytest.raises(GitRevisionError, match="unknown git revision"):
        sides.git_lock("nosuch", "locks/sci.lock", repo)
    assert sides.git_lock("v1.2", "locks/sci.lock", repo).snapshot == "20250101T000000Z"


def test_neither_file_revision_nor_image(two_locks: tuple[str, str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.image import engine

    monkeypatch.setattr(engine, "connect", FakeSource)
    result = run("old.lock", "nosuch:latest")
    assert result.exit_code == 2
    assert result.stderr == ("relock: error: 'nosuch:latest' is neither a lock file, a "
                             "REV:PATH at a git revision, nor an image in the engine\n")


def test_no_engine_for_an_image_side(tmp_path: Path) -> None:
    def down() -> Any:
        raise EngineError("cannot reach the container engine at unix:///nowhere")

    with pytest.raises(EngineError, match=r"neither a lock file.*cannot be asked"):
        sides.load_side("typo.lock.old", cwd=tmp_path, connect=down)
    with pytest.raises(ImageNotFoundError, match="neither"):
        sides.load_side("typo", cwd=tmp_path, connect=FakeSource)


def test_missing_lock_file_is_not_looked_up_as_an_image(two_locks: tuple[str, str]) -> None:
    result = run("old.lock", "locks/typo.lock")
    assert result.exit_code == 2
    assert result.stderr == "relock: error: locks/typo.lock: no such lock file\n"


def test_file_wins_over_revision_and_image(repo: Path) -> None:
    side = sides.load_side("locks/sci.lock", connect=FakeSource)
    assert side.kind == "file" and side.lock.snapshot == "20250601T000000Z"


# -- self-checks ----------------------------------------------------------------


def test_help_text() -> None:
    result = CliRunner().invoke(cli, ["diff", "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Show what changed from OLD to NEW" in result.output
    assert "--format [text|markdown|json]" in result.output


def test_cli_import_stays_light() -> None:
    code = ("import sys, relock.cli; heavy = [m for m in ('docker', 'debian', 'packaging', "
            "'relock.lock.diff', 'relock.lock.lockfile') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def _json_keys(doc: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            if prefix.endswith("apt_by_arch"):
                k = "ARCH"
            elif prefix.endswith("[].options"):
                k = "KEY"
            path = f"{prefix}.{k}" if prefix else k
            keys.add(path)
            keys |= _json_keys(v, path)
    elif isinstance(doc, list):
        for item in doc:
            keys |= _json_keys(item, prefix + "[]")
    return keys


def test_json_keys_are_documented(two_locks: tuple[str, str]) -> None:
    documented = set(re.findall(r"^\| `([^`]+)` \|", DOCS.read_text(encoding="utf-8"),
                                flags=re.MULTILINE))
    docs: list[Any] = [json.loads(run(*two_locks, "--format", "json").stdout)]
    old, new = multi_locks()
    d = diff_locks(old, new)
    a = sides.Side("a", "file", old)
    docs.append(diffformat.to_json(d, a, sides.Side("b", "image", new)))
    across = core.diff_platforms(old, new)
    docs.append(diffformat.to_json(across, a, sides.Side("b", "file", new)))
    produced = set().union(*(_json_keys(doc) for doc in docs))
    assert produced == documented


def test_the_frontends_pin_is_a_base_row() -> None:
    from relock.lock.lockfile import Frontend

    pin = Frontend("docker/dockerfile:1", "sha256:" + sha("e"))
    old = dataclasses.replace(old_lock(), frontend=pin)
    moved = dataclasses.replace(old, frontend=dataclasses.replace(pin, digest="sha256:" + sha("f")))
    assert diff_locks(old, old).identical
    d = diff_locks(old, moved)
    assert d.base == (core.BaseChange("# syntax=docker/dockerfile:1", "changed",
                                      "sha256:" + sha("e"), "sha256:" + sha("f")),)
    assert not d.identical
    assert diff_locks(old_lock(), old).base == (
        core.BaseChange("# syntax=docker/dockerfile:1", "added", "", "sha256:" + sha("e")),)
    by_arg = dataclasses.replace(old, frontend=dataclasses.replace(pin, build_arg=True))
    assert [(r.ref, r.change) for r in diff_locks(old, by_arg).base or ()] == [
        ("# syntax=docker/dockerfile:1", "removed"),
        ("BUILDKIT_SYNTAX=docker/dockerfile:1", "added")]
