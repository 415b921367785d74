"""relock freeze and the pylock.toml or uv.lock a template installs from: found in the
build context, read (uv wrote them, against a loopback index), held against the image."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.freeze import installs
from relock.template.dockerfile import parse
from tests.support import pyworld
from tests.support.pyworld import World

PYLOCK_TEMPLATE = ("FROM debian:trixie-slim\nRUN apt-get install -y python3-venv\n"
                   "COPY pylock.toml /tmp/\n"
                   "RUN uv pip install --python /opt/venv/bin/python -r /tmp/pylock.toml\n")
UV_TEMPLATE = ("FROM debian:trixie-slim\nCOPY pyproject.toml uv.lock /app/\n"
               "RUN cd /app && uv sync --frozen\n")


@pytest.fixture
def w(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with pyworld.world(tmp_path, monkeypatch) as found:
        yield found


def freeze(tmp_path: Path, template: str, installed: dict[str, str], *extra: str
           ) -> tuple[int, list[str], list[str], dict[str, object]]:
    """``relock freeze --rootfs`` of a venv holding ``installed``, with ``template`` in the
    context (tmp_path/ctx): exit code, notes, warnings, the --json summary."""
    shutil.rmtree(tmp_path / "root", ignore_errors=True)
    root = pyworld.venv_tree(tmp_path / "root", installed)
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile.in").write_text(template)
    r = CliRunner().invoke(cli, ["freeze", "--rootfs", str(root), "-f", str(ctx / "Dockerfile.in"),
                                 "--no-archive", "-o", str(tmp_path / "x.lock"), "--json",
                                 *extra], catch_exceptions=False)
    lines = r.stderr.splitlines()
    notes = [line for line in lines if "installs from" in line and "warning" not in line]
    # The tree's bash has no .deb entry (--no-archive): that warning is not these tests'.
    warnings = [line.removeprefix("relock: warning: ") for line in lines
                if line.startswith("relock: warning: ") and ".deb sha256" not in line]
    summary = json.loads(r.stdout) if r.exit_code == 0 else {}
    if summary:
        summary["warnings"] = [x for x in summary["warnings"] if ".deb sha256" not in x]
    return r.exit_code, notes, warnings, summary


def test_a_pylock_uv_wrote_that_agrees_is_a_note(w: World, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    pyworld.uv_pylock(w, tmp_path / "ctx" / "pylock.toml")
    code, notes, warnings, summary = freeze(
        tmp_path, PYLOCK_TEMPLATE, {"relock-demo-a": "1.0", "relock-demo-b": "2.0"})
    assert code == 0 and warnings == []
    assert notes == ["relock: Dockerfile.in line 4 installs from pylock.toml: its 2 "
                     "distributions agree with /opt/venv (versions and hashes)"]
    assert summary["warnings"] == []


def test_disagreements_are_warnings_naming_each_package(w: World, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    pylock = pyworld.uv_pylock(w, tmp_path / "ctx" / "pylock.toml")
    text = pylock.read_text().replace(w.sha("a"), "f" * 64)
    # A distribution the pylock pins that the image lacks, and one only for Windows.
    extra = ('\n[[packages]]\nname = "relock-demo-c"\nversion = "3.0"\n'
             'wheels = [{ url = "http://127.0.0.1:1/files/relock_demo_c-3.0-py3-none-any.whl",'
             f' hashes = {{ sha256 = "{"c" * 64}" }} }}]\n')
    windows = extra.replace("relock-demo-c", "relock-demo-w").replace("relock_demo_c",
                                                                      "relock_demo_w")
    windows = windows.replace('version = "3.0"\n', 'version = "3.0"\n'
                                                    "marker = \"sys_platform == 'win32'\"\n")
    pylock.write_text(text + extra + windows)
    code, notes, warnings, summary = freeze(
        tmp_path, PYLOCK_TEMPLATE,
        {"relock-demo-a": "1.0", "relock-demo-b": "1.0", "relock-demo-x": "0.1"})
    assert code == 0  # the image is frozen all the same
    assert warnings == [
        "pylock.toml: relock-demo-a 1.0: its file hashes are not those freeze found on the "
        "index for /opt/venv",
        "pylock.toml: relock-demo-b: it pins 2.0, /opt/venv has 1.0",
        "pylock.toml: relock-demo-c 3.0 is not in /opt/venv",
    ]
    assert notes == ["relock: Dockerfile.in line 4 installs from pylock.toml: 3 disagreements "
                     "with /opt/venv (warned), of its 3 distributions (versions and hashes); "
                     "/opt/venv also holds relock-demo-x"]
    assert summary["warnings"] == warnings
    assert (tmp_path / "x.lock").exists()


def test_a_uv_lock_that_uv_sync_installs_from(w: World, tmp_path: Path) -> None:
    pyworld.uv_lock(w, tmp_path / "ctx")
    code, notes, warnings, _ = freeze(tmp_path, UV_TEMPLATE,
                                      {"relock-demo-a": "1.0", "relock-demo-b": "2.0"})
    assert code == 0 and warnings == []
    # uv.lock is universal: the project itself (virtual) is not installed, and is no warning.
    assert notes == ["relock: Dockerfile.in line 3 installs from uv.lock: the 2 of its 3 "
                     "distributions that /opt/venv holds agree with /opt/venv (versions and "
                     "hashes)"]
    code, _, warnings, _ = freeze(tmp_path, UV_TEMPLATE,
                                  {"relock-demo-a": "1.0", "relock-demo-b": "1.0"})
    assert code == 0 and warnings == ["uv.lock: relock-demo-b: it pins 2.0, /opt/venv has 1.0"]


def test_without_the_index_only_versions_are_compared(w: World, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    pyworld.uv_pylock(w, tmp_path / "ctx" / "pylock.toml")
    code, notes, warnings, _ = freeze(tmp_path, PYLOCK_TEMPLATE,
                                      {"relock-demo-a": "1.0", "relock-demo-b": "2.0"},
                                      "--no-index")
    assert code == 0 and warnings == []
    assert notes[0].endswith("agree with /opt/venv (versions only: no hashes on one side)")


def test_relock_exports_pylock_names_its_environment(w: World, tmp_path: Path) -> None:
    """Two environments: relock's own export says which it is of ([tool.relock] env)."""
    root = pyworld.venv_tree(tmp_path / "root", {"relock-demo-b": "1.0"}, prefix="/usr/local")
    pyworld.venv_tree(root, {"relock-demo-a": "1.0", "relock-demo-b": "2.0"})
    r = CliRunner().invoke(cli, ["freeze", "--rootfs", str(root), "--no-archive",
                                 "-f", str(tmp_path / "none"), "-o", str(tmp_path / "x.lock")])
    assert r.exit_code == 0, r.output
    (tmp_path / "ctx").mkdir()
    r = CliRunner().invoke(cli, ["export", "--lock", str(tmp_path / "x.lock"), "--env",
                                 "/usr/local", "-o", str(tmp_path / "ctx" / "pylock.toml")])
    assert r.exit_code == 0, r.output
    # The best overlap of names would be /opt/venv; [tool.relock] says /usr/local.
    r = CliRunner().invoke(cli, ["freeze", "--rootfs", str(root), "--no-archive", "-f",
                                 str(_template(tmp_path, PYLOCK_TEMPLATE)), "-o",
                                 str(tmp_path / "y.lock")])
    assert r.exit_code == 0, r.output
    assert ("installs from pylock.toml: its 1 distribution agrees with /usr/local (versions "
            "and hashes)") in r.stderr
    assert "warning: pylock.toml" not in r.stderr


def _template(tmp_path: Path, text: str) -> Path:
    (tmp_path / "ctx").mkdir(exist_ok=True)
    path = tmp_path / "ctx" / "Dockerfile.in"
    path.write_text(text)
    return path


def test_what_the_template_installs_from_is_found_as_the_build_gets_it(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    for name in ("pylock.toml", "app/uv.lock", "locks/pylock.dev.toml", "shipped/pylock.toml",
                 "mounted/pylock.ci.toml"):
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text("")
    template = parse(
        "FROM debian AS build\n"
        "COPY --chown=1:1 pylock.toml /tmp/\n"             # a source of that name
        "COPY app /app\n"                                   # a folder holding uv.lock
        "COPY [\"locks/pylock.dev.toml\", \"/l/\"]\n"       # the JSON form
        "COPY shipped/pylock.toml /usr/share/doc/\n"        # copied, but no RUN names it
        "RUN pip install -r /tmp/pylock.toml && \\\n"
        "    cd /app && uv sync --locked\n"
        "RUN --mount=type=bind,source=mounted/pylock.ci.toml,target=/m/pylock.ci.toml \\\n"
        "    uv pip install -r /m/pylock.ci.toml\n"
        "RUN uv pip install -r /l/pylock.dev.toml -r /x/pylock.gone.toml\n"
        "FROM debian\n"
        "COPY --from=build /opt/venv /opt/venv\n")
    found = installs.named(template, ctx)
    assert [(n.path, n.line, n.missing) for n in found] == [
        ("pylock.toml", 6, False), ("app/uv.lock", 6, False),
        ("mounted/pylock.ci.toml", 8, False), ("locks/pylock.dev.toml", 10, False),
        ("pylock.gone.toml", 10, True)]
    # Nothing out of the context is read (a COPY's ../ stays at its top, as the builder
    # keeps it), nor what a COPY --from another stage takes.
    (ctx / "sub").mkdir()
    outside = parse("FROM debian\nCOPY ../pylock.toml /tmp/\nCOPY --from=x pylock.toml /t/\n"
                    "RUN pip install -r /tmp/pylock.toml\n")
    assert [(n.path, n.missing) for n in installs.named(outside, ctx / "sub")] == [
        ("pylock.toml", True)]


def test_a_lock_file_that_is_a_link_is_not_followed(w: World, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "elsewhere").mkdir()
    real = pyworld.uv_pylock(w, tmp_path / "elsewhere" / "pylock.toml")
    (tmp_path / "ctx" / "pylock.toml").symlink_to(real)
    code, notes, warnings, _ = freeze(tmp_path, PYLOCK_TEMPLATE,
                                      {"relock-demo-a": "1.0", "relock-demo-b": "2.0"})
    assert code == 0 and notes == []
    assert len(warnings) == 1 and "pylock.toml is a symbolic link; refused" in warnings[0]


@pytest.mark.parametrize(("body", "said"), [
    (b"not = [toml", "not valid TOML"),
    (b"\xff\xfe", "not UTF-8"),
    (b'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a\\u001b[2Jb"\n'
     b'version = "1"\ndirectory = { path = "." }\n', "is not normalized"),
    (b'lock-version = "9.0"\ncreated-by = "x"\npackages = []\n', "not supported"),
    (b'lock-version = "1.0"\ncreated-by = "x"\npackages = []\n[tool.relock]\n'
     b'env = "/opt/../venv\\n"\n', "[tool.relock] env"),
])
def test_a_broken_pylock_is_one_warning_and_the_lock_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bytes, said: str) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "pylock.toml").write_bytes(body)
    code, notes, warnings, _ = freeze(tmp_path, PYLOCK_TEMPLATE, {"relock-demo-a": "1.0"},
                                      "--no-index")
    assert code == 0 and notes == [] and (tmp_path / "x.lock").exists()
    assert len(warnings) == 1 and said in warnings[0], warnings
    assert warnings[0].startswith("Dockerfile.in line 4 installs from pylock.toml; not "
                                  "compared: pylock.toml: ")
    assert not re.search(r"[\x00-\x1f\x7f]", warnings[0])


def test_a_template_naming_no_python_lock_reads_none(tmp_path: Path) -> None:
    template = parse("FROM debian\nCOPY . /app\nRUN pip install -r /app/requirements.txt\n")
    assert installs.named(template, tmp_path) == []


def test_each_platform_of_a_lock_is_compared(tmp_path: Path) -> None:
    import dataclasses

    from relock.lock import lockfile

    small = lockfile.read(Path(__file__).resolve().parent.parent / "golden" / "supply" /
                          "small.lock")
    arm = dataclasses.replace(small, platform="linux/arm64", pip=tuple(
        dataclasses.replace(d, version="3.9") if d.name == "idna" else d for d in small.pip))
    lock = small.with_part(arm)
    (tmp_path / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\n[[packages]]\nname = "idna"\n'
        'version = "3.10"\nwheels = [{ url = "http://x.test/idna-3.10-py3-none-any.whl", '
        f'hashes = {{ sha256 = "{"c" * 64}" }} }}]\n')
    found = installs.check(lock, parse(PYLOCK_TEMPLATE), tmp_path)
    assert found.notes == (
        "Dockerfile.in line 4 installs from pylock.toml: its 1 distribution agrees with "
        "/opt/venv on linux/amd64 (versions and hashes); /opt/venv on linux/amd64 also holds "
        "requests",
        "Dockerfile.in line 4 installs from pylock.toml: 1 disagreement with /opt/venv on "
        "linux/arm64 (warned), of its 1 distribution (versions only: no hashes on one side); "
        "/opt/venv on linux/arm64 also holds requests")
    assert found.warnings == ("pylock.toml: idna: it pins 3.10, /opt/venv on linux/arm64 has "
                              "3.9",)
