"""``relock diff``: what changed between two locks (or images, or revisions)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from relock.cli.common import (
    PLATFORMS,
    build_arg_option,
    cli,
    dockerfile_option,
    progress,
    user_errors,
    warn,
)
from relock.errors import EXIT_DIFFERS

if TYPE_CHECKING:
    from relock.freeze.command import DiffOutcome, FilesOutcome


@cli.command()
@click.argument("old")
@click.argument("new")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True,
              help="text for a terminal, markdown for release notes or a pull request, "
                   "json for scripts (keys in docs/diff-json.md; with --files in "
                   "docs/diff-files-json.md).")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option("--files", is_flag=True,
              help="Compare two images file by file: every file that differs by content, "
                   "mode, owner, link target, type or presence, with the layer and the "
                   "build step that made it. Each side is an engine image, an "
                   "oci://HOST/REPO@DIGEST image or an image archive (docker save).")
@click.option("--mtimes", is_flag=True, help="With --files: compare mtimes too.")
@click.option("--only", multiple=True, type=click.Choice(["apt", "pip", "base"]),
              help="Compare only this category (repeatable). Distro, snapshot, platform and "
                   "APT sources go with apt. The exit code counts only what is compared.")
@click.option("--stat", is_flag=True, help="Print only the summary counts.")
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH",
              type=PLATFORMS,
              help="Compare only this platform's part of multi-platform locks (repeatable). "
                   "[default: every platform both sides hold]")
@click.option("--env", metavar="PATH",
              help="With a pylock.toml side: the lock's Python environment (its prefix) it "
                   "is compared with. [default: the one its [tool.relock] names, else the "
                   "lock's only one]")
@dockerfile_option
@build_arg_option
def diff(old: str, new: str, fmt: str, as_json: bool, files: bool, mtimes: bool,
         only: tuple[str, ...], stat: bool, platforms: tuple[str, ...], env: str | None,
         dockerfile: Path, build_args: dict[str, str]) -> None:
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

    A side that is a PEP 751 pylock.toml (or pylock.NAME.toml) is compared
    on its Python distributions only, with one environment of one platform
    of the other side (--env, --platform); a distribution is rebuilt when
    neither side's file hashes are all among the other's.

    With --files, OLD and NEW are images (the engine's, oci:// ones or
    image archives) compared file by file in their merged views (whiteouts
    applied): each file that differs, how, and for each side the layer that
    holds it and the step of the image's history that made that layer.
    mtimes only with --mtimes.

    Exits 0 if identical, 1 if they differ, 2 on trouble.

    \b
    Examples:
      relock diff locks/old.lock locks/sci.lock
      relock diff v1.2:locks/sci.lock locks/sci.lock --format markdown
      relock diff locks/sci.lock sci:latest --only pip --stat
      relock diff --files sci:built-here oci://127.0.0.1:5000/sci@sha256:...
      relock diff locks/sci.lock pylock.toml --platform linux/amd64
    """
    from relock.freeze.command import DiffRequest, run_diff

    request = DiffRequest(old=old, new=new, only=only, platforms=platforms,
                          dockerfile=dockerfile, build_args=build_args, files=files,
                          mtimes=mtimes, env=env)
    with user_errors():
        outcome = run_diff(request, progress, warn)
    _print(outcome, "json" if as_json else fmt, stat)
    if not outcome.identical:
        raise SystemExit(EXIT_DIFFERS)


def _print(outcome: DiffOutcome | FilesOutcome, fmt: str, stat: bool) -> None:
    """The change, as --format and --stat ask."""
    from relock.freeze.command import FilesOutcome
    from relock.lock import diffformat

    if isinstance(outcome, FilesOutcome):
        _print_files(outcome, fmt, stat)
        return
    a, b, result = outcome.old, outcome.new, outcome.result
    if fmt == "json":
        text = diffformat.format_json(result, a, b, stat=stat)
    elif fmt == "markdown":
        text = diffformat.format_markdown(result, a, b, stat=stat)
    else:
        text = diffformat.format_text(result, stat=stat, style=click.style)
    click.echo(text, nl=False, color=None)


def _print_files(outcome: FilesOutcome, fmt: str, stat: bool) -> None:
    """The files that differ, as --format and --stat ask."""
    from relock.image import filediff

    a, b, found = outcome.old, outcome.new, list(outcome.differences)
    if fmt == "json":
        text = filediff.format_json(found, a, b, mtimes=outcome.mtimes, stat=stat)
    elif fmt == "markdown":
        text = filediff.format_markdown(found, a, b, stat=stat)
    else:
        text = filediff.format_text(found, a, b, stat=stat, style=click.style)
    click.echo(text, nl=False, color=None)
