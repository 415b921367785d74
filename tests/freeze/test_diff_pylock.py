"""relock diff LOCK pylock.toml: the Python side of a lock against a PEP 751 lock (relock's
own export, or uv's), in the diff's text, Markdown and JSON."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from relock.lock import lockfile
from relock.lock import pythonlock as pl
from tests.hostile.contract import one_line_error
from tests.support import pyworld
from tests.support.pyworld import World


def run(*args: str) -> Result:
    from relock.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def w(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with pyworld.world(tmp_path, monkeypatch) as found:
        yield found


def frozen(tmp_path: Path, installed: dict[str, str], name: str = "x.lock",
           usr_local: dict[str, str] | None = None) -> Path:
    """A lock frozen (index hashes and all) from a tree whose /opt/venv holds ``installed``."""
    root = tmp_path / f"root-{name}"
    pyworld.venv_tree(root, installed)
    if usr_local:
        pyworld.venv_tree(root, usr_local, prefix="/usr/local")
    r = run("freeze", "--rootfs", str(root), "--no-archive", "-f", str(tmp_path / "none"),
            "-o", str(tmp_path / name))
    assert r.exit_code == 0, r.output
    return tmp_path / name


BOTH = {"relock-demo-a": "1.0", "relock-demo-b": "2.0"}


@pytest.fixture(params=["packaging", "relock"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each pylock read by packaging's reader, then by relock's own."""
    real = pl.loads

    def loads(data: bytes, where: str, kind: pl.Kind, *, reader: str | None = None
              ) -> pl.PythonLock:
        return real(data, where, kind, reader=reader or request.param)

    monkeypatch.setattr(pl, "loads", loads)
    return str(request.param)


def test_a_lock_and_its_own_export_are_identical(w: World, tmp_path: Path, reader: str) -> None:
    lock = frozen(tmp_path, BOTH)
    assert run("export", "--lock", str(lock), "-o", str(tmp_path / "pylock.toml")).exit_code == 0
    r = run("diff", str(lock), str(tmp_path / "pylock.toml"))
    assert (r.exit_code, r.stdout) == (0, "no differences (2 pip)\n"), r.output
    r = run("diff", str(tmp_path / "pylock.toml"), str(lock), "--format", "json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["identical"] and doc["apt"] is None and doc["base"] is None
    assert (doc["old"]["kind"], doc["new"]["kind"]) == ("pylock", "file")


def test_against_what_uv_resolved(w: World, tmp_path: Path, reader: str) -> None:
    lock = frozen(tmp_path, BOTH)
    (tmp_path / "same").mkdir()
    same = pyworld.uv_pylock(w, tmp_path / "same" / "pylock.toml")
    assert run("diff", str(lock), str(same)).exit_code == 0
    (tmp_path / "older").mkdir()
    older = pyworld.uv_pylock(w, tmp_path / "older" / "pylock.toml", ["relock-demo-b==1.0"])
    r = run("diff", str(lock), str(older))
    assert r.exit_code == 1
    assert r.stdout == ("pip\n"
                        "  removed     relock-demo-a  1.0\n"
                        "  downgraded  relock-demo-b  2.0 → 1.0\n"
                        "\n"
                        "pip: 1 downgraded, 1 removed\n")
    r = run("diff", str(lock), str(older), "--format", "markdown")
    assert r.exit_code == 1 and "| relock-demo-b | downgraded | 2.0 | 1.0 |" in r.stdout
    doc = json.loads(run("diff", str(lock), str(older), "--json").stdout)
    assert [(p["name"], p["change"], p["env"]) for p in doc["pip"]] == [
        ("relock-demo-a", "removed", "/opt/venv"), ("relock-demo-b", "downgraded", "/opt/venv")]


def test_other_bytes_of_the_same_version_are_rebuilt(w: World, tmp_path: Path,
                                                     reader: str) -> None:
    lock = frozen(tmp_path, BOTH)
    (tmp_path / "p").mkdir()
    pylock = pyworld.uv_pylock(w, tmp_path / "p" / "pylock.toml")
    pylock.write_text(pylock.read_text().replace(w.sha("b"), "f" * 64))
    r = run("diff", str(lock), str(pylock), "--json")
    (row,) = json.loads(r.stdout)["pip"]
    assert r.exit_code == 1 and (row["name"], row["change"]) == ("relock-demo-b", "rebuilt")
    assert (row["old_hashes"], row["new_hashes"]) == ([f"sha256:{w.sha('b')}"],
                                                      [f"sha256:{'f' * 64}"])


def test_a_pylock_listing_fewer_files_than_the_index_is_not_rebuilt(tmp_path: Path) -> None:
    """The lock knows both files of b 2.0 on the index; the pylock lists the one wheel."""
    lock = lockfile.read(Path(__file__).resolve().parent.parent / "golden" / "supply" /
                         "small.lock")
    pylock = tmp_path / "pylock.toml"
    pylock.write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\n'
        '[[packages]]\nname = "requests"\nversion = "2.32.3"\n'
        'wheels = [{ url = "http://x.test/requests-2.32.3-py3-none-any.whl", '
        f'hashes = {{ sha256 = "{"e" * 64}" }} }}]\n'
        '[[packages]]\nname = "idna"\nversion = "3.10"\n'
        'wheels = [{ url = "http://x.test/idna-3.10-py3-none-any.whl", '
        f'hashes = {{ sha256 = "{"c" * 64}" }} }}]\n')
    path = tmp_path / "small.lock"
    lockfile.write(lock, path)
    r = run("diff", str(path), str(pylock))
    assert (r.exit_code, r.stdout) == (0, "no differences (2 pip)\n"), r.output
    # A lock and a lock are held to equal hashes, as ever.
    fewer = dataclasses.replace(lock, pip=tuple(
        dataclasses.replace(d, hashes=d.hashes[:1]) for d in lock.pip))
    lockfile.write(fewer, tmp_path / "fewer.lock")
    assert run("diff", str(path), str(tmp_path / "fewer.lock")).exit_code == 1


def test_the_environment_and_platform_are_asked_for_when_not_known(
        w: World, tmp_path: Path) -> None:
    lock = frozen(tmp_path, BOTH, usr_local={"relock-demo-b": "1.0"})
    (tmp_path / "u").mkdir()
    uv_written = pyworld.uv_pylock(w, tmp_path / "u" / "pylock.toml", ["relock-demo-b==1.0"])
    one_line_error(run("diff", str(lock), str(uv_written)),
                   "has several Python environments (it has /opt/venv, /usr/local): give "
                   "--env to say which one")
    r = run("diff", str(lock), str(uv_written), "--env", "/usr/local")
    assert r.exit_code == 0, r.output
    one_line_error(run("diff", str(lock), str(uv_written), "--env", "/srv"),
                   "has no Python environment /srv in its final image (it has /opt/venv, "
                   "/usr/local)")
    # relock's export names its environment: nothing to ask.
    out = tmp_path / "e" / "pylock.toml"
    out.parent.mkdir()
    assert run("export", "--lock", str(lock), "--env", "/usr/local", "-o", str(out)
               ).exit_code == 0
    assert run("diff", str(lock), str(out)).exit_code == 0
    # Several platforms: --platform, unless the pylock names one the lock holds.
    part = lockfile.read(lock)
    arm = dataclasses.replace(part, platform="linux/arm64")
    two = tmp_path / "two.lock"
    lockfile.write(part.with_part(arm), two)
    assert run("diff", str(two), str(out)).exit_code == 0  # [tool.relock] platform
    one_line_error(run("diff", str(two), str(uv_written), "--env", "/usr/local"),
                   "holds linux/amd64, linux/arm64: give --platform")
    r = run("diff", str(two), str(uv_written), "--env", "/usr/local", "--platform",
            "linux/arm64")
    assert r.exit_code == 0, r.output
    one_line_error(run("diff", str(two), str(uv_written), "--platform", "linux/arm64",
                       "--platform", "linux/amd64"), "give at most one --platform")


def test_usage_that_does_not_fit_a_pylock_side(w: World, tmp_path: Path) -> None:
    lock = frozen(tmp_path, BOTH)
    (tmp_path / "p").mkdir()
    pylock = pyworld.uv_pylock(w, tmp_path / "p" / "pylock.toml")
    one_line_error(run("diff", str(lock), str(pylock), "--only", "apt"),
                   "holds Python distributions only")
    assert run("diff", str(lock), str(pylock), "--only", "pip").exit_code == 0
    one_line_error(run("diff", str(lock), str(lock), "--env", "/opt/venv"),
                   "neither side is one")
    uv_lock = pyworld.uv_lock(w, tmp_path / "project")
    one_line_error(run("diff", str(lock), str(uv_lock)), "uv.lock is a universal lock")


def test_two_pylocks(w: World, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = pyworld.uv_pylock(w, tmp_path / "a" / "pylock.toml")
    b = pyworld.uv_pylock(w, tmp_path / "b" / "pylock.toml", ["relock-demo-b==1.0"])
    assert run("diff", str(a), str(a)).exit_code == 0
    r = run("diff", str(a), str(b), "--stat")
    assert (r.exit_code, r.stdout) == (1, "pip: 1 downgraded, 1 removed\n")


def test_what_the_diff_cannot_judge_is_a_warning(tmp_path: Path) -> None:
    lock = Path(__file__).resolve().parent.parent / "golden" / "supply" / "small.lock"
    pylock = tmp_path / "pylock.toml"
    def wheel(f: str) -> str:
        return (f'wheels = [{{ url = "http://x.test/{f}-py3-none-any.whl", '
                f'hashes = {{ sha256 = "{"c" * 64}" }} }}]\n')

    pylock.write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\nrequires-python = "<3.13"\n'
        '[[packages]]\nname = "idna"\nversion = "3.10"\n'
        "marker = \"python_full_version >= '3.13.1'\"\n" + wheel("idna-3.10") +
        '[[packages]]\nname = "idna"\nversion = "3.9"\n'
        "marker = \"python_full_version < '3.13.1'\"\n" + wheel("idna-3.9") +
        '[[packages]]\nname = "app"\ndirectory = { path = "." }\n')
    r = run("diff", str(lock), str(pylock))
    assert r.exit_code == 1
    warned = [line for line in r.stderr.splitlines() if line.startswith("relock: warning: ")]
    assert warned == [f"relock: warning: {pylock}: {why}" for why in (
        "its requires-python <3.13 excludes Python 3.13, and /opt/venv has Python 3.13",
        "app (directory) names no version; not compared",
        "idna is listed 2 times for /opt/venv (markers relock cannot judge here); not "
        "compared")]
    assert r.stdout.splitlines()[1:3] == ["  removed  idna      3.10",
                                          "  removed  requests  2.32.3"]


@pytest.mark.parametrize(("body", "said"), [
    (b"not = [toml", "not valid TOML"),
    (b"\xff", "not UTF-8"),
    (b'lock-version = "1.0"\npackages = []\n', "created-by"),
    (b'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a"\n'
     b'version = "1\\u001b[31m"\ndirectory = { path = "." }\n', "version"),
])
def test_a_hostile_pylock_is_one_line(tmp_path: Path, body: bytes, said: str,
                                      reader: str) -> None:
    lock = Path(__file__).resolve().parent.parent / "golden" / "supply" / "small.lock"
    pylock = tmp_path / "pylock.toml"
    pylock.write_bytes(body)
    line = one_line_error(run("diff", str(lock), str(pylock)), said)
    assert "\x1b" not in line
