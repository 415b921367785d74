"""The sides of a diff: a lock file, a lock at a git revision, an image, or a pylock.

``load_side`` tells them apart and returns the ``Lock`` each stands for: a
file is read, ``REV:PATH`` is read with ``git show``, and anything else is
an image frozen in memory through an ``ImageSource``. A PEP 751
``pylock.toml`` (``pylock.NAME.toml``) is read by ``relock.lock.pythonlock``
and stands for one Python environment: ``pair_python`` picks the platform
and environment of the other side it is compared with. Comparing two sides
is ``relock.lock.diff``'s job.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from relock.errors import (
    EngineError,
    GitRevisionError,
    ImageNotFoundError,
    LockfileError,
    UsageError,
)
from relock.lock.lockfile import Lock, PythonEnv
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.image.engine import ImageSource
    from relock.lock.pythonlock import PythonLock


@dataclass(frozen=True)
class Side:
    """One side of a diff: a lock and where it came from."""

    label: str
    kind: Literal["file", "git", "image", "pylock"]
    lock: Lock
    has_bases: bool = True
    warnings: tuple[str, ...] = ()
    python: PythonLock | None = None  # a pylock side: what the file pins


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
    if path.exists() and path.name == "uv.lock":
        raise UsageError(f"{arg}: uv.lock is a universal lock (every platform, every "
                         "group): relock diff compares a pylock.toml (uv export --format "
                         "pylock.toml writes one); relock freeze compares uv.lock with the "
                         "image")
    if path.exists() and _is_pylock(path):
        return pylock_side(arg, path)
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


# -- a pylock side ------------------------------------------------------------------

def _is_pylock(path: Path) -> bool:
    from relock.lock.pythonlock import is_pylock_name

    return is_pylock_name(path.name)


def pylock_side(label: str, path: Path) -> Side:
    """A ``pylock.toml`` as a side; its lock is made by ``pair_python``."""
    from relock.lock import pythonlock
    from relock.lock.lockfile import Distro, Input

    plock = pythonlock.read(path)
    empty = Lock(input=Input(str(path), ""), distro=Distro("", "", ""),
                 platform=plock.platform or "linux/amd64")
    return Side(label, "pylock", empty, has_bases=False, python=plock)


def pair_python(a: Side, b: Side, *, env: str | None = None,
                platforms: Sequence[str] = ()) -> tuple[Side, Side]:
    """Two sides, one or both a pylock, made comparable: a lock side narrowed to one
    platform's final image and one Python environment, a pylock side holding what it
    pins for that environment (its markers judged for that Python and platform).

    The platform: ``platforms``' one, else the pylock's ``[tool.relock] platform`` if
    the lock holds it, else the lock's only one. The environment: ``env``, else the
    pylock's ``[tool.relock] env`` if the lock has it, else the lock's only one.
    """
    if len(platforms) > 1:
        raise UsageError("a pylock.toml is of one platform: give at most one --platform")
    locks = [s for s in (a, b) if s.python is None]
    pylocks = [s.python for s in (a, b) if s.python is not None]
    if not locks:  # two pylocks: each as it is, for the environment they name
        plat = platforms[0] if platforms else (pylocks[0].platform or pylocks[1].platform)
        envs = PythonEnv(env or pylocks[0].env or pylocks[1].env or "/", "", "")
        return _pylock_part(a, envs, plat), _pylock_part(b, envs, plat)
    other = locks[0]
    plat = _platform(other, pylocks[0], platforms)
    part = other.lock.for_platform(plat).final()
    chosen = _environment(other, part, pylocks[0], env)
    narrowed = Side(other.label, other.kind, dataclasses.replace(
        part, python=(chosen,), pip=tuple(d for d in part.pip if d.env == chosen.prefix)),
        has_bases=False)
    first, second = (narrowed if s is other else _pylock_part(s, chosen, part.platform, part)
                     for s in (a, b))
    return first, second


def _platform(side: Side, plock: PythonLock, platforms: Sequence[str]) -> str:
    have = side.lock.all_platforms
    if platforms:
        return platforms[0]
    if plock.platform in have:
        return plock.platform
    if len(have) == 1:
        return have[0]
    raise UsageError(f"{side.label} holds {', '.join(have)}: give --platform to say which "
                     f"one {plock.where} is for")


def _environment(side: Side, part: Lock, plock: PythonLock, env: str | None) -> PythonEnv:
    envs = {e.prefix: e for e in part.python}
    if env is not None:
        if env not in envs:
            raise UsageError(f"{side.label} has no Python environment {env} in its final "
                             f"image{_having(envs)}")
        return envs[env]
    if plock.env in envs:
        return envs[plock.env]
    if len(envs) == 1:
        return next(iter(envs.values()))
    if not envs:
        raise UsageError(f"{side.label} has no Python environment in its final image to "
                         f"compare {plock.where} with")
    raise UsageError(f"{side.label} has several Python environments{_having(envs)}: give "
                     f"--env to say which one {plock.where} is for")


def _having(envs: Mapping[str, object]) -> str:
    return f" (it has {', '.join(envs)})" if envs else ""


def _pylock_part(side: Side, env: PythonEnv, platform: str, like: Lock | None = None) -> Side:
    """The lock a pylock side stands for, in ``env`` on ``platform``."""
    from relock.lock.lockfile import PipPackage
    from relock.lock.pythonlock import by_name, for_environment

    assert side.python is not None
    plock = side.python
    pinned, excluded = for_environment(plock, env.python, platform)
    warnings = [f"{plock.where}: {why}, and {env.prefix} has Python {env.python}"
                for why in excluded]
    pip = []
    for name, options in sorted(by_name(pinned).items()):
        if len(options) > 1:
            warnings.append(f"{plock.where}: {name} is listed {len(options)} times for "
                            f"{env.prefix} (markers relock cannot judge here); not compared")
            continue
        (p,) = options
        if not p.version:
            warnings.append(f"{plock.where}: {name} ({p.source}) names no version; not "
                            "compared")
            continue
        pip.append(PipPackage(name, p.version, env.prefix,
                              hashes=tuple(f"sha256:{h}" for h in p.sha256)))
    base = like if like is not None else side.lock
    lock = dataclasses.replace(base, platform=platform or base.platform, platforms=(),
                               base=(), apt=(), apt_sources=(), python=(env,), pip=tuple(pip),
                               image=())
    return dataclasses.replace(side, lock=lock, warnings=tuple(warnings))
