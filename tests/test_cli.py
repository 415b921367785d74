"""The command line itself: help that teaches, versions, usage errors."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from relock import __version__
from relock.cli import cli


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version() -> None:
    r = invoke("--version")
    assert r.exit_code == 0 and r.output == f"relock, version {__version__}\n"


def test_help_lists_every_command_and_exit_codes() -> None:
    r = invoke("--help")
    assert r.exit_code == 0
    for name in ("freeze", "render", "build", "verify", "diff"):
        assert f"  {name} " in r.output
    assert "Exit codes" in r.output


@pytest.mark.parametrize("name", sorted(cli.commands))  # type: ignore[attr-defined]
def test_every_command_has_help_and_every_option_a_description(name: str) -> None:
    command = cli.commands[name]  # type: ignore[attr-defined]
    assert command.help and len(command.help.split()) > 15
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"{name} {param.opts} has no help"
    r = invoke(name, "--help")
    assert r.exit_code == 0 and "Usage: relock " + name in r.output


def test_freeze_needs_image_or_rootfs() -> None:
    r = invoke("freeze")
    assert r.exit_code == 2 and "give either IMAGE or --rootfs DIR" in r.output


def test_bad_build_arg() -> None:
    r = invoke("freeze", "img", "--build-arg", "novalue")
    assert r.exit_code == 2 and "'novalue' is not KEY=VALUE" in r.output


def test_default_lock_must_be_unambiguous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = invoke("render")
    assert r.exit_code == 2 and "no --lock given and no locks/*.lock here" in r.output
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "a.lock").write_text("")
    (tmp_path / "locks" / "b.lock").write_text("")
    r = invoke("render")
    assert r.exit_code == 2 and "several locks in locks/" in r.output


def test_unreadable_lock_is_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text("version = 7\n")
    (tmp_path / "Dockerfile.in").write_text("FROM debian:trixie-slim\n")
    r = invoke("render", "-f", str(tmp_path / "Dockerfile.in"), "--lock", str(lock))
    assert r.exit_code == 2
    assert r.stderr == (f"relock: error: {lock}: lock schema version 7 is newer than this "
                        "relock understands (1); upgrade relock\n")
    assert not (tmp_path / "Dockerfile").exists()
