"""relock export --format pylock: PEP 751 files that packaging reads and uv and pip
install, from a loopback index serving only the locked files, to exactly the locked set."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomli
from click.testing import CliRunner
from packaging.pylock import Pylock, PylockValidationError

from relock.cli import cli
from relock.lock import lockfile
from relock.lock.lockfile import Distro, Input, Lock, PipPackage, PythonEnv
from tests.support import simpleindex

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
HERE = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(platform.machine(), "")
UV = Path(sys.executable).with_name("uv")


@pytest.fixture
def locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, dict[str, str]]:
    """A lock of two environments, and a loopback index (pip's only one) of their files."""
    wheels = tmp_path / "wheels"
    a = simpleindex.wheel(wheels, "relock-demo-a", "1.0", requires=["relock-demo-b>=2"])
    b = simpleindex.wheel(wheels, "relock-demo-b", "2.0")
    other = simpleindex.wheel(wheels, "relock-demo-b", "1.0")
    envs = (PythonEnv("/opt/venv", PY, f"/opt/venv/lib/python{PY}/site-packages", venv=True),
            PythonEnv("/usr/local", PY, f"/usr/local/lib/python{PY}/site-packages"))
    pip = (PipPackage("relock-demo-a", "1.0", "/opt/venv", requested=True,
                      hashes=(f"sha256:{simpleindex.sha256(a)}",)),
           PipPackage("relock-demo-b", "2.0", "/opt/venv",
                      hashes=(f"sha256:{simpleindex.sha256(b)}",)),
           PipPackage("relock-demo-b", "1.0", "/usr/local",
                      hashes=(f"sha256:{simpleindex.sha256(other)}",)))
    lock = Lock(input=Input("Dockerfile.in", "a" * 64), distro=Distro("debian", "13", "trixie"),
                platform=HERE or "linux/amd64", python=envs, pip=pip)
    path = tmp_path / "x.lock"
    lockfile.write(lock, path)
    files = {"relock-demo-a": [a], "relock-demo-b": [b, other]}
    with simpleindex.serve(files, tmp_path) as url:
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("PIP_INDEX_URL", url)
        yield path, url, {"relock-demo-a": "1.0", "relock-demo-b": "2.0"}


def export(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["export", *args], catch_exceptions=False)
    return r.exit_code, r.stderr


def test_one_file_per_environment_read_by_packaging(
        locked: tuple[Path, str, dict[str, str]], tmp_path: Path) -> None:
    lock, url, _ = locked
    out = tmp_path / "out" / "pylock.toml"
    out.parent.mkdir()
    code, err = export("--lock", str(lock), "-o", str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == ["pylock.opt-venv.toml",
                                                           "pylock.usr-local.toml"]
    doc = tomli.loads((out.parent / "pylock.opt-venv.toml").read_text())
    pylock = Pylock.from_dict(doc)
    assert pylock.created_by == "relock"
    assert str(pylock.requires_python) == f"=={PY}.*"
    assert next(str(m) for m in pylock.environments or []).startswith(
        f'python_version == "{PY}" and sys_platform == "linux" and platform_machine == ')
    assert {(p.name, str(p.version)) for p in pylock.packages} == {
        ("relock-demo-a", "1.0"), ("relock-demo-b", "2.0")}
    for p in pylock.packages:
        (w,) = p.wheels or []
        assert w.url and w.url.startswith(url.removesuffix("simple/") + "files/")
        assert w.hashes["sha256"] == simpleindex.sha256(
            tmp_path / "wheels" / (w.name or ""))
    doc["packages"][0]["wheels"][0]["hashes"] = {}
    with pytest.raises(PylockValidationError):
        Pylock.from_dict(doc)


def test_env_option_gives_one_pylock_toml(locked: tuple[Path, str, dict[str, str]],
                                          tmp_path: Path) -> None:
    lock, _, _ = locked
    out = tmp_path / "pylock.toml"
    assert export("--lock", str(lock), "--env", "/usr/local", "-o", str(out))[0] == 0
    pylock = Pylock.from_dict(tomli.loads(out.read_text()))
    assert [(p.name, str(p.version)) for p in pylock.packages] == [("relock-demo-b", "1.0")]
    code, err = export("--lock", str(lock), "--env", "/nowhere", "-o", str(out))
    assert code == 2 and "no Python environment /nowhere" in err and err.count("\n") == 1


def test_a_locked_file_missing_on_the_index_is_one_line(
        locked: tuple[Path, str, dict[str, str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    lock, _, _ = locked
    with simpleindex.serve({}, tmp_path / "empty") as url:
        monkeypatch.setenv("PIP_INDEX_URL", url)
        code, err = export("--lock", str(lock), "-o", str(tmp_path / "pylock.toml"))
    assert code == 2 and "none of its locked files is on the configured package index" in err
    assert not list(tmp_path.glob("pylock*.toml"))


def _installed(venv: Path) -> dict[str, str]:
    done = subprocess.run([str(UV), "pip", "list", "--python", str(venv / "bin" / "python"),
                           "--format", "json"], capture_output=True, text=True, check=True)
    return {p["name"]: p["version"] for p in json.loads(done.stdout)}


@pytest.mark.skipif(not HERE, reason="the marker names linux amd64 or arm64 only here")
@pytest.mark.skipif(not UV.exists(), reason="uv is a test extra")
def test_uv_and_pip_install_exactly_the_locked_set(
        locked: tuple[Path, str, dict[str, str]], tmp_path: Path) -> None:
    lock, _, _ = locked
    # The lock's environment, read back from the lock file the export read.
    expected = {d.name: d.version for d in lockfile.read(lock).final().pip
                if d.env == "/opt/venv"}
    assert len(expected) == 2
    out = tmp_path / "pylock.toml"
    assert export("--lock", str(lock), "--env", "/opt/venv", "-o", str(out))[0] == 0
    env = {**os.environ, "UV_NO_CONFIG": "1", "UV_NO_CACHE": "1", "UV_PYTHON_DOWNLOADS": "never"}
    venv = tmp_path / "uv-venv"
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)], env=env,
                   check=True)
    done = subprocess.run([str(UV), "pip", "install", "--python", str(venv / "bin" / "python"),
                           "-r", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _installed(venv) == expected
    # pip (this venv's, which reads pylock files) into another fresh venv.
    venv2 = tmp_path / "pip-venv"
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv2)], env=env,
                   check=True)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv2 / "bin" / "python"),
                           "install", "-q", "-r", str(out)], capture_output=True, text=True,
                          env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    assert done.returncode == 0, done.stderr
    assert _installed(venv2) == expected
    shutil.rmtree(venv)
