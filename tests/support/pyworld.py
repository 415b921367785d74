"""A small Python world on loopback: wheels on a simple index that pip (and relock) are
pointed at, Python locks written by uv itself against it, and a folder tree holding a venv
with those distributions installed (their dist-info, as freeze reads them)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import simpleindex

UV = Path(sys.executable).with_name("uv")
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class World:
    url: str  # the simple index's URL
    # "a" relock-demo-a 1.0, "b" relock-demo-b 2.0, "b1" 1.0, "x" relock-demo-x 0.1
    files: dict[str, Path]

    def sha(self, key: str) -> str:
        return simpleindex.sha256(self.files[key])


@contextlib.contextmanager
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The index serving a 1.0 (needs b>=2), b 2.0, b 1.0 and x 0.1 (needed by none); pip
    and relock's cache pointed at it and into ``tmp_path``."""
    wheels = tmp_path / "wheels"
    files = {"a": simpleindex.wheel(wheels, "relock-demo-a", "1.0",
                                    requires=["relock-demo-b>=2"]),
             "b": simpleindex.wheel(wheels, "relock-demo-b", "2.0"),
             "b1": simpleindex.wheel(wheels, "relock-demo-b", "1.0"),
             "x": simpleindex.wheel(wheels, "relock-demo-x", "0.1")}
    served = {"relock-demo-a": [files["a"]], "relock-demo-b": [files["b"], files["b1"]],
              "relock-demo-x": [files["x"]]}
    with simpleindex.serve(served, tmp_path / "index") as url:
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("PIP_INDEX_URL", url)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        yield World(url, files)


def uv(*args: str, cwd: Path | None = None) -> str:
    """uv with no configuration, cache or downloads of its own; its stdout."""
    if not UV.exists():
        pytest.skip("uv is a test extra")
    env = {**os.environ, "UV_NO_CONFIG": "1", "UV_NO_CACHE": "1",
           "UV_PYTHON_DOWNLOADS": "never"}
    done = subprocess.run([str(UV), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def uv_pylock(w: World, out: Path, requirements: Sequence[str] = ("relock-demo-a",)) -> Path:
    """``uv pip compile REQS -o pylock.toml``: a pylock written by uv."""
    reqs = out.parent / "requirements.in"
    reqs.write_text("".join(f"{r}\n" for r in requirements))
    uv("pip", "compile", "-q", "--index-url", w.url, "--python", sys.executable,
       "--python-platform", "x86_64-manylinux_2_28", str(reqs), "-o", str(out))
    return out


def uv_lock(w: World, project: Path, dependencies: Sequence[str] = ("relock-demo-a",)) -> Path:
    """``uv lock`` of a project needing ``dependencies``: its uv.lock."""
    project.mkdir(parents=True, exist_ok=True)
    deps = ", ".join(f'"{d}"' for d in dependencies)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">={PY}"\n'
        f"dependencies = [{deps}]\n")
    uv("lock", "-q", "--index-url", w.url, "--python", sys.executable, cwd=project)
    return project / "uv.lock"


def venv_tree(root: Path, installed: dict[str, str], prefix: str = "/opt/venv",
              installer: str = "uv") -> Path:
    """A Debian-looking folder tree with a venv at ``prefix`` holding ``installed``
    (name -> version) as an installer leaves them."""
    files = {"etc/os-release": 'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n',
             "var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\n"
                                    "Architecture: amd64\nVersion: 5.2.37-2+b5\n\n",
             f"{prefix.lstrip('/')}/pyvenv.cfg": f"home = /usr/bin\nversion = {PY}.1\n"}
    site = f"{prefix.lstrip('/')}/lib/python{PY}/site-packages"
    for name, version in installed.items():
        info = f"{site}/{name.replace('-', '_')}-{version}.dist-info"
        files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        files[f"{info}/INSTALLER"] = f"{installer}\n"
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body)
    return root
