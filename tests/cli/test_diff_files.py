"""``relock diff --files``: two images compared file by file, through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.errors import UsageError
from relock.freeze.command import DiffRequest, FilesOutcome, run_diff
from relock.template.render import view_prefix
from tests.fakes import FakeLayers, Member, image_archive
from tests.hostile.contract import one_line_error

BASE: list[Member | str] = [Member("etc", kind="dir", mode=0o755), Member("etc/hostname", b"x")]
PREFIX = view_prefix("http://127.0.0.1:8123", "ab12")


def archive(tmp_path: Path, name: str, date: bytes, mtime: int = 0) -> Path:
    steps = ["# debian.sh trixie", f"/bin/sh -c {PREFIX} date > /etc/build-date"]
    path = tmp_path / f"{name}.tar"
    path.write_bytes(image_archive([BASE, [Member("etc/build-date", date, mtime=mtime)]],
                                   steps))
    return path


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["diff", "--files", *args], catch_exceptions=False)


def test_two_builds_differ_by_the_file_their_step_wrote(tmp_path: Path) -> None:
    a, b = archive(tmp_path, "a", b"Mon\n"), archive(tmp_path, "b", b"Tues\n")
    r = invoke(str(a), str(b))
    assert r.exit_code == 1, r.output  # type: ignore[attr-defined]
    out = r.stdout  # type: ignore[attr-defined]
    assert "1 file differs" in out and "/etc/build-date  content sha256:" in out
    assert "RUN date > /etc/build-date" in out and "mkdir -p" not in out  # no view prefix


def test_the_same_image_exits_0_and_mtimes_only_when_asked(tmp_path: Path) -> None:
    a, b = archive(tmp_path, "a", b"Mon\n", 1), archive(tmp_path, "b", b"Mon\n", 2)
    same = invoke(str(a), str(b))
    assert same.exit_code == 0, same.output  # type: ignore[attr-defined]
    assert "The images hold the same files." in same.stdout  # type: ignore[attr-defined]
    assert invoke(str(a), str(b), "--mtimes").exit_code == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", [["--json"], ["--format", "json"]])
def test_json_for_scripts(tmp_path: Path, how: list[str]) -> None:
    a, b = archive(tmp_path, "a", b"Mon\n"), archive(tmp_path, "b", b"Tues\n")
    r = invoke(str(a), str(b), *how)
    doc = json.loads(r.stdout)  # type: ignore[attr-defined]
    assert doc["version"] == 1
    assert [f["path"] for f in doc["files"]] == ["/etc/build-date"]
    assert doc["a"]["layers"][1]["step"] == "RUN date > /etc/build-date"
    assert doc["a"]["label"] == str(a)


def test_markdown_is_a_table(tmp_path: Path) -> None:
    a, b = archive(tmp_path, "a", b"Mon\n"), archive(tmp_path, "b", b"Tues\n")
    r = invoke(str(a), str(b), "--format", "markdown")
    assert "| path | what differs | A | B |" in r.stdout  # type: ignore[attr-defined]
    assert "| `/etc/build-date` | content" in r.stdout  # type: ignore[attr-defined]


def test_engine_images_are_read_from_the_engine_once(tmp_path: Path) -> None:
    engine = FakeLayers(**{
        "app:1": image_archive([BASE, ["etc/one"]]), "app:2": image_archive([BASE, ["etc/two"]])})
    made: list[int] = []

    def connect() -> FakeLayers:
        made.append(1)
        return engine

    outcome = run_diff(DiffRequest("app:1", "app:2", files=True), layers=connect)
    assert isinstance(outcome, FilesOutcome) and not outcome.identical
    assert [(d.path, d.status) for d in outcome.differences] == [
        ("/etc/one", "removed"), ("/etc/two", "added")]
    assert engine.asked == ["app:1", "app:2"] and made == [1]


def test_options_of_lock_diffs_are_refused_with_files() -> None:
    with pytest.raises(UsageError, match="--only"):
        run_diff(DiffRequest("a", "b", files=True, only=("pip",)), layers=FakeLayers)
    with pytest.raises(UsageError, match="one --platform"):
        run_diff(DiffRequest("a", "b", files=True, platforms=("linux/amd64", "linux/arm64")),
                 layers=FakeLayers)


def test_an_image_neither_in_the_engine_nor_a_file_is_one_line(tmp_path: Path) -> None:
    from relock.errors import ImageNotFoundError

    with pytest.raises(ImageNotFoundError, match="neither an image archive"):
        run_diff(DiffRequest("nope:1", "nope:2", files=True), layers=FakeLayers)


def test_a_file_that_is_not_an_image_archive_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"\x00" * 1024 + b"junk")
    good = archive(tmp_path, "a", b"Mon\n")
    r = CliRunner().invoke(cli, ["diff", "--files", str(good), str(bad)],
                           catch_exceptions=False)
    one_line_error(r, "bad.tar")
