"""``relock diff``: what changed between two locks (or images, or revisions)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from relock.cli.common import (
    build_arg_option,
    cli,
    dockerfile_option,
    progress,
    user_errors,
    warn,
)
from relock.errors import EXIT_DIFFERS

if TYPE_CHECKING:
    from relock.freeze.command import DiffOutcome


@cli.command()
@click.argument("old")
@click.argument("new")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True,
              help="text for a terminal, markdown for release notes or a pull request, "
                   "json for scripts (keys in docs/diff-json.md).")
@click.option("--only", multiple=True, type=click.Choice(["apt", "pip", "base"]),
              help="Compare only this category (repeatable). Distro, snapshot, platform and "
                   "APT sources go with apt. The exit code counts only what is compared.")
@click.option("--stat", is_flag=True, help="Print only the summary counts.")
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH",
              help="Compare only this platform's part of multi-platform locks (repeatable). "
                   "[default: every platform both sides hold]")
@dockerfile_option
@build_arg_option
def diff(old: str, new: str, fmt: str, only: tuple[str, ...], stat: bool,
         platforms: tuple[str, ...], dockerfile: Path, build_args: dict[str, str]) -> None:
    """Show what changed from OLD to NEW.

    Each side is a lock file, a lock at a git revision (REV:PATH, the path
    from the repository's top) or an image in the engine, frozen in memory
    (with -f's base images if that file exists; no index hashes). Lists APT
    sources added or removed, base digests, distro and snapshot changes, and
    APT and pip packages added, removed, upgraded, downgraded (Debian and
    PEP 440 ordering) or rebuilt: same version, different hashes. Locks of
    several platforms are compared platform by platform; a change that is
    the same on every platform is shown once, others name their platforms.
    Two locks of one platform each, of different platforms (amd64's against
    arm64's), are compared with each other: each one's own architecture's
    packages are paired by name, and the header says so.

    Exits 0 if identical, 1 if they differ, 2 on trouble.

    \b
    Examples:
      relock diff locks/old.lock locks/sci.lock
      relock diff v1.2:locks/sci.lock locks/sci.lock --format markdown
      relock diff locks/sci.lock sci:latest --only pip --stat
    """
    from relock.freeze.command import DiffRequest, run_diff

    request = DiffRequest(old=old, new=new, only=only, platforms=platforms,
                          dockerfile=dockerfile, build_args=build_args)
    with user_errors():
        outcome = run_diff(request, progress, warn)
    _print(outcome, fmt, stat)
    if not outcome.result.identical:
        raise SystemExit(EXIT_DIFFERS)


def _print(outcome: DiffOutcome, fmt: str, stat: bool) -> None:
    """The change, as --format and --stat ask."""
    from relock.lock import diffformat

    a, b, result = outcome.old, outcome.new, outcome.result
    if fmt == "json":
        text = diffformat.format_json(result, a, b, stat=stat)
    elif fmt == "markdown":
        text = diffformat.format_markdown(result, a, b, stat=stat)
    else:
        text = diffformat.format_text(result, stat=stat, style=click.style)
    click.echo(text, nl=False, color=None)
