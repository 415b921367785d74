"""relock's exceptions and exit codes.

Every failure a user can cause or fix is a ``RelockError`` whose message says
what went wrong and what to do; the CLI prints it as one line and exits with
its ``exit_code``. Exit codes follow diff(1): 0 ok/same, 1 differs/drift,
2 trouble.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DIFFERS = 1
EXIT_ERROR = 2


class RelockError(Exception):
    """A failure with a message a user can act on."""

    exit_code = EXIT_ERROR


class UsageError(RelockError):
    """A command line asks for what cannot be done (two sources, no lock to name).

    The CLI shows it as it shows click's own usage errors: one line, exit 2.
    """


class LockfileError(RelockError):
    """A lock file is missing, unreadable or not of relock's schema."""


class PlatformMissingError(LockfileError):
    """The lock has no part for the platform asked for."""


class ImagePlatformError(RelockError):
    """An image is not of the platform asked for."""


class OutputError(RelockError):
    """An output file cannot be written (or must not be replaced)."""


class DockerfileError(RelockError):
    """Dockerfile.in is missing or cannot be used."""


class EngineError(RelockError):
    """The container engine cannot be reached or refused a request."""


class ImageNotFoundError(EngineError):
    """The named image is not in the engine."""


class BaseImageError(RelockError):
    """A base image cannot be pinned to a registry digest."""


class FrontendError(BaseImageError):
    """The frontend a template's ``# syntax=`` line names cannot be pinned to a digest."""


class InventoryError(RelockError):
    """An image's files (dpkg database, dist-info, ...) cannot be read."""


class LayerError(InventoryError):
    """An image's layers or config cannot be read: not a tar, over a limit, inconsistent."""


class IndexError_(RelockError):
    """The Python package index cannot answer for a locked distribution."""


class RenderError(RelockError):
    """Dockerfile.in and the lock cannot be turned into a pinned Dockerfile."""


class StaleLockError(RelockError):
    """The lock was made from another Dockerfile.in."""


class BuildError(RelockError):
    """The engine failed to build the pinned Dockerfile."""

    exit_code = EXIT_DIFFERS

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class GitRevisionError(RelockError):
    """A ``REV:PATH`` lock reference cannot be read with git."""


class RegistryError(RelockError):
    """An OCI/Docker registry cannot be reached, refused a request or sent bad bytes."""


class StoreError(RelockError):
    """A content store (an OCI layout, a registry repository, the blob cache) cannot be used."""


class HashMismatchError(RelockError):
    """Bytes fetched for a locked file do not have the sha256 the lock names."""


class ArchiveError(RelockError):
    """An APT archive cannot give a locked ``.deb`` or its index entry."""


class DebNotFoundError(ArchiveError):
    """No source has the locked version of a package."""


class LimitError(RelockError):
    """Input is past one of relock's limits (``relock.bounds``, docs/limits.md): too big,
    too deep, too many pages. The message names the limit and the source."""


def one_line(e: BaseException, limit: int = 160) -> str:
    """The first line of ``e``'s message, clipped: enough for a one-line error."""
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
