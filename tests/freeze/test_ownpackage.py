"""The project's own package (``pip install .``): read from the image as built from a
folder, locked as such, and its build requirements found in the context and resolved."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from relock.freeze import ownpackage
from relock.inventory.pyenv import distributions
from relock.lock.lockfile import PipPackage, loads, to_toml
from tests.factories import make_lock
from tests.fakes import FakeIndex, MemFS

SITE = "/opt/venv/lib/python3.13/site-packages"
RECORD = b"myapp/__init__.py,sha256=abc,10\nmyapp-3.1.1.dist-info/RECORD,,\n"


def dist_info(direct_url: object) -> dict[str, bytes]:
    info = f"{SITE}/myapp-3.1.1.dist-info"
    files = {f"{info}/METADATA": b"Metadata-Version: 2.1\nName: myapp\nVersion: 3.1.1\n",
             f"{info}/INSTALLER": b"pip\n", f"{info}/RECORD": RECORD}
    if direct_url is not None:
        files[f"{info}/direct_url.json"] = (direct_url if isinstance(direct_url, bytes)
                                            else json.dumps(direct_url).encode())
    return files


@pytest.mark.parametrize("direct_url", [
    {"url": "file:///src", "dir_info": {}},
    {"url": "file:///src", "dir_info": {"editable": True}},
])
def test_a_distribution_installed_from_a_folder_is_read_as_such(direct_url: object) -> None:
    [d] = distributions(MemFS(dist_info(direct_url)), SITE, "/opt/venv")
    assert d.local_dir == "/src"
    assert d.record_sha256 == hashlib.sha256(RECORD).hexdigest()


@pytest.mark.parametrize("direct_url", [
    None,  # from an index
    {"url": "https://files.example/myapp-3.1.1.tar.gz", "archive_info": {}},
    {"url": "file:///tmp/myapp-3.1.1.whl", "archive_info": {}},  # a local file, not a folder
    {"url": "git+https://example/myapp", "vcs_info": {"vcs": "git"}},
    b"not json", b"[]", {"url": 5, "dir_info": {}}, {"url": "file://", "dir_info": {}},
    b"{" + b" " * 70000 + b"}",
])
def test_anything_else_is_not_a_local_folder(direct_url: object) -> None:
    [d] = distributions(MemFS(dist_info(direct_url)), SITE, "/opt/venv")
    assert (d.local_dir, d.record_sha256) == ("", "")


def test_the_lock_keeps_the_kind_through_its_text() -> None:
    lock = make_lock(pip=(
        PipPackage("myapp", "3.1.1", "/opt/venv", hashes=("sha256:" + "a" * 64,),
                   kind="context"),
        PipPackage("setuptools", "80.9.0", "/opt/venv", hashes=("sha256:" + "b" * 64,),
                   kind="build"),
        PipPackage("setuptools", "75.0.0", "/opt/venv", hashes=("sha256:" + "c" * 64,)),
    ))
    again = loads(to_toml(lock))
    assert again.pip == lock.sorted().pip
    assert 'kind = "build"' in to_toml(lock) and 'kind = "context"' in to_toml(lock)


def project(folder: Path, text: str, name: str = "pyproject.toml") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_projects_are_found_in_the_context_by_name(tmp_path: Path) -> None:
    project(tmp_path, '[project]\nname = "My_App"\n[build-system]\n'
                      'requires = ["setuptools>=61", "wheel"]\n')
    project(tmp_path / "libs" / "core", '[tool.poetry]\nname = "core"\n[build-system]\n'
                                        'requires = ["poetry-core>=1.0"]\n')
    project(tmp_path / "legacy", "[metadata]\nname = old-app\n", "setup.cfg")
    (tmp_path / "legacy" / "setup.py").write_text("import setuptools; setuptools.setup()\n")
    project(tmp_path / ".venv" / "x", '[project]\nname = "hidden"\n')
    project(tmp_path / "bad", "[project\n")
    (tmp_path / "link").symlink_to("/", target_is_directory=True)
    found = {p.name: p.requires for p in ownpackage.projects(tmp_path)}
    assert found == {"my-app": ("setuptools>=61", "wheel"), "core": ("poetry-core>=1.0",),
                     "old-app": ("setuptools>=40.8.0",)}


class FakeCompile:
    """pip-compile's stand-in: writes the pins it was given for the requirements it reads."""

    def __init__(self, pins: dict[str, str], code: int = 0) -> None:
        self.pins, self.code, self.calls = pins, code, []

    def __call__(self, args: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((args, (cwd / "requirements.in").read_text()))
        (cwd / "requirements.txt").write_text("".join(
            f"{n}=={v} \\\n    --hash=sha256:{hashlib.sha256(n.encode()).hexdigest()}\n"
            for n, v in self.pins.items()))
        return subprocess.CompletedProcess(args, self.code, "", "ERROR: no such project")


def test_build_requirements_are_resolved_and_locked_as_build(tmp_path: Path) -> None:
    project(tmp_path, '[project]\nname = "myapp"\n[build-system]\n'
                      'requires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    own = PipPackage("myapp", "3.1.1", "/opt/venv", hashes=("sha256:" + "a" * 64,),
                     kind="context")
    run = FakeCompile({"hatchling": "1.27.0", "pluggy": "1.6.0"})
    lock, warnings = ownpackage.add_build_requirements(
        make_lock(pip=(own,)), tmp_path, ["http://127.0.0.1:1/simple/"], run)
    assert warnings == []
    assert run.calls[0][1] == "hatchling\n"
    assert "--generate-hashes" in run.calls[0][0] and "http://127.0.0.1:1/simple/" in \
        run.calls[0][0]
    build = [(p.name, p.version, p.env, p.kind) for p in lock.pip if p.kind == "build"]
    assert build == [("hatchling", "1.27.0", "/opt/venv", "build"),
                     ("pluggy", "1.6.0", "/opt/venv", "build")]
    # Freezing again replaces them, never doubles them.
    again, _ = ownpackage.add_build_requirements(lock, tmp_path, ["http://x/simple/"], run)
    assert again.pip == lock.pip


def test_a_project_the_context_lacks_is_a_warning_that_says_what_helps(tmp_path: Path) -> None:
    own = PipPackage("myapp", "3.1.1", "/opt/venv", kind="context")
    lock, warnings = ownpackage.add_build_requirements(
        make_lock(pip=(own,)), tmp_path, ["http://x/simple/"], FakeCompile({}))
    assert lock.pip == (own,)
    [line] = warnings
    assert line.startswith("myapp==3.1.1 in /opt/venv was installed from a folder")
    assert "--context" in line


def test_a_resolution_that_fails_is_one_error(tmp_path: Path) -> None:
    project(tmp_path, '[project]\nname = "myapp"\n[build-system]\nrequires = ["nope"]\n')
    own = PipPackage("myapp", "3.1.1", "/opt/venv", kind="context")
    with pytest.raises(ownpackage.OwnPackageError,
                       match="cannot resolve the build requirements nope: ERROR: no such"):
        ownpackage.add_build_requirements(make_lock(pip=(own,)), tmp_path, ["http://x/"],
                                          FakeCompile({}, code=2))


def sdist(name: str, pyproject: str | None) -> bytes:
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        files = {f"{name}-1.0/PKG-INFO": f"Name: {name}\nVersion: 1.0\n"}
        if pyproject is not None:
            files[f"{name}-1.0/pyproject.toml"] = pyproject
        for path, text in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return out.getvalue()


def sdist_lock(index: FakeIndex, *files: tuple[str, bytes]) -> PipPackage:
    for filename, data in files:
        index.add("hx-sd", filename, data)
    hashes = tuple(sorted(f"sha256:{hashlib.sha256(d).hexdigest()}" for _, d in files))
    return PipPackage("hx-sd", "1.0", "/opt/venv", hashes=hashes)


def test_an_sdist_only_version_gives_its_build_requirements(tmp_path: Path) -> None:
    index = FakeIndex()
    p = sdist_lock(index, ("hx_sd-1.0.tar.gz", sdist(
        "hx_sd", '[build-system]\nrequires = ["flit_core>=3.2,<4"]\n')))
    found = ownpackage.sdist_requirements(make_lock(pip=(p,)), index, tmp_path)
    assert found == {("/opt/venv", "", ""): ["flit_core>=3.2,<4"]}
    # Cached by the locked hashes: asked again, the index hears nothing.
    asked = index.requests_made
    assert ownpackage.sdist_requirements(make_lock(pip=(p,)), index, tmp_path) == found
    assert index.requests_made == asked


def test_a_version_with_a_wheel_or_without_pyproject(tmp_path: Path) -> None:
    index = FakeIndex()
    wheel = sdist_lock(index, ("hx_sd-1.0.tar.gz", sdist("hx_sd", "[build-system]\n")),
                       ("hx_sd-1.0-py3-none-any.whl", b"a wheel"))
    assert ownpackage.sdist_requires(index, "hx-sd", "1.0", wheel.hashes) is None
    legacy = FakeIndex()
    old = sdist_lock(legacy, ("hx_sd-1.0.tar.gz", sdist("hx_sd", None)))
    assert ownpackage.sdist_requires(legacy, "hx-sd", "1.0", old.hashes) == \
        ownpackage.LEGACY_REQUIRES


@pytest.mark.parametrize("data, error", [
    (b"not a tar", "not a readable sdist"),
    (None, "its pyproject.toml is not TOML"),
])
def test_a_bad_sdist_is_one_error(data: bytes | None, error: str) -> None:
    index = FakeIndex()
    p = sdist_lock(index, ("hx_sd-1.0.tar.gz", data if data is not None
                           else sdist("hx_sd", "[build-system\n")))
    with pytest.raises(ownpackage.OwnPackageError, match=error):
        ownpackage.sdist_requires(index, "hx-sd", "1.0", p.hashes)
