"""``relock update``: a new lock in which only the packages asked for move."""

from __future__ import annotations

import json
from pathlib import Path

import click

from relock.cli.common import (
    build_arg_option,
    cli,
    default_lock,
    load_template,
    lock_option,
    make_rebuild_options,
    progress,
    rebuild_options,
    user_errors,
    warn,
)
from relock.errors import EXIT_DIFFERS


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
                   "(docs/update-json.md).")
@click.option("--context", type=click.Path(file_okay=False, path_type=Path),
              help="Build context. [default: the template's folder]")
@click.option("-t", "--tag", help="Name the updated image.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the build log.")
@rebuild_options
@build_arg_option
def update(names: tuple[str, ...], lock_path: Path | None, dockerfile: Path | None,
           security: bool, everything: bool, dry_run: bool, fmt: str, context: Path | None,
           tag: str | None, quiet: bool, apt_live: bool, apt_snapshot_url: str | None,
           apt_mirrors: tuple[str, ...], view_port: int | None, force: bool,
           store: str | None, build_args: dict[str, str]) -> None:
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
    if store is not None:
        raise click.UsageError("update takes new versions from the archives and the index; "
                               "--store (the locked files only) does not apply")
    from relock.lock import lockfile
    from relock.update import outdated as od
    from relock.update import update as core
    from relock.upstream.archive import Archive
    from relock.upstream.archive import default_cache_dir as apt_cache_dir
    from relock.upstream.index import Index, default_cache_dir, pip_config

    if not (names or security or everything):
        raise click.UsageError("name the packages to update, or pass --security or --all")
    path = default_lock(lock_path)
    with user_errors():
        lock, parsed, args = load_template(dockerfile, path, build_args)
        template_path = Path(parsed.path)
        config = pip_config()
        index = Index(config, default_cache_dir())
        archive = Archive(apt_cache_dir())
        keyrings = od.local_keyrings(lock.apt_sources)
        template = od.template_requirements(template_path)
        report = od.outdated(lock, archive=archive, index=index if lock.pip else None,
                             template=template, keyrings=keyrings,
                             pip_cache=od.default_cache_dir())
        if report.problems:
            for line in report.problems:
                warn(f"not read: {line}")
            raise core.UpdateError("some package indexes could not be read; nothing updated")
        progress("planning the update")
        in_base = _in_base(lock, dry_run)
        plan = core.plan(lock, report, names, security=security, everything=everything,
                         archive=archive, keyrings=keyrings, template=template,
                         index_urls=config.urls, in_base=in_base)
    for line in plan.stuck:
        warn(f"not moved: {line}")
    if dry_run:
        _print_plan(plan, fmt)
        raise SystemExit(0 if plan.moves else EXIT_DIFFERS)
    if not plan.moves:
        click.echo("nothing to update", err=True)
        raise SystemExit(EXIT_DIFFERS)
    for move in plan.moves:
        progress(f"moving {_move_text(move)}")
    options = make_rebuild_options(path, apt_live, apt_snapshot_url, apt_mirrors, view_port,
                               force, tag=tag)

    def log(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    from relock.errors import BuildError
    from relock.image import engine

    with user_errors():
        client = engine.connect()
        try:
            new, image = core.build_and_freeze(
                client, parsed, plan, context or template_path.parent, options, args,
                index=index, archive=archive, log=log, progress=progress)
        except BuildError as e:
            if e.log_tail:
                click.echo("relock: the build log ends with:", err=True)
                click.echo(e.log_tail, err=True)
            raise
        text = path.read_text("utf-8", "replace")
        lockfile.write(new, path, image=core.lock_image_word(text))
        progress(f"wrote {path} (from image {image[:19]})")
    _print_diff(lock, new, str(path), fmt)


def _in_base(lock: object, dry_run: bool) -> set[tuple[str, str, str]]:
    """What the lock's base images hold; a dry run without an engine guesses nothing."""
    from relock.build.rebuild import installed_in_bases
    from relock.errors import EngineError
    from relock.image import engine
    from relock.lock.lockfile import Lock

    assert isinstance(lock, Lock)
    try:
        return installed_in_bases(engine.connect(), lock, progress)
    except EngineError as e:
        if not dry_run:
            raise
        warn(f"no engine ({e}); packages of the base image are planned as if they could move")
        return set()


def _move_text(move: object) -> str:
    from relock.update.update import Move

    assert isinstance(move, Move)
    note = " (security)" if move.security else (" (needed)" if move.why == "needed" else "")
    return f"{move.kind} {move.name} {move.locked or '(new)'} -> {move.target}{note}"


def _print_plan(plan: object, fmt: str) -> None:
    from dataclasses import asdict

    from relock.update.update import Plan

    assert isinstance(plan, Plan)
    if fmt == "json":
        click.echo(json.dumps({"version": 1, "moves": [asdict(m) for m in plan.moves],
                               "stuck": list(plan.stuck)}, indent=2, sort_keys=True))
        return
    if not plan.moves:
        click.echo("nothing would move")
        return
    for move in plan.moves:
        click.echo(f"would move {_move_text(move)}")


def _print_diff(old: object, new: object, path: str, fmt: str) -> None:
    from relock.freeze.sides import Side
    from relock.lock import diff, diffformat
    from relock.lock.lockfile import Lock

    assert isinstance(old, Lock) and isinstance(new, Lock)
    result = diff.diff_locks(old, new)
    a, b = Side(f"{path} (before)", "file", old), Side(path, "file", new)
    if fmt == "json":
        text = diffformat.format_json(result, a, b)
    elif fmt == "markdown":
        text = diffformat.format_markdown(result, a, b)
    else:
        text = diffformat.format_text(result, style=click.style)
    click.echo(text, nl=False, color=None)
