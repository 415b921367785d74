"""relock's command line (see ``relock.cli.common`` for the shared parts)."""

from __future__ import annotations

from relock.cli import build as _build  # noqa: F401  (registers the commands)
from relock.cli import diff as _diff  # noqa: F401  (registers the command)
from relock.cli import freeze as _freeze  # noqa: F401  (registers the command)
from relock.cli import store as _store  # noqa: F401  (registers the commands)
from relock.cli import vendor as _vendor  # noqa: F401  (registers the command)
from relock.cli.common import cli, main

__all__ = ["cli", "main"]
