"""Building the pinned Dockerfile through the engine, and reading its failures.

The build log is streamed to a callback as it comes; when the build fails,
the tail of the log is kept and known failures (a locked APT version missing
from the archive, a wheel whose hash differs from the lock) are turned into
one line that names the package.
"""

from __future__ import annotations

import collections
import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from relock.errors import BuildError
from relock.image.engine import BuildEvent, BuildRequest, ImageBuilder
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.build.view import Misses

TAIL_LINES = 25
# A build step may be silent for long (a compiler, a big download): its log
# stream has no deadline, but every this many seconds of silence are said.
SILENCE = 300.0

# Patterns, not compiled regexes: they are needed only when a build fails.
_APT_MISSING = r"Version '([^']+)' for '([^']+)' was not found"
_APT_NO_CANDIDATE = r"Package '?([^' ]+)'? has no installation candidate"
_APT_UNKNOWN = r"E: Unable to locate package (\S+)"
_PIP_NO_VERSION = (
    r"Could not find a version that satisfies the requirement (\S+) \(from versions: ([^)]*)\)")
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
    # (config, manifest) digests, where the builder wrote the image itself (reproducible).
    digest: tuple[str, str] | None = None


def build(builder: ImageBuilder, context: Path | IO[bytes], dockerfile: str | None, *,
          dockerfile_text: str | None = None,
          tag: str | None = None, build_args: Mapping[str, str] | None = None,
          platform: str | None = None, nocache: bool = False, log: Progress = quiet,
          misses: Misses | None = None, network_mode: str = "host",
          extra_hosts: Mapping[str, str] | None = None, target: str | None = None,
          pull: bool = False, progress: Progress = quiet,
          silence: float = SILENCE, source_date_epoch: int | None = None) -> BuildResult:
    """Build ``dockerfile`` (a path inside ``context``) with host networking.

    ``context`` is a folder, or a file object of a ready tar of the context
    (which must hold ``dockerfile``); with ``dockerfile_text`` (and a folder) the
    Dockerfile is that text, which the context never holds. ``progress`` hears of every ``silence``
    seconds the engine says nothing.
    """
    request = BuildRequest(
        dockerfile=dockerfile or "Dockerfile", dockerfile_text=dockerfile_text,
        context=context if isinstance(context, Path) else None,
        context_tar=None if isinstance(context, Path) else context,
        tag=tag, build_args=dict(build_args or {}), platform=platform, nocache=nocache,
        network_mode=network_mode, extra_hosts=dict(extra_hosts or {}), target=target,
        pull=pull, source_date_epoch=source_date_epoch,
    )
    tail: collections.deque[str] = collections.deque(maxlen=400)
    digest: list[tuple[str, str]] = []
    with _silence_said(progress, silence, tail) as heard:
        image_id = _follow(builder.build(request), tail, log, misses, heard, digest)
    if not image_id:
        m = next((re.search(r"Successfully built (\w+)", line) for line in reversed(tail)
                  if "Successfully built" in line), None)
        image_id = m.group(1) if m else ""
    if not image_id:
        raise BuildError("the build ended without an image", _tail(tail))
    return BuildResult(image_id=image_id, log=list(tail), digest=digest[-1] if digest else None)


def _follow(events: Iterator[BuildEvent], tail: collections.deque[str], log: Progress,
            misses: Misses | None, heard: Callable[[], None],
            digest: list[tuple[str, str]]) -> str:
    """The image ID the build stream names; a failure it reports raises BuildError."""
    image_id = ""
    for event in events:
        heard()
        if event.kind == "log":
            text = _user_step(event.text) if event.text.startswith("#") else event.text
            tail.append(text)
            log(text)
        elif event.kind == "image":
            image_id = event.text
        elif event.kind == "digest":
            config, _, manifest = event.text.partition(" ")
            digest.append((config, manifest))
        elif event.kind == "error":
            text = event.text.strip()
            tail.append(text)
            last = _user_step(text.splitlines()[-1]) if text else "?"
            raise BuildError(explain_failure("\n".join(tail), misses) or
                             f"the build failed: {last}", _tail(tail))
        else:
            raise BuildError(f"the engine refused the build: {event.text}", _tail(tail))
    return image_id


def _user_step(step: str) -> str:
    """``Step 3/11 : RUN <the template's command>`` (the classic builder) or ``[2/5] RUN
    <the template's command>`` (BuildKit): relock's view prefix left out."""
    from relock.template.render import template_command

    for mark in (" : RUN ", "] RUN "):
        head, sep, rest = step.partition(mark)
        if sep:
            return f"{head}{sep}{template_command(rest)}"
    return step


@contextlib.contextmanager
def _silence_said(progress: Progress, every: float,
                  tail: collections.deque[str]) -> Iterator[Callable[[], None]]:
    """A ``heard()`` to call on each event; a thread says each ``every`` s of silence."""
    last = [time.monotonic()]
    stop = threading.Event()

    def heard() -> None:
        last[0] = time.monotonic()

    def watch() -> None:
        said = 0
        while not stop.wait(min(every, 5.0) / 5):
            quiet_for = time.monotonic() - last[0]
            if quiet_for < every:
                said = 0
            elif quiet_for >= every * (said + 1):
                said += 1
                step = _user_step(next((line.strip() for line in reversed(tail)
                                        if line.lstrip().startswith(("Step ", "#"))), ""))
                at = f" (at {step[:100]})" if step else ""
                progress(f"the engine has said nothing of the build for {quiet_for:.0f} s"
                         f"{at}; still waiting (a build has no deadline; Ctrl-C stops it)")

    thread = threading.Thread(target=watch, name="relock-build-silence", daemon=True)
    thread.start()
    try:
        yield heard
    finally:
        stop.set()
        thread.join(timeout=5)


def _tail(lines: collections.deque[str]) -> str:
    return "\n".join(list(lines)[-TAIL_LINES:])


# pip failing to install an sdist's build requirements into its isolated environment.
_PIP_BUILD_DEPS = (r"Installing build dependencies(?:: finished with status 'error'| \.\.\. error)"
                   r"|install build dependencies did not run successfully")
# What pip was building: the last archive or folder it collected before that.
_PIP_BUILDING = r"(?:Downloading|Using cached|Processing|Obtaining) (?:\S*/)?([^/\s]+)"


def _build_requirement(requirement: str, before: str) -> str:
    found = re.findall(_PIP_BUILDING, before)
    what = found[-1] if found else "a package"
    return (f"{requirement} is not in the lock: pip needs it to build {what} from source, "
            "and it is not among the lock's build requirements (freeze locks the "
            "[build-system] requires of the project's own package, found in the build "
            "context by its name, and of each version the index has as an sdist only; what "
            "a backend asks for while it builds is not seen): re-freeze with --context set "
            f"to the build context if {what} is the project's own, else list "
            f"'{requirement}' in its [build-system] requires and re-freeze, or install "
            f"{what} from a wheel")


def _last_step(log: str) -> str:
    """The RUN step the log names last, as the template has it ("" when none)."""
    for line in reversed(log.splitlines()):
        step = _user_step(line.strip())
        if re.match(r"(Step \d+/\d+ : |#\d+ \[[^\]]*\] )RUN ", step):
            return re.sub(r"^#\d+ ", "", step)[:160]
    return ""


def _foreign(url: str, step: str) -> str:
    """The line for a URL the view does not serve, asked for by ``step``."""
    from relock.build.view import dist_name

    where = f" (asked for by {step})" if step else ""
    name = dist_name(url.rsplit("/", 1)[-1].split("?", 1)[0])
    if name is not None:
        help = ("a file of a package the lock holds in another version or build, or of one "
                "it lacks: the template or a tool's lock it installs from (uv.lock, "
                "Pipfile.lock, poetry.lock, a requirements file) names other files than the "
                "frozen image had; re-freeze the image built from the current files")
    else:
        help = ("relock locks APT and Python packages, not plain downloads (curl, wget, "
                "ADD of a URL): put the file in the build context and COPY it, or install it "
                "from a package")
    return f"{url} is not in the lock{where}: the locked view serves only the lock's files; {help}"


def explain_failure(log: str, misses: Misses | None = None) -> str | None:
    """One line for a known build failure in ``log``, or None.

    ``misses`` is what the build asked the locked view for and did not get:
    the surest account of a package that is not in the lock.
    """
    if misses is not None and misses.mismatches:
        return f"{misses.mismatches[0]}: the file changed upstream; refusing to install it"
    if misses is not None and misses.upstream:
        return f"the locked view could not reach upstream: {misses.upstream[0]}"
    if misses is not None and misses.foreign:
        return _foreign(misses.foreign[0], _last_step(log))
    if misses is not None and misses.untrusted:
        return (f"{_last_step(log) or 'a step'} did not trust the locked view's certificate "
                f"for {misses.untrusted[0]}: every RUN trusts it through SSL_CERT_FILE, "
                "PIP_CERT, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, which the step's tool does "
                "not read or the step sets itself (or the image lacks /usr/lib/apt/apt-helper,"
                " which fetches the certificate); let the tool take its authorities from "
                "those variables")
    build_deps = re.search(_PIP_BUILD_DEPS, log)
    m = re.search(_PIP_NO_VERSION, log)
    if m and build_deps:
        return _build_requirement(m.group(1), log[:build_deps.start()])
    if m:
        have = m.group(2).strip()
        if have and have != "none":
            return (f"{m.group(1)} is not in the lock (it has {have}); the template or a "
                    "file it installs from asks for another version: re-freeze the image "
                    "built from it")
        return (f"{m.group(1)} is not in the lock: the frozen image did not have it "
                "installed; re-freeze the image built from the current files (a package "
                "the build removes again is not seen by a freeze: keep it installed)")
    if misses is not None and misses.pip and build_deps:
        return _build_requirement(", ".join(sorted(misses.pip)), log[:build_deps.start()])
    if misses is not None and misses.pip:
        names = ", ".join(sorted(misses.pip))
        return (f"Python package {names} is not in the lock; the build asks for what the "
                "frozen image did not have: re-freeze the image built from the current files")
    missing = re.findall(_APT_MISSING, log)
    if missing:
        listed = ", ".join(f"{name} {version}" for version, name in missing)
        return (f"APT package version not in the lock: {listed}; the template asks for "
                "another version than the frozen image had: re-freeze")
    no_candidate = re.findall(_APT_NO_CANDIDATE, log) + [
        name.split("=", 1)[0] for name in re.findall(_APT_UNKNOWN, log)]
    if no_candidate:
        return (f"APT package {', '.join(dict.fromkeys(no_candidate))} is not in the lock; "
                "the build installs what the frozen image did not have: re-freeze")
    mismatches = re.findall(_HASH_MISMATCH, log)
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
