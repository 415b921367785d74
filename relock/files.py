"""Reading and writing the user's files safely.

Input: only a regular file of bounded size is read (``/dev/zero``, a FIFO or
a folder given as a lock or template is refused, never read forever).
Output: a temp file beside the target, then a rename; a device node or
other non-regular file at the target is refused, never replaced; SIGTERM,
SIGINT and SIGHUP wait until the rename or clean-up is done, so no temp file
is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from relock.errors import OutputError

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class NotRegularFileError(OSError):
    """The path names a device, FIFO, socket or folder."""


class TooBigError(OSError):
    """The file is bigger than the caller allows."""


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises ``OSError`` (``FileNotFoundError``, ``NotRegularFileError``,
    ``TooBigError``, ...) with ``strerror`` set, for the caller to word.
    """
    # O_NONBLOCK: opening a FIFO must not wait for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(errno.EINVAL, "not a regular file", str(path))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TooBigError(errno.EFBIG, f"bigger than {limit} bytes", str(path))
    return data


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold back SIGTERM, SIGINT and SIGHUP in this block; they arrive after it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals go to the main thread anyway
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def writable_target(path: Path) -> Path:
    """The file a write to ``path`` replaces: ``path``, or where its symlink points.

    A device node, FIFO, socket or folder there is refused, never replaced.
    """
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as e:
        raise OutputError(f"{path}: cannot write here: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise OutputError(f"{path}: exists and is not a regular file; not replacing it")
    return target


def _create_beside(folder: Path, name: str) -> tuple[int, str]:
    """A new file ``.NAME.RANDOM.tmp`` in ``folder``, open for writing, as
    ``tempfile.mkstemp`` makes one (O_EXCL: never a file or link already there;
    a random name), without that module's imports on every freeze."""
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(folder))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename it over ``path``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``.

    Raises ``OutputError`` (the old file is kept, no temp file is left).
    """
    target = writable_target(path)
    folder = target.parent if str(target.parent) else Path(".")
    with signals_held():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = _create_beside(folder, target.name)
        except OSError as e:
            raise OutputError(f"{path}: cannot write here: {e.strerror or e}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise OutputError(
                f"{path}: cannot write: {e.strerror or e}; the old file is kept"
            ) from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def cache_home() -> Path:
    """Where relock keeps its caches: ``$XDG_CACHE_HOME/relock`` (``~/.cache/relock``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "relock"


def write_cache(path: Path, text: str) -> None:
    """Write one cache file whole (a temp file beside it, then a rename), from any thread.

    A cache that cannot be written only costs time: errors are let go.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        pass
