"""Building the pinned Dockerfile through the engine, and reading its failures.

The build log is streamed to a callback as it comes; when the build fails,
the tail of the log is kept and known failures (a locked APT version missing
from the archive, a wheel whose hash differs from the lock) are turned into
one line that names the package.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from relock.errors import BuildError, EngineError

if TYPE_CHECKING:
    from relock.view import Misses

LogSink = Callable[[str], None]
TAIL_LINES = 25

_APT_MISSING = re.compile(r"Version '([^']+)' for '([^']+)' was not found")
_APT_NO_CANDIDATE = re.compile(r"Package '?([^' ]+)'? has no installation candidate")
_APT_UNKNOWN = re.compile(r"E: Unable to locate package (\S+)")
_PIP_NO_VERSION = re.compile(
    r"Could not find a version that satisfies the requirement (\S+) \(from versions: ([^)]*)\)")
# pip writes "name==version from URL (from -r FILE (line N)):", then one
# "Expected sha256 H" line, an "Expected     or H" line per further hash, and "Got H".
_HASH_MISMATCH = re.compile(
    r"^\s*(\S+?)==(\S+) from (\S+)(?: \(from .*\))?:\s*\n"
    r"\s*Expected sha256 (\w+)\s*\n(?:\s*Expected\s+or \w+\s*\n)*\s*Got\s+(\w+)",
    re.MULTILINE,
)


@dataclass
class BuildResult:
    """The image a build made, and the log it wrote."""

    image_id: str
    log: list[str] = field(default_factory=list)


def _quiet(_: str) -> None:
    pass


def build(client: Any, context: Path | BinaryIO, dockerfile: str, *, tag: str | None = None,
          build_args: dict[str, str] | None = None, platform: str | None = None,
          nocache: bool = False, log: LogSink = _quiet, misses: Misses | None = None,
          target: str | None = None) -> BuildResult:
    """Build ``dockerfile`` (in ``context``: a folder or a ready tar) with host networking."""
    from docker.errors import APIError, DockerException
    from requests.exceptions import RequestException
    from urllib3.exceptions import HTTPError

    tail: collections.deque[str] = collections.deque(maxlen=400)
    image_id = ""
    try:
        where: dict[str, Any] = (
            {"path": str(context)} if isinstance(context, Path)
            else {"fileobj": context, "custom_context": True})
        stream = client.api.build(
            **where, dockerfile=dockerfile, tag=tag, buildargs=build_args or {},
            platform=platform, network_mode="host", rm=True, forcerm=True, decode=True,
            nocache=nocache, pull=False, target=target,
        )
        for chunk in stream:
            if "stream" in chunk:
                for line in str(chunk["stream"]).splitlines():
                    tail.append(line)
                    log(line)
            if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            if "error" in chunk:
                text = str(chunk.get("error", "")).strip()
                tail.append(text)
                raise BuildError(explain_failure("\n".join(tail), misses) or
                                 f"the build failed: {text.splitlines()[-1] if text else '?'}",
                                 _tail(tail))
    except APIError as e:
        raise BuildError(f"the engine refused the build: {e.explanation or e}",
                         _tail(tail)) from None
    except (DockerException, RequestException, HTTPError) as e:
        # A connection that breaks while the log streams is not wrapped by the SDK.
        raise EngineError(f"lost the engine during the build: {e}") from None
    if not image_id:
        m = next((re.search(r"Successfully built (\w+)", line) for line in reversed(tail)
                  if "Successfully built" in line), None)
        image_id = m.group(1) if m else ""
    if not image_id:
        raise BuildError("the build ended without an image", _tail(tail))
    return BuildResult(image_id=image_id, log=list(tail))


def _tail(lines: collections.deque[str]) -> str:
    return "\n".join(list(lines)[-TAIL_LINES:])


def explain_failure(log: str, misses: Misses | None = None) -> str | None:
    """One line for a known build failure in ``log``, or None.

    ``misses`` is what the build asked the locked view for and did not get:
    the surest account of a package that is not in the lock.
    """
    if misses is not None and misses.mismatches:
        return f"{misses.mismatches[0]}: the file changed upstream; refusing to install it"
    if misses is not None and misses.upstream:
        return f"the locked view could not reach upstream: {misses.upstream[0]}"
    m = _PIP_NO_VERSION.search(log)
    if m:
        have = m.group(2).strip()
        it_has = f" (it has {have})" if have and have != "none" else ""
        return (f"{m.group(1)} is not in the lock{it_has}; the template or a file it "
                "installs from asks for another version: re-freeze the image built from it")
    if misses is not None and misses.pip:
        names = ", ".join(sorted(misses.pip))
        return (f"Python package {names} is not in the lock; the build asks for what the "
                "frozen image did not have: re-freeze the image built from the current files")
    missing = _APT_MISSING.findall(log)
    if missing:
        listed = ", ".join(f"{name} {version}" for version, name in missing)
        return (f"APT package version not in the lock: {listed}; the template asks for "
                "another version than the frozen image had: re-freeze")
    no_candidate = _APT_NO_CANDIDATE.findall(log) + [
        name.split("=", 1)[0] for name in _APT_UNKNOWN.findall(log)]
    if no_candidate:
        return (f"APT package {', '.join(dict.fromkeys(no_candidate))} is not in the lock; "
                "the build installs what the frozen image did not have: re-freeze")
    mismatches = _HASH_MISMATCH.findall(log)
    if mismatches:
        name, version, _url, want, got = mismatches[0]
        return (f"{name}=={version} does not match the lock (expected sha256 {want[:16]}..., "
                f"got {got[:16]}...): refusing to install it")
    if "THESE PACKAGES DO NOT MATCH THE HASHES" in log:
        return "a downloaded Python package does not match the hashes in the lock"
    m = re.search(r"No matching distribution found for (\S+)", log)
    if m:
        return f"{m.group(1)} is not in the lock; re-freeze"
    return None
