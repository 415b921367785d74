"""Tools a test runs that scripts/testbed installs: a test skips where one is missing,
never in CI (there the test bed installs them all, and a missing one must fail the run)."""

from __future__ import annotations

import os
import shutil


def missing(tool: str) -> bool:
    """Whether a test of ``tool`` skips: it is not installed here, and this is not CI."""
    return shutil.which(tool) is None and not os.environ.get("CI")
