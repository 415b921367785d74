"""``relock outdated``: which locked packages have newer versions (no build)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from relock.cli.common import cli, dockerfile_option, lock_option, user_errors, warn
from relock.errors import EXIT_DIFFERS, EXIT_ERROR

if TYPE_CHECKING:
    from relock.update.outdated import Report


@cli.command()
@lock_option
@dockerfile_option
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True,
              help="text for a terminal, markdown for an issue, json for scripts "
                   "(keys in docs/outdated-json.md).")
@click.option("--only", multiple=True, type=click.Choice(["apt", "pip"]),
              help="Look up only this kind of package (repeatable).")
@click.option("--snapshot", metavar="TIME",
              help="Read the APT sources as they stood at TIME (YYYYMMDDTHHMMSSZ) on the "
                   "snapshot service instead of live.")
@click.option("--apt-snapshot-url", metavar="URL",
              help="Base URL of the snapshot archive (as for relock build). "
                   "[default: the distro's snapshot service]")
@click.option("--refresh", is_flag=True,
              help="Ask the Python index again even if its answer is less than an hour old.")
def outdated(lock_path: Path | None, dockerfile: Path, fmt: str, only: tuple[str, ...],
             snapshot: str | None, apt_snapshot_url: str | None, refresh: bool) -> None:
    """List the locked packages that have newer versions (no build).

    APT: the current indexes of the lock's own sources (Release signatures
    checked with this machine's keyrings where it has the source's
    Signed-By file); a newer version from a *-security suite is marked
    security. pip: the index pip is configured with; a specifier of the
    template's own (pip install 'numpy<2.5', -r files beside it) that holds a
    package back is named.

    Exits 0 when nothing can move, 1 when something can, 2 on trouble (an
    unreadable lock, source or index; what could be read is still listed).

    \b
    Examples:
      relock outdated --lock locks/sci.lock
      relock outdated --format markdown --only apt
    """
    from relock.update.command import OutdatedRequest, run_outdated

    request = OutdatedRequest(lock_path=lock_path, dockerfile=dockerfile, only=only,
                              snapshot=snapshot, apt_snapshot_url=apt_snapshot_url,
                              refresh=refresh)
    with user_errors():
        report = run_outdated(request)
    _print(report, fmt)
    if report.problems:
        raise SystemExit(EXIT_ERROR)
    if report.outdated:
        raise SystemExit(EXIT_DIFFERS)


def _print(report: Report, fmt: str) -> None:
    """What can move, as --format asks; warnings on stderr unless it is JSON."""
    from relock.update import outdated as core

    if fmt == "json":
        text = core.format_json(report)
    else:
        for line in report.warnings:
            warn(line)
        for line in report.problems:
            warn(f"not read: {line}")
        text = (core.format_markdown(report) if fmt == "markdown"
                else core.format_text(report, style=click.style))
    click.echo(text, nl=False, color=None)
