"""An in-memory ``ImageSource`` for unit tests of logic (never evidence that a feature works).

Images are ``ImageInfo`` values registered under names (tags); a digest
reference ``repo@sha256:...`` finds the image whose ``repo_digests`` has it;
an ID finds the image with that ID. ``pullable`` holds what ``pull`` can
fetch, as a registry would. Files of an image are a ``{path: bytes}`` dict.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator, Mapping

from relock.engine import BuildEvent, BuildRequest, ImageInfo
from relock.errors import EngineError, ImageNotFoundError
from relock.reference import normalize_repo, parse
from relock.rootfs import RootFS


def layers(*names: str) -> tuple[str, ...]:
    """Layer diff IDs from short names: ``layers("a", "b")``."""
    return tuple(f"sha256:{n * (64 // len(n))}"[:71] for n in names)


def digest(name: str) -> str:
    return f"sha256:{(name * 64)[:64]}"


class MemFS:
    """A ``RootFS`` over a dict of file paths to their bytes (no symlinks)."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = {"/" + p.strip("/"): data for p, data in files.items()}
        self.dirs: dict[str, set[str]] = {"/": set()}
        for path in self.files:
            parts = path.strip("/").split("/")
            for i in range(len(parts)):
                parent = "/" + "/".join(parts[:i])
                self.dirs.setdefault(parent, set()).add(parts[i])

    def _norm(self, path: str) -> str:
        return posixpath.normpath("/" + path.lstrip("/"))

    def read_bytes(self, path: str) -> bytes | None:
        return self.files.get(self._norm(path))

    def listdir(self, path: str) -> list[str] | None:
        names = self.dirs.get(self._norm(path))
        return None if names is None else sorted(names)

    def is_dir(self, path: str) -> bool:
        return self._norm(path) in self.dirs

    def is_symlink(self, path: str) -> bool:
        return False

    def subdirs(self, path: str) -> list[str] | None:
        folder = self._norm(path)
        names = self.dirs.get(folder)
        if names is None:
            return None
        return sorted(n for n in names if posixpath.join(folder, n) in self.dirs)


class FakeSource:
    """Images in memory, found by tag, digest reference or ID."""

    def __init__(self) -> None:
        self.tags: dict[str, ImageInfo] = {}
        self.held: dict[str, ImageInfo] = {}
        self.pullable: dict[str, ImageInfo] = {}
        self.files: dict[str, Mapping[str, bytes]] = {}
        self.pulled: list[str] = []

    def add(self, image: ImageInfo, *tags: str, files: Mapping[str, bytes] | None = None
            ) -> ImageInfo:
        """Hold ``image`` under ``tags`` (which move to it if another image had them)."""
        self.held[image.id] = image
        for tag in tags:
            self.tags[tag] = image
        if files is not None:
            self.files[image.id] = files
        return image

    def image(self, ref: str) -> ImageInfo:
        if ref in self.held:
            return self.held[ref]
        if ref in self.tags:
            return self.tags[ref]
        parsed = parse(ref)
        if parsed.digest:
            for img in self.held.values():
                if parsed.digest in img.digests_for(ref):
                    return img
        raise ImageNotFoundError(f"image {ref!r} not found in the engine; build or pull it first")

    def images(self) -> list[ImageInfo]:
        return list(self.held.values())

    def pull(self, ref: str) -> ImageInfo:
        found = self.pullable.get(ref)
        if found is None:
            raise EngineError(f"cannot pull {ref}: manifest unknown")
        self.pulled.append(ref)
        return self.add(found)

    @contextlib.contextmanager
    def open_rootfs(self, image: ImageInfo) -> Iterator[RootFS]:
        yield MemFS(self.files.get(image.id, {}))


def repo_digest(ref: str, digest_: str) -> str:
    """A ``RepoDigests`` entry the way the engine writes it."""
    return f"{normalize_repo(ref)}@{digest_}"


class FakeBuilder:
    """An ``ImageBuilder`` that replays ``events`` and keeps the requests it got."""

    def __init__(self, *events: BuildEvent) -> None:
        self.events = events
        self.requests: list[BuildRequest] = []

    def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
        self.requests.append(request)
        yield from self.events
