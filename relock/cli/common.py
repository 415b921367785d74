"""relock's command line: the group, shared options, and the edge for errors.

Each command lives in its own module of this package and only declares
options and calls the core (``relock.freeze``, ``relock.render``, ...).
Nothing here knows how an image is read or a Dockerfile rewritten; a
``RelockError`` becomes one line on stderr and the error's exit code.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from relock import __version__
from relock.errors import RelockError
from relock.reference import parse

# click decorates callables of any signature.
F = TypeVar("F", bound=Callable[..., Any])


class RelockClickError(click.ClickException):
    """A RelockError on its way out: one line, the error's exit code."""

    def __init__(self, error: RelockError) -> None:
        super().__init__(str(error))
        self.code = error.exit_code

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return self.code

    def show(self, file: IO[Any] | None = None) -> None:
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


def lock_name(image: str) -> str:
    """A file name for the lock of ``image``: its repository's last part."""
    name = parse(image).name.rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "image"


@click.group(name="relock", context_settings={"help_option_names": ["-h", "--help"]})
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




def lock_option(f: F) -> F:
    return click.option(
        "--lock", "lock_path", type=click.Path(dir_okay=False, path_type=Path),
        help="The lock file. [default: the only *.lock in locks/]",
    )(f)


def default_lock(lock_path: Path | None) -> Path:
    """``--lock`` or the only lock in ``locks/``."""
    if lock_path is not None:
        return lock_path
    found = sorted(Path("locks").glob("*.lock"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise click.UsageError("no --lock given and no locks/*.lock here")
    names = ", ".join(str(p) for p in found)
    raise click.UsageError(f"several locks in locks/ ({names}); name one with --lock")


def apt_options(f: F) -> F:
    f = click.option(
        "--apt-live", is_flag=True,
        help="Keep the image's own APT sources (with exact version pins) instead of the "
             "dated snapshot; for mirrors without time travel.",
    )(f)
    f = click.option(
        "--apt-snapshot-style", type=click.Choice(["auto", "native", "rewrite"]),
        default="auto", show_default=True,
        help="How apt reaches the snapshot: 'native' uses apt's deb822 Snapshot: field "
             "(apt >= 2.7: Debian 13, Ubuntu 23.10 on), 'rewrite' rewrites the source "
             "URIs (any apt); 'auto' picks native where the image's apt has it.",
    )(f)
    f = click.option(
        "--apt-snapshot-url", metavar="URL",
        help="Base URL of the snapshot archive; the archive name (debian, "
             "debian-security, ubuntu) and snapshot id are appended. "
             "[default: the distro's snapshot service]",
    )(f)
    return click.option(
        "--force", is_flag=True,
        help="Render even if the lock was frozen from another Dockerfile.in.",
    )(f)
