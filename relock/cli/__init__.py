"""relock's command line (see ``relock.cli.common`` for the shared parts).

``main`` answers ``relock --help`` from ``relock.cli.helptext`` without
importing click or any command, so that it is as quick as Python's own
start; everything else goes through the click group ``cli``, whose modules
are imported on first use.
"""

from __future__ import annotations

import os
import sys

# typing.TYPE_CHECKING without importing typing (some 3 ms of `relock --help`'s
# start); type checkers read any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import click

__all__ = ["cli", "main"]

# Below this many columns click wraps the help narrower than the stored text.
_HELP_WIDTH = 80


def _columns() -> int:
    """The terminal's width as click finds it (``shutil.get_terminal_size``'s rules)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or _HELP_WIDTH


def main() -> None:
    """Console entry point."""
    if sys.argv[1:] in (["--help"], ["-h"]) and _columns() >= _HELP_WIDTH:
        from relock.cli.helptext import TEXT

        sys.stdout.write(TEXT)
        sys.stdout.flush()
        return
    import gc

    # A run is short and most of its objects (modules, classes) live to the
    # end: collect less often than every 700 allocations while importing, and
    # spare the interpreter's last collection over all of them at exit.
    gc.set_threshold(10_000, 50, 50)
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    try:
        _group().main(prog_name="relock")
    except _Terminated:
        _die_of_sigterm()
    finally:
        gc.freeze()


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` and clean-up runs."""


# After SIGTERM, the clean-up (threads finishing their request) gets this long;
# then, or at a second SIGTERM, the process ends of SIGTERM at once.
_GRACE = 10.0


def _terminate(signum: int, frame: object) -> None:
    import signal
    import threading

    from relock.files import STOPPING

    STOPPING.set()  # writes in other threads give up at their next chunk
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    timer = threading.Timer(_GRACE, os.kill, (os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    raise _Terminated


def _die_of_sigterm() -> None:
    """End as SIGTERM ends a process (status -15), now that nothing is half-written."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    raise SystemExit(128 + signal.SIGTERM)  # only if the signal is blocked


def _group() -> click.Group:
    """The click group; its commands' modules are imported on first use."""
    from relock.cli.common import cli

    return cli


def __getattr__(name: str) -> click.Group:
    if name == "cli":
        return _group()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
