"""relock's command line: the group, shared options, and the edge for errors.

Each command lives in its own module of this package and only declares
options and calls one use case of the core (``relock.build.command.run_freeze``,
``relock.build.command.run_render``, ...).
Nothing here knows how an image is read or a Dockerfile rewritten; a
``RelockError`` becomes one line on stderr and the error's exit code.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import click

from relock import __version__
from relock.errors import BuildError, RelockError, UsageError

if TYPE_CHECKING:
    from relock.build.command import ViewSources

# click decorates callables of any signature; a decorator hands back the same type.
F = TypeVar("F", bound=Callable[..., object])


class RelockClickError(click.ClickException):
    """A RelockError on its way out: one line, the error's exit code."""

    def __init__(self, error: RelockError) -> None:
        super().__init__(str(error))
        self.code = error.exit_code

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return self.code

    def show(self, file: IO[str] | None = None) -> None:
        click.echo(f"relock: error: {printable(self.format_message())}", err=True)


class RelockUsageError(click.UsageError):
    """A misused command line, said the way every relock error is: one line, exit 2."""

    def show(self, file: IO[str] | None = None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx else ""
        click.echo(f"relock: error: {printable(self.format_message())}{hint}", err=True)


class PlatformType(click.ParamType[str]):
    """A ``--platform`` value: ``os/arch[/variant]`` (``relock.lock.platform.chosen``),
    comma-separated ones with ``many``; "" or a word that names no platform is refused."""

    name = "platform"

    def __init__(self, many: bool = False, every: str = "") -> None:
        self.many = many
        self.every = every  # a word naming every platform (``all``), where one is taken

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        from relock.lock.platform import PlatformError, chosen, chosen_list

        try:
            if self.every and str(value).strip() == self.every:
                return self.every
            if self.many:
                return ",".join(chosen_list([str(value)]))
            return chosen(str(value)) or ""
        except PlatformError as e:
            self.fail(str(e), param, ctx)


PLATFORM = PlatformType()
PLATFORMS = PlatformType(many=True)
# relock build's: comma-separated, or ``all`` (relock.build.command.EVERY_PLATFORM).
BUILD_PLATFORMS = PlatformType(many=True, every="all")


def printable(text: str) -> str:
    """``text`` with newlines and other control characters shown as escapes: safe for
    one line of a terminal."""
    from relock.lock.grammar import escape_control

    return escape_control(text)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn core errors into click errors at the edge.

    An ``OSError`` that no core module turned into a ``RelockError`` (a full
    disk, a vanished folder) is a last resort here: still one line, exit 2.
    """
    try:
        yield
    except UsageError as e:
        raise click.UsageError(str(e)) from None
    except RelockError as e:
        raise RelockClickError(e) from None
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise RelockClickError(RelockError(f"{where}{e.strerror or e}")) from None


@contextlib.contextmanager
def build_log_shown() -> Iterator[None]:
    """A failed build's error comes after the end of its log, for the user to read."""
    try:
        yield
    except BuildError as e:
        if e.log_tail:
            click.echo("relock: the build log ends with:", err=True)
            click.echo(e.log_tail, err=True)
        raise


def build_log(quiet: bool) -> Callable[[str], None]:
    """Where a build's log lines go: stderr, or nowhere with -q."""
    def log(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    return log


def progress(message: str) -> None:
    """Progress for people, on stderr, so stdout stays parseable."""
    click.echo(f"relock: {printable(message)}", err=True)


def warn(message: str) -> None:
    """A warning on stderr; names from an image cannot break the line or style the terminal."""
    click.echo(f"relock: warning: {printable(message)}", err=True)


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


# Each command's module, imported only when that command runs (or for the
# group's help), so that ``relock freeze`` loads neither build's nor store's code.
COMMAND_MODULES: dict[str, str] = {
    "attach": "relock.cli.attach",
    "audit": "relock.cli.audit",
    "build": "relock.cli.build",
    "diff": "relock.cli.diff",
    "export": "relock.cli.export",
    "freeze": "relock.cli.freeze",
    "merge": "relock.cli.merge",
    "outdated": "relock.cli.outdated",
    "render": "relock.cli.build",
    "sbom": "relock.cli.sbom",
    "serve": "relock.cli.build",
    "store": "relock.cli.store",
    "update": "relock.cli.update",
    "vendor": "relock.cli.vendor",
    "verify": "relock.cli.build",
}


class RelockGroup(click.Group):
    """The command group; its usage errors are one ``relock: error:`` line.

    Commands are loaded lazily (click's documented ``LazyGroup`` pattern): a
    command's module registers it with ``@cli.command`` when first imported.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if cmd_name not in self.commands and module is not None:
            import importlib

            importlib.import_module(module)
        return super().get_command(ctx, cmd_name)

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: object) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            raise _relock_usage(e) from None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            raise _relock_usage(e) from None


def _relock_usage(e: click.UsageError) -> click.UsageError:
    # Bare ``relock`` shows the help, as click does (NoArgsIsHelpError).
    if isinstance(e, RelockUsageError) or type(e).__name__ == "NoArgsIsHelpError":
        return e
    return RelockUsageError(e.format_message(), e.ctx)


@click.group(name="relock", cls=RelockGroup,
             context_settings={"help_option_names": ["-h", "--help"]})
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


def template_option(f: F) -> F:
    return click.option(
        "-f", "--file", "dockerfile", type=click.Path(dir_okay=False, path_type=Path),
        help="The Dockerfile template. [default: the one the lock was frozen from, "
             "else Dockerfile.in]",
    )(f)


def rebuild_options(f: Callable[..., None]) -> Callable[..., None]:
    """Where a pinned build's files come from: six options, handed to the command as one
    ``flags`` value (``relock.build.command.RebuildFlags``)."""

    @functools.wraps(f)
    def command(*args: object, apt_live: bool, apt_snapshot_url: str | None,
                apt_mirrors: tuple[str, ...], store: str | None, view_port: int | None,
                force: bool, **kwargs: object) -> None:
        from relock.build.command import RebuildFlags

        f(*args, flags=RebuildFlags(apt_live, apt_snapshot_url, apt_mirrors, store,
                                     view_port, force), **kwargs)

    return _rebuild_options(command)


def builder_option(f: F) -> F:
    """--builder: which builder builds (``relock.image.buildkit.select``)."""
    return click.option(
        "--builder", metavar="auto|buildkit|classic|NAME", default=None,
        help="Build with BuildKit (buildkit: the engine's own, through docker buildx), the "
             "engine's classic builder (classic), or the buildx builder NAME (docker buildx "
             "ls). [default: auto: BuildKit where docker buildx is installed; RELOCK_BUILDER]",
    )(f)


def apt_source_options(f: F) -> F:
    """Where locked .deb files are fetched from: --apt-mirror, --apt-snapshot-url,
    --apt-live (``relock build``, ``serve``, ``update`` and ``vendor``)."""
    f = click.option(
        "--apt-mirror", "apt_mirrors", multiple=True, metavar="URL",
        help="Another archive to fetch locked .debs from, after the snapshot and the "
             "image's own sources (repeatable). Every file is checked against the lock.",
    )(f)
    f = click.option(
        "--apt-snapshot-url", metavar="URL",
        help="Base URL of the snapshot archive; the archive name (debian, "
             "debian-security, ubuntu) and snapshot id are appended. "
             "[default: the distro's snapshot service]",
    )(f)
    return click.option(
        "--apt-live", is_flag=True,
        help="Do not ask the snapshot service: fetch locked .debs from the image's own "
             "sources (they keep a version until it is superseded), then the mirrors.",
    )(f)


def _rebuild_options(f: F) -> F:
    f = apt_source_options(f)
    f = click.option(
        "--store", metavar="DIR|oci://HOST/REPO",
        help="Take every file and the base image from this store (filled by `relock "
             "vendor`) and nothing from upstream: no archive, index or Docker Hub.",
    )(f)
    f = click.option(
        "--view-port", type=click.IntRange(0, 65535), default=None,
        help="Loopback port of the locked view (0: any free port; a fixed port lets the "
             "engine's build cache match earlier builds). [default: 7780]",
    )(f)
    return click.option(
        "--force", is_flag=True,
        help="Use the lock even if it was frozen from another version of the template.",
    )(f)


def store_views(store: str | None) -> ViewSources | None:
    """The locked view's source for ``--store``: the store's (a layer above the build's use
    cases, so the CLI wires it in); None for upstream."""
    if store is None:
        return None
    from relock.store.storeview import FromStore

    return lambda options: FromStore(store, options.lock_path, options.cache_dir)
