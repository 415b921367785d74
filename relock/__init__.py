"""relock: lock a built container image and rebuild it the same way later."""

from __future__ import annotations

__version__ = "0.1.0"
