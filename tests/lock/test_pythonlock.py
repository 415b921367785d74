"""relock.lock.pythonlock: pylock.toml by packaging's reader and by relock's strict one
(which must refuse what packaging's refuses and read the same), uv.lock as uv writes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli
import tomli_w

from relock.lock import pythonlock
from relock.lock.pythonlock import PythonLockError
from tests.support import pyworld
from tests.support.pyworld import World

H1, H2 = "1" * 64, "2" * 64
GOOD: dict[str, Any] = {
    "lock-version": "1.0", "created-by": "hand", "requires-python": ">=3.11",
    "environments": ["sys_platform == 'linux'"],
    "packages": [
        {"name": "relock-demo-a", "version": "1.0",
         "wheels": [{"url": "http://127.0.0.1:1/files/relock_demo_a-1.0-py3-none-any.whl",
                     "hashes": {"sha256": H1, "sha512": "ab" * 64}},
                    {"path": "wheels/relock_demo_a-1.0-cp313-cp313-manylinux_2_28_x86_64.whl",
                     "hashes": {"sha256": H2.upper()}}],
         "sdist": {"name": "relock_demo_a-1.0.tar.gz", "url": "http://127.0.0.1:1/a.tgz",
                   "hashes": {"sha256": H2}}},
        {"name": "colorama", "version": "0.4.6", "marker": "sys_platform == 'win32'",
         "wheels": [{"url": "http://127.0.0.1:1/files/colorama-0.4.6-py2.py3-none-any.whl",
                     "hashes": {"sha256": H1}}]},
        {"name": "app", "directory": {"path": ".", "editable": True}},
        {"name": "tool", "version": "2", "vcs": {"type": "git", "url": "https://x.test/t",
                                                  "commit-id": "a" * 40}},
        {"name": "blob", "version": "3", "archive": {"url": "https://x.test/blob.zip",
                                                     "hashes": {"sha256": H1}}},
    ],
    "tool": {"relock": {"env": "/opt/venv", "platform": "linux/amd64"}},
}


def both(doc: dict[str, Any]) -> Iterator[tuple[str, pythonlock.PythonLock]]:
    data = tomli_w.dumps(doc).encode()
    for reader in ("packaging", "relock"):
        yield reader, pythonlock.loads(data, "pylock.toml", "pylock", reader=reader)


def without_reader(lock: pythonlock.PythonLock) -> tuple[object, ...]:
    return (lock.packages, lock.requires_python, lock.environments, lock.created_by,
            lock.env, lock.platform)


def test_both_readers_read_the_same() -> None:
    (_, a), (_, b) = both(GOOD)
    assert (a.reader, b.reader) == ("packaging", "relock")
    assert without_reader(a) == without_reader(b)
    by = {p.name: p for p in a.packages}
    assert by["relock-demo-a"].sha256 == (H1, H2)  # upper case read as lower, sdist's too
    assert (by["app"].version, by["app"].source) == ("", "directory")
    assert by["tool"].source == "vcs" and by["tool"].sha256 == ()
    assert by["blob"].sha256 == (H1,)
    assert (a.env, a.platform, a.requires_python) == ("/opt/venv", "linux/amd64", ">=3.11")


def test_the_default_reader_is_packagings() -> None:
    assert pythonlock.loads(tomli_w.dumps(GOOD).encode(), "p", "pylock").reader == "packaging"


def _broken(change: Any) -> dict[str, Any]:
    doc = tomli.loads(tomli_w.dumps(GOOD))
    change(doc)
    return doc


def _pkg(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["packages"][0]  # type: ignore[no-any-return]


BROKEN = {
    "no lock-version": lambda d: d.pop("lock-version"),
    "lock-version 2": lambda d: d.update({"lock-version": "2.0"}),
    "lock-version not a version": lambda d: d.update({"lock-version": "one"}),
    "no created-by": lambda d: d.pop("created-by"),
    "no packages": lambda d: d.pop("packages"),
    "packages of strings": lambda d: d.update({"packages": ["x"]}),
    "name not normalised": lambda d: _pkg(d).update({"name": "Relock_Demo_A"}),
    "version not PEP 440": lambda d: _pkg(d).update({"version": "one"}),
    "version an integer": lambda d: _pkg(d).update({"version": 1}),
    "wheel without hashes": lambda d: _pkg(d)["wheels"][0].pop("hashes"),
    "wheel with no hash": lambda d: _pkg(d)["wheels"][0].update({"hashes": {}}),
    "hash not a string": lambda d: _pkg(d)["wheels"][0].update({"hashes": {"sha256": 1}}),
    "wheel without url or path": lambda d: _pkg(d)["wheels"][0].pop("url"),
    "wheel of another name": lambda d: _pkg(d)["wheels"][0].update(
        {"url": "http://x.test/other-1.0-py3-none-any.whl"}),
    "wheel of another version": lambda d: _pkg(d)["wheels"][0].update(
        {"url": "http://x.test/relock_demo_a-9.0-py3-none-any.whl"}),
    "not a wheel file name": lambda d: _pkg(d)["wheels"][0].update(
        {"url": "http://x.test/relock_demo_a.zip"}),
    "sdist of another version": lambda d: _pkg(d)["sdist"].update(
        {"name": "relock_demo_a-2.0.tar.gz"}),
    "sdist and vcs": lambda d: _pkg(d).update({"vcs": {"type": "git", "commit-id": "a"}}),
    "nothing to install": lambda d: d["packages"][2].pop("directory"),
    "two direct sources": lambda d: d["packages"][2].update(
        {"archive": {"url": "http://x.test/a.zip", "hashes": {"sha256": H1}}}),
    "marker not a marker": lambda d: _pkg(d).update({"marker": "python_version >>> '3'"}),
    "environments not markers": lambda d: d.update({"environments": ["nope nope"]}),
    "requires-python not a specifier": lambda d: d.update({"requires-python": "three"}),
    "vcs without commit-id": lambda d: d["packages"][3]["vcs"].pop("commit-id"),
}
# What relock holds besides PEP 751 (both readers, as it is checked after either).
BROKEN_FOR_RELOCK = {
    "sha256 not hex": lambda d: _pkg(d)["wheels"][0].update({"hashes": {"sha256": "zz"}}),
    "tool.relock env not a path": lambda d: d["tool"]["relock"].update({"env": "venv\n"}),
    "tool.relock platform hostile": lambda d: d["tool"]["relock"].update(
        {"platform": "\x1b[2J"}),
}


@pytest.mark.parametrize("case", [*BROKEN, *BROKEN_FOR_RELOCK])
def test_both_readers_refuse_the_same(case: str) -> None:
    doc = _broken({**BROKEN, **BROKEN_FOR_RELOCK}[case])
    data = tomli_w.dumps(doc).encode()
    for reader in ("packaging", "relock"):
        with pytest.raises(PythonLockError) as e:
            pythonlock.loads(data, "pylock.toml", "pylock", reader=reader)
        message = str(e.value)
        assert message.startswith("pylock.toml: ") and "\n" not in message
        assert "\x1b" not in message


@pytest.mark.parametrize(("data", "said"), [
    (b"\xff\xfe", "not UTF-8"), (b"x = [", "not valid TOML"),
    (b"a = " + b"[" * 5000 + b"]" * 5000, "not"),
])
def test_bytes_that_are_no_toml(data: bytes, said: str) -> None:
    for kind in ("pylock", "uv.lock"):
        with pytest.raises(PythonLockError, match=said):
            pythonlock.loads(data, "f", kind)  # type: ignore[arg-type]


@pytest.fixture
def w(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with pyworld.world(tmp_path, monkeypatch) as found:
        yield found


def test_what_uv_writes_is_read(w: World, tmp_path: Path) -> None:
    pylock = pyworld.uv_pylock(w, tmp_path / "pylock.toml")
    (_, a), (_, b) = both(tomli.loads(pylock.read_text()))
    assert without_reader(a) == without_reader(b)
    assert [(p.name, p.version, p.sha256) for p in a.packages] == [
        ("relock-demo-a", "1.0", (w.sha("a"),)), ("relock-demo-b", "2.0", (w.sha("b"),))]
    assert a.created_by == "uv"
    uv_lock = pythonlock.read(pyworld.uv_lock(w, tmp_path / "project"))
    assert uv_lock.kind == "uv.lock"
    assert [(p.name, p.version, p.sha256, p.source) for p in uv_lock.packages] == [
        ("app", "0.1", (), "virtual"), ("relock-demo-a", "1.0", (w.sha("a"),), ""),
        ("relock-demo-b", "2.0", (w.sha("b"),), "")]


UV_LOCK = {"version": 1, "requires-python": ">=3.11", "package": [
    {"name": "idna", "version": "3.10", "source": {"registry": "https://x.test/simple"},
     "sdist": {"url": "https://x.test/idna-3.10.tar.gz", "hash": f"sha256:{H1}"},
     "wheels": [{"url": "https://x.test/idna-3.10-py3-none-any.whl", "hash": f"sha256:{H2}"}]}]}


@pytest.mark.parametrize(("change", "said"), [
    (lambda d: d.update({"version": 2}), "uv.lock version 2 is not one relock reads"),
    (lambda d: d.pop("version"), "'version' must be an integer"),
    (lambda d: d.update({"package": {"name": "x"}}), "'package' is a table, not an array"),
    (lambda d: d["package"][0].update({"name": "IDNA\x1b"}), "not a normalised"),
    (lambda d: d["package"][0].update({"version": "3.10 | x"}), "not a PEP 440 version"),
    (lambda d: d["package"][0]["wheels"][0].update({"hash": "sha256:xyz"}), "not 64 hex"),
    (lambda d: d["package"][0]["wheels"][0].update({"hash": "nohash"}), "ALGORITHM:HEX"),
    (lambda d: d.update({"requires-python": "???"}), "not a version specifier"),
])
def test_a_broken_uv_lock_is_one_line(change: Any, said: str) -> None:
    doc = tomli.loads(tomli_w.dumps(UV_LOCK))
    assert [p.sha256 for p in pythonlock.loads(tomli_w.dumps(doc).encode(), "uv.lock",
                                               "uv.lock").packages] == [(H1, H2)]
    change(doc)
    with pytest.raises(PythonLockError, match=said) as e:
        pythonlock.loads(tomli_w.dumps(doc).encode(), "uv.lock", "uv.lock")
    assert "\n" not in str(e.value) and "\x1b" not in str(e.value)


def test_read_names_what_is_wrong_with_the_file(tmp_path: Path) -> None:
    with pytest.raises(PythonLockError, match=r"not a pylock\.toml, pylock\.NAME\.toml or uv"):
        pythonlock.read(tmp_path / "requirements.txt")
    with pytest.raises(PythonLockError, match="no such file"):
        pythonlock.read(tmp_path / "pylock.toml")
    (tmp_path / "pylock.toml").mkdir()
    with pytest.raises(PythonLockError, match="cannot read"):
        pythonlock.read(tmp_path / "pylock.toml")


@pytest.mark.parametrize(("name", "kind"), [
    ("pylock.toml", "pylock"), ("pylock.dev.toml", "pylock"), ("pylock.a.b.toml", None),
    ("pylock..toml", None), ("uv.lock", "uv.lock"), ("x.lock", None), ("pylock.json", None)])
def test_file_names(name: str, kind: str | None) -> None:
    assert pythonlock.kind_of(name) == kind


@pytest.mark.parametrize(("marker", "python", "platform", "holds"), [
    ("sys_platform == 'win32'", "3.13", "linux/amd64", False),
    ("sys_platform == 'linux' and platform_machine == 'aarch64'", "3.13", "linux/arm64", True),
    ("platform_machine == 'aarch64'", "3.13", "linux/amd64", False),
    ("python_version < '3.12'", "3.13", "linux/amd64", False),
    ("python_version >= '3.12'", "3.13", "linux/amd64", True),
    # Not known from the lock: taken to hold.
    ("python_full_version < '3.13.2'", "3.13", "linux/amd64", True),
    ("extra == 'socks'", "3.13", "linux/amd64", True),
    ("python_version < '3.12'", "", "linux/amd64", True),
])
def test_markers_judged_for_an_image(marker: str, python: str, platform: str,
                                     holds: bool) -> None:
    from packaging.markers import Marker

    env = pythonlock.marker_environment(python, platform)
    assert pythonlock.applies(Marker(marker), env) is holds


def test_for_environment_notes_what_excludes_it() -> None:
    (_, lock), _ = both({**GOOD, "requires-python": ">=3.14"})
    chosen, notes = pythonlock.for_environment(lock, "3.13", "linux/amd64")
    assert "colorama" not in {p.name for p in chosen} and len(chosen) == 4
    assert notes == ("its requires-python >=3.14 excludes Python 3.13",)
    chosen, notes = pythonlock.for_environment(lock, "3.14", "windows/amd64")
    assert notes == ("its environments exclude Python 3.14 on windows/amd64",)
    assert "colorama" in {p.name for p in chosen}


def test_hashes_agree_when_one_sides_files_are_among_the_others() -> None:
    assert pythonlock.hashes_agree([H1], [f"sha256:{H1}", f"sha256:{H2}"])
    assert pythonlock.hashes_agree([f"sha256:{H1}", f"sha256:{H2}"], [H2])
    assert not pythonlock.hashes_agree([H1, "3" * 64], [H1, H2])
    assert not pythonlock.hashes_agree([H1], [H2])
