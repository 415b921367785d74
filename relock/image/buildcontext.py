"""The build context: the user's folder as the engine gets it, plus the rendered Dockerfile.

The rendered Dockerfile never touches the user's folder (where it could
overwrite a template named ``Dockerfile``, or be copied by ``COPY . .``): it is
added to the context tar under a name that ``.dockerignore`` hides from
``COPY``/``ADD``, as ``docker build -f <outside file>`` does. The engine
still reads it, because a Dockerfile is read before the ignore rules apply.
"""

from __future__ import annotations

from collections.abc import Callable
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
