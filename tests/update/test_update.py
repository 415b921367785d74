"""relock/update/update.py: choosing what moves, reading pip-compile, the candidate lock."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from relock.lock import lockfile
from relock.lock.lockfile import AptPackage, PipPackage, PythonEnv
from relock.update import update as core
from relock.update.outdated import Outdated, Report
from tests.factories import make_lock
from tests.fakes import FakeArchive

SHA = "ab" * 32
H = "sha256:" + "cd" * 32
LOCK = make_lock(
    apt=(AptPackage("curl", "8.1-1", "amd64", sha256=SHA, filename="pool/c/curl_8.1-1.deb"),
         AptPackage("libc6", "2.41-1", "amd64", sha256=SHA, filename="pool/g/libc6.deb")),
    python=(PythonEnv("/opt/venv", "3.11", "/opt/venv/lib/python3.11/site-packages", True),),
    pip=(PipPackage("numpy", "2.1.0", "/opt/venv", requested=True, hashes=(H,)),
         PipPackage("six", "1.16.0", "/opt/venv", hashes=(H,))),
)
REPORT = Report((
    Outdated("apt", "curl", "8.1-1", "8.2-1", "stable", arch="amd64"),
    Outdated("apt", "libc6", "2.41-1", "2.41-2", "stable-security", arch="amd64", security=True),
    Outdated("pip", "numpy", "2.1.0", "2.5.0", "/opt/venv", held_back_by="numpy<2.5",
             allowed="2.4.0"),
))


def test_choose_by_name_security_and_all() -> None:
    def names(*args: str, **kw: bool) -> list[str]:
        chosen, _ = core.choose(REPORT, LOCK, args, security=kw.get("security", False),
                                everything=kw.get("everything", False))
        return [o.name for o in chosen]

    assert names("curl") == ["curl"]
    assert names(security=True) == ["libc6"]
    assert names(everything=True) == ["curl", "libc6", "numpy"]
    assert names("NumPy") == ["numpy"]
    _, stuck = core.choose(REPORT, LOCK, ["six"], security=False, everything=False)
    assert stuck == ["six: already the newest version"]
    with pytest.raises(core.UpdateError, match="nothing-such is not in the lock"):
        core.choose(REPORT, LOCK, ["nothing-such"], security=False, everything=False)


def test_parse_compiled() -> None:
    text = ("numpy==2.4.0 \\\n    --hash=sha256:" + "11" * 32 + " \\\n    --hash=sha256:"
            + "00" * 32 + "\nSix==1.17.0 \\\n    --hash=sha256:" + "22" * 32 + "\n"
            "# via foo\n")
    assert core.parse_compiled(text) == {
        "numpy": ("2.4.0", ("sha256:" + "00" * 32, "sha256:" + "11" * 32)),
        "six": ("1.17.0", ("sha256:" + "22" * 32,)),
    }


def curl_archive() -> FakeArchive:
    archive = FakeArchive()
    archive.add("curl", "8.2-1", "amd64", suite="stable", filename="pool/c/curl_8.2-1.deb",
                sha256="ef" * 32)
    return archive


def fake_compile(output: str) -> Any:
    def run(args: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        assert "--upgrade-package" in args and "numpy==2.4.0" in args
        # The lock's pins are pip-compile's existing output, the template's specifier its input.
        assert (cwd / "requirements.txt").read_text() == "numpy==2.1.0\nsix==1.16.0\n"
        assert (cwd / "requirements.in").read_text() == "numpy<2.5\n"
        (cwd / "requirements.txt").write_text(output)
        return subprocess.CompletedProcess(args, 0, "", "")
    return run


def test_plan_replaces_only_the_moving_entries() -> None:
    out = (f"numpy==2.4.0 \\\n    --hash={H}\nsix==1.17.0 \\\n    --hash={H}\n"
           f"packaging==25.0 \\\n    --hash={H}\n")
    plan = core.plan(LOCK, REPORT, ["curl", "numpy"], archive=curl_archive(),
                     template={"numpy": ["numpy<2.5"]}, index_urls=["http://127.0.0.1:9/"],
                     run=fake_compile(out))
    assert [(m.name, m.locked, m.target, m.why) for m in plan.moves] == [
        ("curl", "8.1-1", "8.2-1", "asked"), ("numpy", "2.1.0", "2.4.0", "asked"),
        ("packaging", "", "25.0", "needed"), ("six", "1.16.0", "1.17.0", "needed")]
    apt = {p.name: p for p in plan.candidate.apt}
    assert (apt["curl"].version, apt["curl"].sha256, apt["curl"].filename) == (
        "8.2-1", "ef" * 32, "pool/c/curl_8.2-1.deb")
    assert apt["libc6"] == LOCK.apt[1]
    assert {p.name: p.version for p in plan.candidate.pip} == {
        "numpy": "2.4.0", "packaging": "25.0", "six": "1.17.0"}


def test_a_resolver_conflict_is_an_error_with_its_words() -> None:
    def run(args: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 2, "", "WARNING: x\nCould not find a version "
                                           "that matches relocktest-zzz>=5\n")
    with pytest.raises(core.UpdateError, match=r"cannot resolve the update of numpy in "
                       r"/opt/venv: Could not find a version that matches relocktest-zzz>=5"):
        core.plan(LOCK, REPORT, ["numpy"], template={"numpy": ["numpy<2.5"]}, run=run)


def test_a_downgrade_is_refused() -> None:
    out = f"numpy==2.4.0 \\\n    --hash={H}\nsix==1.0.0 \\\n    --hash={H}\n"
    with pytest.raises(core.UpdateError, match=r"would downgrade six 1\.16\.0 -> 1\.0\.0"):
        core.plan(LOCK, REPORT, ["numpy"], template={"numpy": ["numpy<2.5"]},
                  run=fake_compile(out))


def test_header_image() -> None:
    assert lockfile.header_image("# Remake it with: relock freeze 'a b' -f x -o y\n") == "a b"
    assert lockfile.header_image("# Remake it with: relock freeze --rootfs /srv -o y\n") == (
        "--rootfs /srv")
    assert lockfile.header_image("") == "IMAGE"


def test_a_package_of_the_base_image_does_not_move() -> None:
    chosen, stuck = core.choose(REPORT, LOCK, [], security=True, everything=False,
                                in_base={("libc6", "2.41-1", "amd64")})
    assert chosen == []
    assert stuck == ["libc6: 2.41-1 comes with the base image; a new base digest (re-freeze) "
                     "moves it to 2.41-2"]
