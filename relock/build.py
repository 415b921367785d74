"""Building the pinned Dockerfile through the engine, and reading its failures.

The build log is streamed to a callback as it comes; when the build fails,
the tail of the log is kept and known failures (a locked APT version missing
from the archive, a wheel whose hash differs from the lock) are turned into
one line that names the package.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from relock.engine import BuildRequest, ImageBuilder
from relock.errors import BuildError
from relock.progress import Progress, quiet

TAIL_LINES = 25

# Patterns, not compiled regexes: they are needed only when a build fails.
_APT_MISSING = r"Version '([^']+)' for '([^']+)' was not found"
_APT_NO_CANDIDATE = r"Package '?([^' ]+)'? has no installation candidate"
_APT_UNKNOWN = r"E: Unable to locate package (\S+)"
# pip writes "name==version from URL (from -r FILE (line N)):", then one
# "Expected sha256 H" line, an "Expected     or H" line per further hash, and "Got H".
_HASH_MISMATCH = (
    r"(?m)^\s*(\S+?)==(\S+) from (\S+)(?: \(from .*\))?:\s*\n"
    r"\s*Expected sha256 (\w+)\s*\n(?:\s*Expected\s+or \w+\s*\n)*\s*Got\s+(\w+)"
)


@dataclass
class BuildResult:
    """The image a build made, and the log it wrote."""

    image_id: str
    log: list[str] = field(default_factory=list)


def build(builder: ImageBuilder, context: Path | IO[bytes], dockerfile: str, *,
          tag: str | None = None, build_args: Mapping[str, str] | None = None,
          platform: str | None = None, nocache: bool = False, log: Progress = quiet,
          snapshot: str = "", network_mode: str = "host",
          extra_hosts: Mapping[str, str] | None = None) -> BuildResult:
    """Build ``dockerfile`` (a path inside ``context``) with host networking.

    ``context`` is a folder, or a file object of a ready tar of the context
    (which must hold ``dockerfile``).
    """
    request = BuildRequest(
        dockerfile=dockerfile,
        context=context if isinstance(context, Path) else None,
        context_tar=None if isinstance(context, Path) else context,
        tag=tag, build_args=dict(build_args or {}), platform=platform, nocache=nocache,
        network_mode=network_mode, extra_hosts=dict(extra_hosts or {}),
    )
    tail: collections.deque[str] = collections.deque(maxlen=400)
    image_id = ""
    for event in builder.build(request):
        if event.kind == "log":
            tail.append(event.text)
            log(event.text)
        elif event.kind == "image":
            image_id = event.text
        elif event.kind == "error":
            text = event.text.strip()
            tail.append(text)
            raise BuildError(explain_failure("\n".join(tail), snapshot) or
                             f"the build failed: {text.splitlines()[-1] if text else '?'}",
                             _tail(tail))
        else:
            raise BuildError(f"the engine refused the build: {event.text}", _tail(tail))
    if not image_id:
        m = next((re.search(r"Successfully built (\w+)", line) for line in reversed(tail)
                  if "Successfully built" in line), None)
        image_id = m.group(1) if m else ""
    if not image_id:
        raise BuildError("the build ended without an image", _tail(tail))
    return BuildResult(image_id=image_id, log=list(tail))


def _tail(lines: collections.deque[str]) -> str:
    return "\n".join(list(lines)[-TAIL_LINES:])


def explain_failure(log: str, snapshot: str = "") -> str | None:
    """One line for a known build failure in ``log``, or None."""
    where = f"the snapshot {snapshot}" if snapshot else "the archive"
    missing = re.findall(_APT_MISSING, log)
    if missing:
        listed = ", ".join(f"{name} {version}" for version, name in missing)
        return (f"locked APT package version not in {where}: {listed}; re-freeze, or "
                "render against a snapshot that has it (--apt-snapshot-url)")
    no_candidate = re.findall(_APT_NO_CANDIDATE, log) + [
        name.split("=", 1)[0] for name in re.findall(_APT_UNKNOWN, log)]
    if no_candidate:
        return (f"locked APT package not in {where}: {', '.join(no_candidate)}; re-freeze, "
                "or check the APT sources")
    mismatches = re.findall(_HASH_MISMATCH, log)
    if mismatches:
        name, version, _url, want, got = mismatches[0]
        return (f"{name}=={version} downloaded from the index does not match the lock "
                f"(expected sha256 {want[:16]}..., got {got[:16]}...): the file on the index "
                "changed; refusing to install it")
    if "THESE PACKAGES DO NOT MATCH THE HASHES" in log:
        return "a downloaded Python package does not match the hashes in the lock"
    m = re.search(r"No matching distribution found for (\S+)", log)
    if m:
        return f"{m.group(1)} is not on the package index any more; re-freeze"
    return None
