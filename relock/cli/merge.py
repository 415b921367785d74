"""``relock merge``: git's merge driver for lock files."""

from __future__ import annotations

from pathlib import Path

import click

from relock.cli.common import cli, user_errors, warn
from relock.errors import EXIT_DIFFERS


@cli.command()
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--marker-size", type=click.IntRange(3, 64), default=7, show_default=True,
              help="Length of the conflict markers (git's %L).")
def merge(base: Path, ours: Path, theirs: Path, marker_size: int) -> None:
    """Merge two locks package by package (git's merge driver).

    BASE is the common ancestor; the result is written to OURS. A package
    (or APT source, base image, environment) changed on one side
    takes that side; the same change on both is taken once; two different
    new snapshots give the later one. A package changed differently on both
    sides is a conflict: it is named on stderr, OURS gets git-style markers
    around it and the exit code is 1. Set up as git's merge driver:

    \b
      echo '*.lock merge=relock' >> .gitattributes
      git config merge.relock.driver 'relock merge %O %A %B --marker-size %L'
    """
    from relock.lock.command import MergeRequest, run_merge

    request = MergeRequest(base=base, ours=ours, theirs=theirs, marker_size=marker_size)
    with user_errors():
        conflicts = run_merge(request)
    if not conflicts:
        return
    for c in conflicts:
        warn(f"conflict: {c.name} changed differently on both sides")
    raise SystemExit(EXIT_DIFFERS)
