"""The command line itself: help that teaches, versions, usage errors."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from relock import __version__
from relock.cli import cli
from relock.cli.common import COMMAND_MODULES


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


def _command(name: str) -> click.Command:
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, name)
    assert isinstance(command, click.Command), name
    return command


def test_the_lazy_group_knows_every_command_its_modules_register() -> None:
    import importlib

    for module in set(COMMAND_MODULES.values()):
        importlib.import_module(module)
    commands = cli.commands
    assert {name: getattr(cmd.callback, "__module__", "") for name, cmd in commands.items()
            } == COMMAND_MODULES


def test_a_command_loads_its_own_module_only() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['relock', 'freeze', '--help']\n"
            "from relock.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('relock.cli.')), "
            "file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stderr.strip().splitlines()[-1] == "['relock.cli.common', 'relock.cli.freeze']"


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_every_command_has_help_and_every_option_a_description(name: str) -> None:
    command = _command(name)
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
                        "relock understands (2); upgrade relock\n")
    assert not (tmp_path / "Dockerfile").exists()


def test_stored_help_is_what_click_prints() -> None:
    from relock.cli import helptext

    assert helptext.current() == helptext.TEXT, (
        "relock/cli/helptext.py is stale: run `python -m relock.cli.helptext`")
    assert invoke("--help").output == helptext.TEXT


def _modules_after(*argv: str) -> tuple[str, list[str]]:
    code = ("import sys; sys.argv = ['relock', *sys.argv[1:]]\n"
            "from relock.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = ('click', 'docker', 'requests', 'urllib3', 'debian', 'packaging',\n"
            "         'dockerfile_parse', 'relock.lock.lockfile', 'relock.image.engine',\n"
            "         'typing')\n"
            "import json\n"
            "print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)")
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                          text=True, check=True, env={"COLUMNS": "100", "PATH": ""})
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


def test_help_imports_nothing_heavy() -> None:
    out, loaded = _modules_after("--help")
    assert out.startswith("Usage: relock [OPTIONS] COMMAND")
    assert loaded == []


@pytest.mark.parametrize("command", ["freeze", "render", "build", "verify", "diff"])
def test_command_help_imports_no_engine_client_or_debian(command: str) -> None:
    out, loaded = _modules_after(command, "--help")
    assert out.startswith(f"Usage: relock {command}")
    assert loaded == ["click", "typing"]
