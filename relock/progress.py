"""Progress messages: what the core tells a person while it works.

The core never prints; it calls a ``Progress`` it was given. The CLI passes
one that writes to stderr; library callers get ``quiet``.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A ``Progress`` that says nothing."""
