"""``relock render``, ``relock build`` and ``relock verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from relock.cli.common import (
    apt_options,
    build_arg_option,
    cli,
    default_lock,
    dockerfile_option,
    lock_option,
    progress,
    user_errors,
)
from relock.errors import EXIT_DIFFERS, BuildError

if TYPE_CHECKING:
    from relock.engine import ImageSource
    from relock.lockfile import Lock
    from relock.verify import Drift


def _render(dockerfile: Path, lock_path: Path, build_args: dict[str, str], apt_live: bool,
            apt_snapshot_url: str | None, apt_snapshot_style: str, force: bool) -> Any:
    from relock import dockerfile as df
    from relock import lockfile, render

    lock = lockfile.read(lock_path)
    parsed = df.load(dockerfile, build_args)
    options = render.RenderOptions(apt_mode="live" if apt_live else "snapshot",
                                   snapshot_url=apt_snapshot_url,
                                   snapshot_style=apt_snapshot_style, force=force,
                                   lock_path=str(lock_path))
    return lock, render.render(parsed, lock, options)


def _write_rendered(rendered: Any, output: Path) -> None:
    """Write the pinned Dockerfile and relock.d/ beside it, each atomically."""
    import shutil

    from relock.lockfile import atomic_write_text
    from relock.render import SUPPORT_DIR

    support = output.parent / SUPPORT_DIR
    staging = output.parent / f".{SUPPORT_DIR}.new"
    shutil.rmtree(staging, ignore_errors=True)
    for name, text in rendered.files.items():
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    shutil.rmtree(support, ignore_errors=True)
    staging.rename(support)
    atomic_write_text(output, rendered.dockerfile)


@cli.command("render")
@dockerfile_option
@lock_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the pinned Dockerfile; relock.d/ goes beside it. "
                   "[default: Dockerfile beside Dockerfile.in]")
@apt_options
@build_arg_option
def render_cmd(dockerfile: Path, lock_path: Path | None, output: Path | None,
               apt_live: bool, apt_snapshot_url: str | None, apt_snapshot_style: str,
               force: bool, build_args: dict[str, str]) -> None:
    """Write the pinned Dockerfile for Dockerfile.in and a lock.

    Every FROM is pinned to its locked digest; APT reads the dated snapshot
    of the image's own sources (or, with --apt-live, the live ones) with
    every locked package pinned to its version; pip installs each
    environment's locked set with --require-hashes. Support files go to
    relock.d/ beside the output, which must be in the build context.

    \b
    Example:
      relock render --lock locks/sci.lock -o Dockerfile
      docker build -f Dockerfile .     # any builder works
    """
    lock_path = default_lock(lock_path)
    out = output or dockerfile.parent / "Dockerfile"
    with user_errors():
        _, rendered = _render(dockerfile, lock_path, build_args, apt_live, apt_snapshot_url,
                              apt_snapshot_style, force)
        _write_rendered(rendered, out)
    click.echo(f"wrote {out} and {out.parent / 'relock.d'}/")


@cli.command("build")
@dockerfile_option
@lock_option
@click.option("-t", "--tag", help="Name the built image.")
@click.option("--platform", help="Target platform, e.g. linux/amd64.")
@click.option("--context", type=click.Path(file_okay=False, path_type=Path),
              help="Build context. [default: the folder of Dockerfile.in]")
@click.option("--no-cache", is_flag=True, help="Do not reuse cached layers.")
@click.option("--no-verify", is_flag=True, help="Skip checking the image against the lock.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the build log.")
@apt_options
@build_arg_option
def build_cmd(dockerfile: Path, lock_path: Path | None, tag: str | None, platform: str | None,
              context: Path | None, no_cache: bool, no_verify: bool, quiet: bool,
              apt_live: bool, apt_snapshot_url: str | None, apt_snapshot_style: str,
              force: bool, build_args: dict[str, str]) -> None:
    """Render the pinned Dockerfile, build it, and verify the image.

    The build runs through the engine with host networking; its log streams
    to stderr. A lock frozen from another Dockerfile.in is refused unless
    --force. Exit 0 when the image matches the lock, 1 when the build failed
    or the image drifted, 2 on bad input or an unreachable engine.

    \b
    Example:
      relock build --lock locks/sci.lock -t sci:pinned
    """
    from relock import build as builder
    from relock import engine

    lock_path = default_lock(lock_path)
    ctx = context or dockerfile.parent
    out = ctx / "Dockerfile"
    with user_errors():
        lock, rendered = _render(dockerfile, lock_path, build_args, apt_live, apt_snapshot_url,
                                 apt_snapshot_style, force)
        _write_rendered(rendered, out)
        progress(f"wrote {out}; building")
        client = engine.connect()

        def log(line: str) -> None:
            if not quiet:
                click.echo(line, err=True)

        try:
            result = builder.build(client, ctx, out.name, tag=tag, build_args=build_args,
                                   platform=platform, nocache=no_cache, log=log,
                                   snapshot="" if apt_live else lock.snapshot)
        except BuildError as e:
            if e.log_tail:
                click.echo("relock: the build log ends with:", err=True)
                click.echo(e.log_tail, err=True)
            raise
        progress(f"built {tag or result.image_id[:19]}")
        if no_verify:
            click.echo(tag or result.image_id)
            return
        drift = _verify(client, tag or result.image_id, lock)
    _report(drift, tag or result.image_id, str(lock_path), as_json=False)


def _verify(source: ImageSource, ref: str, lock: Lock) -> list[Drift]:
    from relock.verify import verify_image

    progress(f"verifying {ref[:40]} against the lock")
    return verify_image(source, ref, lock)


def _report(drift: list[Drift], image: str, lock_path: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"image": image, "lock": lock_path, "matches": not drift,
                               "drift": [d.as_dict() for d in drift]}, indent=2,
                              sort_keys=True))
    elif drift:
        click.echo(f"{image} drifted from {lock_path}: {len(drift)} difference(s)")
        for d in drift:
            click.echo(f"  {d.describe()}")
    else:
        click.echo(f"{image} matches {lock_path}")
    if drift:
        raise SystemExit(EXIT_DIFFERS)


@cli.command("verify")
@click.argument("image")
@lock_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_cmd(image: str, lock_path: Path | None, as_json: bool) -> None:
    """Check that IMAGE's packages and base match a lock.

    Reads IMAGE's files (nothing is run), compares every APT and pip package
    version and checks that the image sits on a locked base digest. Exit 0
    when it matches, 1 with the list of differences when it drifted, 2 on
    trouble. This is what CI runs.
    """
    from relock import engine, lockfile

    lock_path = default_lock(lock_path)
    with user_errors():
        lock = lockfile.read(lock_path)
        drift = _verify(engine.connect(), image, lock)
    _report(drift, image, str(lock_path), as_json)
