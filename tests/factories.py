"""One way for tests to make a ``Lock``: name only what the test is about.

Every field has a small valid default (a trixie image built from
``Dockerfile.in``); a test passes the fields it cares about.
"""

from __future__ import annotations

from typing import Any

from relock.lock.lockfile import Distro, Input, Lock

DEFAULT_INPUT = Input("Dockerfile.in", "ab" * 32)
DEFAULT_DISTRO = Distro("debian", "13", "trixie")


def make_lock(**fields: Any) -> Lock:
    """A ``Lock`` with ``fields`` (any of Lock's) and defaults for the rest."""
    fields.setdefault("input", DEFAULT_INPUT)
    fields.setdefault("distro", DEFAULT_DISTRO)
    return Lock(**fields)
