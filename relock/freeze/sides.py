"""The sides of a diff: a lock file, a lock at a git revision, or an image.

``load_side`` tells them apart and returns the ``Lock`` each stands for: a
file is read, ``REV:PATH`` is read with ``git show``, and anything else is
an image frozen in memory through an ``ImageSource``. Comparing two sides is
``relock.lock.diff``'s job.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from relock.errors import EngineError, GitRevisionError, ImageNotFoundError, LockfileError
from relock.lock.lockfile import Lock
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.image.engine import ImageSource


@dataclass(frozen=True)
class Side:
    """One side of a diff: a lock and where it came from."""

    label: str
    kind: Literal["file", "git", "image"]
    lock: Lock
    has_bases: bool = True
    warnings: tuple[str, ...] = ()


_REV_PATH = re.compile(r"^(?P<rev>[^:\s]+):(?P<path>[^:\s]+)$")


def load_side(arg: str, *, dockerfile: Path | None = None,
              build_args: dict[str, str] | None = None, cwd: Path | None = None,
              connect: Callable[[], ImageSource] | None = None,
              progress: Progress = quiet) -> Side:
    """Read ``arg`` as a lock file, else a ``REV:PATH`` in git, else an image.

    An image is frozen in memory with ``dockerfile`` for its base pins, or
    without base pins if that file does not exist (``has_bases`` is then
    False). No package index is asked, so an image side has no pip hashes.
    ``connect`` gives the image source (the Docker engine by default).
    """
    from relock.lock.lockfile import read

    where = cwd or Path.cwd()
    path = Path(arg) if cwd is None else cwd / arg
    m = _REV_PATH.match(arg)
    if path.exists() or (m is None and arg.endswith(".lock")):
        # A missing *.lock is a typo, not an image to ask the engine for.
        return Side(arg, "file", read(path))
    if m and _is_commit(m["rev"], where):
        return Side(arg, "git", git_lock(m["rev"], m["path"], where))
    if m and m["path"].endswith(".lock"):
        # Not an image tag in practice: say what is wrong with the revision.
        raise GitRevisionError(
            f"{arg}: {m['rev']!r} is not a known git revision here "
            f"({_git_where(where)}); check `git log` / `git tag`"
        )
    return _image_side(arg, dockerfile, build_args or {}, connect, progress)


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise GitRevisionError("git is not installed; cannot read REV:PATH locks") from None


def _is_commit(rev: str, cwd: Path) -> bool:
    if rev.startswith("-"):
        return False
    try:
        done = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd)
    except GitRevisionError:
        return False
    return done.returncode == 0


def _git_where(cwd: Path) -> str:
    done = _git(["rev-parse", "--show-toplevel"], cwd)
    if done.returncode != 0:
        return f"{cwd} is not in a git repository"
    return f"in {done.stdout.decode().strip()}"


def git_lock(rev: str, path: str, cwd: Path) -> Lock:
    """The lock file at ``path`` as of git revision ``rev`` (path from the repo's top)."""
    from relock.lock.lockfile import loads

    if not _is_commit(rev, cwd):
        raise GitRevisionError(f"{rev}:{path}: unknown git revision {rev!r} ({_git_where(cwd)})")
    done = _git(["show", f"{rev}:{path}"], cwd)
    if done.returncode != 0:
        raise GitRevisionError(
            f"{rev}:{path}: {path!r} is not in revision {rev} (paths are from the "
            "repository's top; use REV:./PATH for one relative to here)"
        )
    try:
        text = done.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise LockfileError(f"{rev}:{path}: not UTF-8 text; is this a lock file?") from None
    return loads(text, f"{rev}:{path}")


def _image_side(ref: str, dockerfile: Path | None, build_args: dict[str, str],
                connect: Callable[[], ImageSource] | None, progress: Progress) -> Side:
    from relock.freeze import freeze as fz
    from relock.template import dockerfile as df

    neither = (f"{ref!r} is neither a lock file, a REV:PATH at a git revision, "
               "nor an image in the engine")
    if connect is None:
        from relock.image import engine

        connect = engine.connect
    try:
        source = connect()
    except EngineError as e:
        raise EngineError(f"{neither}; and the engine cannot be asked: {e}") from None
    try:
        image = source.image(ref)
    except ImageNotFoundError:
        raise ImageNotFoundError(neither) from None
    options = fz.FreezeOptions(index=None)
    if dockerfile is not None and dockerfile.exists():
        parsed = df.load(dockerfile, build_args)
        result = fz.freeze_image(source, ref, parsed, options, progress)
        return Side(ref, "image", result.lock, warnings=result.warnings)
    result = fz.freeze_image(source, image.id, None, options, progress)
    return Side(ref, "image", result.lock, has_bases=False, warnings=result.warnings)
