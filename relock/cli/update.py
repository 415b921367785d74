"""``relock update``: a new lock in which only the packages asked for move."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from relock.cli.common import (
    build_arg_option,
    build_log,
    build_log_shown,
    cli,
    lock_option,
    progress,
    rebuild_options,
    user_errors,
    warn,
)
from relock.errors import EXIT_DIFFERS

if TYPE_CHECKING:
    from relock.build.command import RebuildFlags
    from relock.update.command import UpdateOutcome


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@lock_option
@click.option("-f", "--file", "dockerfile", type=click.Path(dir_okay=False, path_type=Path),
              help="The Dockerfile template. [default: the one the lock names]")
@click.option("--security", is_flag=True,
              help="Move every APT package that has a newer version in a *-security suite.")
@click.option("--all", "everything", is_flag=True,
              help="Move every package that can move (within the template's specifiers).")
@click.option("--dry-run", is_flag=True, help="Show what would move; build nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True,
              help="How the change is printed: markdown is a pull-request body, json is "
                   "relock diff's (docs/diff-json.md), or the plan's with --dry-run "
                   "(docs/outdated-json.md).")
@click.option("--context", type=click.Path(file_okay=False, path_type=Path),
              help="Build context. [default: the template's folder]")
@click.option("-t", "--tag", help="Name the updated image.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the build log.")
@rebuild_options
@build_arg_option
def update(names: tuple[str, ...], lock_path: Path | None, dockerfile: Path | None,
           security: bool, everything: bool, dry_run: bool, fmt: str, context: Path | None,
           tag: str | None, quiet: bool, flags: RebuildFlags,
           build_args: dict[str, str]) -> None:
    """Move only the named packages (and what they need) to their newest versions.

    The pip side is resolved first with pip-tools (the lock's pins kept,
    --upgrade-package for the names), so a conflict stops before any build
    with the resolver's words; the APT side gets the new versions' index
    entries. Then the template is built pinned to that candidate lock,
    frozen and verified, and only then is the lock replaced (atomically).
    The change is printed as relock diff prints it.

    Exits 0 when the lock was updated, 1 when nothing could move as asked
    or the build failed (the old lock stays), 2 on trouble.

    \b
    Examples:
      relock update numpy --lock locks/sci.lock
      relock update --security --format markdown > pr-body.md
      relock update --all --dry-run
    """
    from relock.update.command import UpdateRequest, run_update

    request = UpdateRequest(names=names, lock_path=lock_path, dockerfile=dockerfile,
                            security=security, everything=everything, dry_run=dry_run,
                            context=context, tag=tag, flags=flags, build_args=build_args)
    with user_errors(), build_log_shown():
        outcome = run_update(request, progress, warn, log=build_log(quiet))
    if dry_run:
        _print_plan(outcome, fmt)
        raise SystemExit(0 if outcome.plan.moves else EXIT_DIFFERS)
    if outcome.change is None:
        click.echo("nothing to update", err=True)
        raise SystemExit(EXIT_DIFFERS)
    _print_diff(outcome, fmt)


def _print_plan(outcome: UpdateOutcome, fmt: str) -> None:
    """What a dry run would move (and what it cannot), as --format asks."""
    from dataclasses import asdict

    from relock.update.command import move_text

    plan = outcome.plan
    if fmt == "json":
        click.echo(json.dumps({"version": 1, "moves": [asdict(m) for m in plan.moves],
                               "stuck": list(plan.stuck)}, indent=2, sort_keys=True))
        return
    if not plan.moves:
        click.echo("nothing would move")
        return
    for move in plan.moves:
        click.echo(f"would move {move_text(move)}")


def _print_diff(outcome: UpdateOutcome, fmt: str) -> None:
    """What the update changed, as relock diff prints it."""
    from relock.freeze.sides import Side
    from relock.lock import diffformat

    assert outcome.new is not None and outcome.change is not None
    path, result = str(outcome.path), outcome.change
    a = Side(f"{path} (before)", "file", outcome.old)
    b = Side(path, "file", outcome.new)
    if fmt == "json":
        text = diffformat.format_json(result, a, b)
    elif fmt == "markdown":
        text = diffformat.format_markdown(result, a, b)
    else:
        text = diffformat.format_text(result, style=click.style)
    click.echo(text, nl=False, color=None)
