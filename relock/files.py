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
from typing import BinaryIO

from relock.errors import OutputError

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


# Set when the process is told to stop (the CLI's SIGTERM handler): a long
# write (a blob into a store or the cache) gives up at its next chunk and
# removes its temp file, whichever thread runs it.
STOPPING = threading.Event()


class Stopped(OSError):
    """A write gave up because the process is stopping (``STOPPING``)."""


def check_stopping(where: str) -> None:
    """Raise ``Stopped`` if the process is stopping."""
    if STOPPING.is_set():
        raise Stopped(errno.EINTR, "stopped by a signal; nothing partial was kept", where)


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


# -- folders handed to relock (a store): nothing below their root is followed ------

class NotInsideError(OSError):
    """An entry below a folder's root is a symbolic link, or not the kind it should be."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Tree:
    """A folder whose entries are reached without following a symbolic link.

    ``root`` itself is the user's to name (a link there is followed once, when
    it is opened); below it every folder is opened with ``O_NOFOLLOW`` relative
    to the one above (``openat``), and every file must be a regular file: a
    link, a device or a FIFO is refused (``NotInsideError``, naming the path)
    and never read, written or replaced through. Paths are tuples of names.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def show(self, parts: tuple[str, ...]) -> str:
        return str(self.root.joinpath(*parts))

    def _refuse(self, parts: tuple[str, ...], dir_fd: int, want: str) -> NotInsideError:
        try:
            mode = os.lstat(parts[-1], dir_fd=dir_fd).st_mode
        except OSError:
            mode = 0
        what = "a symbolic link" if stat.S_ISLNK(mode) else f"not a {want}"
        return NotInsideError(errno.ELOOP if stat.S_ISLNK(mode) else errno.EINVAL,
                              f"is {what}; refused (nothing in it is followed out of it)",
                              self.show(parts))

    @contextlib.contextmanager
    def folder(self, parts: tuple[str, ...] = (), *, create: bool = False) -> Iterator[int]:
        """A descriptor of the real folder ``parts`` (made, with those above it, if
        ``create``), closed after the block."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for i, name in enumerate(parts):
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o755, dir_fd=fd)
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise self._refuse(parts[:i + 1], fd, "folder") from None
                    e.filename = self.show(parts[:i + 1])
                    raise
                os.close(fd)
                fd = sub
            yield fd
        finally:
            os.close(fd)

    def kind(self, parts: tuple[str, ...]) -> str:
        """"file" (a regular file) or "missing"; anything else there is refused."""
        try:
            with self.folder(parts[:-1]) as fd:
                try:
                    mode = os.lstat(parts[-1], dir_fd=fd).st_mode
                except FileNotFoundError:
                    return "missing"
                if not stat.S_ISREG(mode):
                    raise self._refuse(parts, fd, "regular file")
                return "file"
        except FileNotFoundError:
            return "missing"

    def open(self, parts: tuple[str, ...]) -> BinaryIO:
        """The regular file ``parts``, open for reading."""
        with self.folder(parts[:-1]) as dir_fd:
            try:
                before = os.lstat(parts[-1], dir_fd=dir_fd)
            except FileNotFoundError as e:
                e.filename = self.show(parts)
                raise
            if not stat.S_ISREG(before.st_mode):  # a device is never even opened
                raise self._refuse(parts, dir_fd, "regular file")
            try:
                fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                             | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise self._refuse(parts, dir_fd, "regular file") from None
                e.filename = self.show(parts)
                raise
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (
                before.st_dev, before.st_ino):
            os.close(fd)
            raise NotInsideError(errno.EINVAL, "changed while it was opened; refused",
                                 self.show(parts))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def read(self, parts: tuple[str, ...], limit: int) -> bytes:
        """The bytes of the regular file ``parts``, at most ``limit`` of them."""
        with self.open(parts) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise TooBigError(errno.EFBIG, f"bigger than {limit} bytes", self.show(parts))
        return data

    def temp(self, folder: tuple[str, ...], prefix: str) -> tuple[BinaryIO, str]:
        """A new file in the real folder ``folder`` (made if absent), open for writing:
        (the file, its name there). O_EXCL: never a file or link already there."""
        with self.folder(folder, create=True) as dir_fd:
            for _ in range(100):
                name = f"{prefix}{os.urandom(6).hex()}.tmp"
                try:
                    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
                except FileExistsError:
                    continue
                return os.fdopen(fd, "wb"), name
        raise FileExistsError(errno.EEXIST, "no unused temporary name", self.show(folder))

    def unlink(self, parts: tuple[str, ...]) -> None:
        """Remove the entry ``parts`` (a link itself, never what it names), if it is there."""
        try:
            with self.folder(parts[:-1]) as fd:
                os.unlink(parts[-1], dir_fd=fd)
        except FileNotFoundError:
            pass

    def replace(self, src: tuple[str, ...], dst: tuple[str, ...]) -> None:
        """Rename ``src`` over ``dst`` (both below real folders), then fsync ``dst``'s folder.

        What was at ``dst`` must be a regular file or nothing: a link there is
        refused, not replaced silently.
        """
        self.kind(dst)
        with self.folder(src[:-1]) as a, self.folder(dst[:-1]) as b:
            os.replace(src[-1], dst[-1], src_dir_fd=a, dst_dir_fd=b)
            os.fsync(b)

    def write_atomic(self, parts: tuple[str, ...], data: bytes, temp_in: tuple[str, ...]
                     ) -> None:
        """Write ``parts`` whole: a temp file in ``temp_in``, fsynced, renamed over it;
        signals held (see ``signals_held``) so that no temp file is left behind."""
        self.kind(parts)  # a link or a device there is refused before anything is made
        with signals_held():
            f, name = self.temp(temp_in, f".{parts[-1]}.")
            try:
                with f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                self.replace((*temp_in, name), parts)
            except BaseException:
                self.unlink((*temp_in, name))
                raise
