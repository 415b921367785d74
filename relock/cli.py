"""relock's command line: declares commands and options, calls the core.

Nothing here knows how an image is read or a Dockerfile rewritten; it turns
``RelockError`` into one line on stderr and the error's exit code.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from relock import __version__
from relock.errors import EXIT_ERROR, RelockError

F = TypeVar("F", bound=Callable[..., Any])


class RelockClickError(click.ClickException):
    """A RelockError on its way out: one line, the error's exit code."""

    def __init__(self, error: RelockError) -> None:
        super().__init__(str(error))
        self.code = error.exit_code

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return self.code

    def show(self, file: Any = None) -> None:
        click.echo(f"relock: error: {self.format_message()}", err=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn core errors into click errors at the edge."""
    try:
        yield
    except RelockError as e:
        raise RelockClickError(e) from None


def progress(message: str) -> None:
    """Progress for people, on stderr, so stdout stays parseable."""
    click.echo(f"relock: {message}", err=True)


def warn(message: str) -> None:
    click.echo(f"relock: warning: {message}", err=True)


# -- options shared by several commands ---------------------------------------

def dockerfile_option(f: F) -> F:
    return click.option(
        "-f", "--file", "dockerfile", default="Dockerfile.in", show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The Dockerfile template the image is built from.",
    )(f)


def build_arg_option(f: F) -> F:
    return click.option(
        "--build-arg", "build_args", multiple=True, metavar="KEY=VALUE",
        callback=_parse_build_args,
        help="A build argument, as for docker build (repeatable); expands ARGs in FROM.",
    )(f)


def _parse_build_args(ctx: click.Context, param: click.Parameter,
                      values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", ctx=ctx, param=param)
        out[key] = val
    return out


def _lock_name(image: str) -> str:
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    name = name.split(":", 1)[0] if ":" in name else name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "image"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="relock")
def cli() -> None:
    """Lock a built container image and rebuild it the same way later.

    \b
    The loop:
      docker build -t sci -f Dockerfile.in .   # an ordinary, unpinned build
      relock freeze sci                        # record it in locks/sci.lock
      relock build --lock locks/sci.lock -t sci:pinned   # rebuild it pinned
      relock verify sci:pinned --lock locks/sci.lock     # prove it matches
      relock diff locks/old.lock locks/sci.lock          # review what changed

    Exit codes: 0 ok or identical, 1 differs (drift, a diff, a failed build),
    2 trouble (bad input, unreachable engine or index, unreadable lock).
    """


@cli.command()
@click.argument("image", required=False)
@dockerfile_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the lock. [default: locks/NAME.lock]")
@click.option("--name", help="NAME of the default output path. [default: from IMAGE]")
@click.option("--rootfs", type=click.Path(file_okay=False, path_type=Path),
              help="Freeze this folder tree (debootstrap output, unpacked image) "
                   "instead of an image; no engine needed.")
@click.option("--snapshot", metavar="YYYYMMDDTHHMMSSZ",
              help="The APT snapshot time to lock. [default: the image's Release "
                   "files' Date, else its creation time]")
@click.option("--allow-local-base", is_flag=True,
              help="Lock a base image that has no registry digest by its image ID "
                   "(other hosts cannot reproduce that).")
@click.option("--no-index", is_flag=True,
              help="Do not ask the package index for hashes (the lock then cannot "
                   "drive a --require-hashes build).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@build_arg_option
def freeze(image: str | None, dockerfile: Path, output: Path | None, name: str | None,
           rootfs: Path | None, snapshot: str | None, allow_local_base: bool,
           no_index: bool, as_json: bool, build_args: dict[str, str]) -> None:
    """Read IMAGE's files into a lock file.

    Records the base image digests of Dockerfile.in's FROM lines, the distro,
    the APT sources and snapshot time, every dpkg package (name, version,
    arch) and every pip-installed distribution with the sha256 of its files
    on the package index pip is configured to use. Nothing in the image is
    run. The lock is written atomically: on any error the old one stays.

    \b
    Examples:
      relock freeze sci                       # -> locks/sci.lock
      relock freeze sci -f Dockerfile.in -o locks/2026-11.lock
      relock freeze --rootfs /srv/chroot --name chroot
    """
    from relock import dockerfile as df
    from relock import freeze as fz
    from relock.index import Index, default_cache_dir, pip_config
    from relock.lockfile import write

    if (image is None) == (rootfs is None):
        raise click.UsageError("give either IMAGE or --rootfs DIR")
    with user_errors():
        if image is not None or dockerfile.exists():
            parsed = df.load(dockerfile, build_args)
        else:
            parsed = None
        index = None if no_index else Index(pip_config(), default_cache_dir())
        options = fz.FreezeOptions(snapshot=snapshot, allow_local_base=allow_local_base,
                                   index=index, build_args=build_args)
        label = image or str(rootfs)
        out = output or Path("locks") / f"{name or _lock_name(label)}.lock"
        if rootfs is not None:
            result = fz.freeze_rootfs(rootfs, parsed, options, progress)
        else:
            from relock import engine

            assert parsed is not None and image is not None
            result = fz.freeze_image(engine.connect(), image, parsed, options, progress)
        for line in result.warnings:
            warn(line)
        write(result.lock, out, image=image or f"--rootfs {rootfs}")
    lock = result.lock
    summary = {
        "lock": str(out),
        "apt": len(lock.apt),
        "pip": len(lock.pip),
        "base": len(lock.base),
        "snapshot": lock.snapshot,
        "warnings": list(result.warnings),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        click.echo(f"wrote {out}: {len(lock.apt)} apt, {len(lock.pip)} pip, "
                   f"{len(lock.base)} base, snapshot {lock.snapshot or '-'}")


def main() -> None:
    """Console entry point."""
    try:
        cli.main(prog_name="relock", standalone_mode=True)
    except RelockError as e:  # pragma: no cover - commands wrap their own
        click.echo(f"relock: error: {e}", err=True)
        sys.exit(EXIT_ERROR)



