"""relock/update/outdated.py: template specifiers, version choice and output (index faked)."""

from __future__ import annotations

import json
from pathlib import Path

from relock.lock.lockfile import PipPackage, PythonEnv
from relock.update import outdated as core
from tests.factories import make_lock
from tests.fakes import FakeIndex


def index_of(files: dict[str, list[tuple[str, str]]]) -> FakeIndex:
    """An index listing each project's (filename, Requires-Python), without hashes."""
    index = FakeIndex()
    for name, listed in files.items():
        for filename, requires in listed:
            index.add(name, filename, requires_python=requires, sha256="")
    return index


def test_template_requirements_reads_pip_words_and_requirement_files(tmp_path: Path) -> None:
    (tmp_path / "req.txt").write_text("# pins\nscipy>=1.10,<1.16  # comment\n--pre\npandas\n")
    (tmp_path / "Dockerfile.in").write_text(
        "FROM debian\n"
        "RUN apt-get install -y python3-pip && pip install --no-cache-dir 'numpy<2.5' \\\n"
        "    matplotlib -r req.txt\n"
        "RUN /opt/venv/bin/python -m pip install Jupyter_Lab==4.* && echo 'x<2'\n"
        "RUN pip install -r ../outside.txt\n")
    got = core.template_requirements(tmp_path / "Dockerfile.in")
    assert got == {"numpy": ["numpy<2.5"], "scipy": ["scipy<1.16,>=1.10"],
                   "jupyter-lab": ["Jupyter_Lab==4.*"]}
    assert core.template_requirements(tmp_path / "missing") == {}


def test_pip_outdated_newest_final_release_the_python_admits() -> None:
    lock = make_lock(
        python=(PythonEnv("/opt/venv", "3.11", "/opt/venv/lib/python3.11/site-packages"),),
        pip=(PipPackage("numpy", "2.1.0", "/opt/venv"), PipPackage("six", "1.17.0", "/opt/venv")))
    index = index_of({
        "numpy": [("numpy-2.1.0-cp311-cp311-manylinux_2_28_x86_64.whl", ""),
                  ("numpy-2.4.6.tar.gz", ">=3.11"), ("numpy-2.6.0.tar.gz", ">=3.12"),
                  ("numpy-2.5.0rc1.tar.gz", ">=3.11"), ("numpy-2.5.1.tar.gz", ">=3.11")],
        "six": [("six-1.17.0-py2.py3-none-any.whl", "")],
    })
    found, problems = core.pip_outdated(lock, index, {"numpy": ["numpy<2.5"]})
    assert problems == []
    assert [(o.name, o.newest, o.held_back_by, o.allowed, o.target) for o in found] == [
        ("numpy", "2.5.1", "numpy<2.5", "2.4.6", "2.4.6")]
    found, _ = core.pip_outdated(lock, index, {"numpy": ["numpy<2.2"]})
    assert (found[0].allowed, found[0].movable) == ("", False)


def test_pip_answers_are_cached(tmp_path: Path) -> None:
    index = index_of({"six": [("six-1.17.0-py2.py3-none-any.whl", "")]})
    for _ in range(2):
        assert core.pip_versions(index, "six", tmp_path) == [("1.17.0", "")]
    assert index.asked == ["six"]
    core.pip_versions(index, "six", tmp_path, ttl=0)
    assert index.asked == ["six", "six"]


def test_security_suites() -> None:
    assert core.is_security_suite("trixie-security")
    assert core.is_security_suite("buster/updates")
    assert not core.is_security_suite("trixie-updates")


def test_formats() -> None:
    report = core.Report((
        core.Outdated("apt", "libc6", "2.41-12", "2.41-12+deb13u1", "trixie-security",
                      arch="amd64", security=True),
        core.Outdated("pip", "numpy", "2.1.0", "2.5.1", "/opt/venv",
                      held_back_by="numpy<2.5", allowed=""),
    ))
    assert report.outdated  # libc6 can move
    md = core.format_markdown(report)
    assert "| apt | libc6 | 2.41-12 | 2.41-12+deb13u1 | trixie-security | **security** |" in md
    assert "held back by numpy\\<2.5" in md  # escaped for Markdown
    doc = json.loads(core.format_json(report))
    assert doc["version"] == 1 and doc["outdated"] is True
    assert [p["movable"] for p in doc["packages"]] == [True, False]
    assert core.format_text(core.Report(())) == "nothing outdated\n"
    only_held = core.Report(report.packages[1:])
    assert not only_held.outdated
