"""The build context: the user's folder as the engine gets it, plus the rendered Dockerfile.

The rendered Dockerfile never touches the user's folder (where it could
overwrite a template named ``Dockerfile``, or be copied by ``COPY . .``): it is
added to the context tar under a name that ``.dockerignore`` hides from
``COPY``/``ADD``, as ``docker build -f <outside file>`` does. The engine
still reads it, because a Dockerfile is read before the ignore rules apply.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from relock.errors import RelockError

DOCKERFILE_NAME = ".relock.Dockerfile"


def ignore_patterns(context: Path) -> list[str]:
    """The patterns of ``context``'s .dockerignore (none if it has none)."""
    path = context / ".dockerignore"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise RelockError(f"{path}: cannot read: {e}") from None
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def pack(context: Path, dockerfile: str, out: BinaryIO,
         pack_context: Callable[[Path, list[str], str, str, BinaryIO], None]) -> str:
    """Write ``context`` as a tar to ``out`` with ``dockerfile`` inside; its name there.

    ``pack_context`` writes the tar (the engine's: ``relock.image.engine.pack_context``)."""
    if not context.is_dir():
        raise RelockError(f"{context}: the build context is not a folder")
    # Without a .dockerignore of the user's, ours hides itself and the
    # Dockerfile. With one, ours is theirs plus one line: if theirs does not
    # hide itself, a `COPY . .` copies it with that line (as `docker build -f`
    # from outside the context would).
    patterns = ignore_patterns(context)
    try:
        pack_context(context, patterns, DOCKERFILE_NAME, dockerfile, out)
    except OSError as e:
        raise RelockError(f"cannot pack the build context {context}: {e}") from None
    return DOCKERFILE_NAME


def normalized_copy(context: Path, paths: Iterable[str], dest: Path, epoch: int) -> int:
    """Copy ``paths`` (relative, as ``.dockerignore`` leaves them) of ``context`` into the
    empty folder ``dest`` as a reproducible build takes them; the number of files copied.

    A checkout's file times are the moment it was made, and its modes the umask of who
    made it: a ``COPY`` puts both in the image, where ``rewrite-timestamp`` lowers only
    the times later than SOURCE_DATE_EPOCH. In the copy every time is ``epoch`` and no
    mode has group or other write; links are copied as links (never followed), folders
    made, anything else (sockets, devices, pipes) left out as ``git`` would.
    """
    made: list[Path] = []
    files = 0
    try:
        for rel in sorted(paths):
            src, out = context / rel, dest / rel
            st = os.lstat(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            mode = stat.S_IMODE(st.st_mode) & ~0o022
            if stat.S_ISDIR(st.st_mode):
                out.mkdir(exist_ok=True)
                os.chmod(out, mode)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), out)
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as r, open(out, "xb") as w:
                    shutil.copyfileobj(r, w, 1 << 20)
                os.chmod(out, mode)
                files += 1
            else:
                continue
            made.append(out)
        # Deepest first: setting a file's time leaves its folder's alone.
        for path in sorted(made, key=lambda p: len(p.parts), reverse=True):
            os.utime(path, (epoch, epoch), follow_symlinks=False)
        os.utime(dest, (epoch, epoch))
    except OSError as e:
        raise RelockError(f"cannot copy the build context {context} for a reproducible "
                          f"build: {e}") from None
    return files
