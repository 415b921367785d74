"""The lock model: round trips, determinism, the strict reader, the schema doc."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from relock import lockfile
from relock.errors import LockfileError
from relock.lockfile import (
    AptPackage,
    AptSource,
    Base,
    Lock,
    PipPackage,
    PythonEnv,
)
from tests.factories import make_lock

ROOT = Path(__file__).resolve().parent.parent


def sample() -> Lock:
    return make_lock(
        snapshot="20261101T000000Z",
        snapshot_from="release-date",
        base=(Base(0, "debian:trixie-slim", "sha256:" + "1" * 64),),
        apt_sources=(
            AptSource("/etc/apt/sources.list.d/debian.sources", ("deb",), ("http://m/debian",),
                      ("trixie", "trixie-updates"), ("main",),
                      {"signed-by": "/usr/share/keyrings/debian-archive-keyring.gpg"}),
        ),
        python=(PythonEnv("/opt/venv", "3.13", "/opt/venv/lib/python3.13/site-packages", True),),
        apt=(
            AptPackage("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", "amd64", "zlib",
                       "1:1.3.dfsg+really1.3.1-1", auto=True),
            AptPackage("bash", "5.2.37-2+b5", "amd64"),
        ),
        pip=(
            PipPackage("six", "1.16.0", "/opt/venv", True, ("sha256:bb", "sha256:aa")),
            PipPackage("idna", "3.10", "/opt/venv", False, ("sha256:cc",)),
        ),
    )


def test_round_trip_gives_the_sorted_lock() -> None:
    lock = sample()
    assert lockfile.loads(lockfile.dumps(lock)) == lock.sorted()


def test_bytes_do_not_depend_on_input_order() -> None:
    lock = sample()
    shuffled = dataclasses.replace(lock, apt=lock.apt[::-1], pip=lock.pip[::-1])
    assert lockfile.dumps(lock) == lockfile.dumps(shuffled)


def test_version_is_the_first_key_and_file_ends_with_newline() -> None:
    text = lockfile.dumps(sample())
    first = next(line for line in text.splitlines() if line and not line.startswith("#"))
    assert first == "version = 1"
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "do not edit" in text.splitlines()[0]


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "x.lock"
    lockfile.write(sample(), path)
    assert lockfile.read(path) == sample().sorted()
    assert [p.name for p in path.parent.iterdir()] == ["x.lock"]


def test_failed_write_keeps_the_old_lock(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.lock"
    path.write_text("old")

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(lockfile.os, "replace", boom)
    with pytest.raises(OSError):
        lockfile.write(sample(), path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.lock"]


GOOD = lockfile.dumps(sample())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no 'version' key"),
        ("version = 2\n", "newer than this relock"),
        ("version = 0\n", "unknown lock schema version 0"),
        ('version = "1"\n', "'version' must be an integer"),
        (GOOD.replace("version = 1", "version = 1\nextra = 3"), "unknown key 'extra'"),
        (GOOD.replace('name = "bash"', 'name = "bash"\ncolour = "red"'),
         "apt[0]: unknown key 'colour'"),
        (GOOD.replace('requested = true', 'requested = "yes"'), "pip[1].requested: wrong type"),
        (GOOD.replace('[distro]\nid = "debian"', '[distro]\nversion_id = "13"')
            .replace('\nversion_id = "13"\nversion_id = "13"', '\nversion_id = "13"'),
         "[distro]: missing key 'id'"),
        (GOOD[: len(GOOD) // 2] + "[[apt", "not valid TOML"),
        (GOOD.replace("[input]", "[inputs]"), "unknown key 'inputs'"),
    ],
)
def test_strict_reader_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(LockfileError) as e:
        lockfile.loads(text, "locks/x.lock")
    assert str(e.value).startswith("locks/x.lock")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="no such lock file"):
        lockfile.read(tmp_path / "nope.lock")


def _documented_keys() -> dict[str, list[str]]:
    doc = (ROOT / "docs" / "lockfile.md").read_text()
    sections: dict[str, list[str]] = {}
    current = ""
    for line in doc.splitlines():
        heading = re.match(r"## (?:`\[\[?(\w+)\]\]?`|Top level)", line)
        if heading:
            current = heading.group(1) or "top"
            sections[current] = []
        row = re.match(r"\| `(\w[\w-]*)` \|", line)
        if row and current:
            sections[current].append(row.group(1))
    return sections


def test_schema_document_matches_the_model() -> None:
    documented = _documented_keys()
    assert documented.pop("top") == ["version", "platform", "snapshot", "snapshot_from"]
    model = {name: [f.name for f in dataclasses.fields(cls)]
             for name, cls in lockfile.TABLES.items()}
    assert documented == model
