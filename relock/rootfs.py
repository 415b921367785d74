"""Read-only views of an image's file tree, without running anything in it.

``LayeredFS`` merges overlay layer folders (the engine's overlay2 ``diff``
folders, top first) the way overlayfs does: whiteouts hide lower files and
opaque folders hide lower folders. A plain folder (a debootstrap tree, an
unpacked image) is the one-layer case. ``TarFS`` serves the same calls from a
flattened tar stream (``docker export``), for engines whose storage cannot be
read directly. Symlinks are resolved inside the image, never on the host.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

_MAX_LINKS = 40


class RootFS(Protocol):
    """What the inventory needs of an image's file tree."""

    def read_bytes(self, path: str) -> bytes | None:
        """The content of the regular file at ``path``, or None."""
        ...

    def listdir(self, path: str) -> list[str] | None:
        """The names in the folder at ``path`` (sorted), or None."""
        ...

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a folder (after symlinks)."""
        ...

    def is_symlink(self, path: str) -> bool:
        """Whether ``path`` itself is a symlink."""
        ...


def _parts(path: str) -> list[str]:
    return [p for p in posixpath.normpath("/" + path).split("/") if p and p != "."]


class LayeredFS:
    """A merged view of overlay layer folders, the top layer first."""

    def __init__(self, layers: Iterable[Path | str]) -> None:
        self.layers = [Path(x) for x in layers]

    # -- one name in the merged tree, without following a final symlink --
    def _lookup(self, parts: list[str]) -> tuple[Path, os.stat_result] | None:
        rel = "/".join(parts)
        for layer in self.layers:
            host = layer / rel if rel else layer
            try:
                st = os.lstat(host)
            except (FileNotFoundError, NotADirectoryError):
                if self._hidden_below(layer, parts):
                    return None
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None  # overlay whiteout: deleted in this layer
            return host, st
        return None

    def _hidden_below(self, layer: Path, parts: list[str]) -> bool:
        """Whether a parent of ``parts`` in ``layer`` hides lower layers."""
        for i in range(len(parts)):
            host = layer.joinpath(*parts[:i]) if i else layer
            if (host / (".wh." + parts[i])).exists():
                return True
            if i and _is_opaque(host):
                return True
        return False

    def _resolve(self, path: str, follow_last: bool = True) -> list[str] | None:
        """Resolve symlinks inside the image; the path as parts, or None."""
        todo = _parts(path)
        done: list[str] = []
        hops = 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if done:
                    done.pop()
                continue
            found = self._lookup([*done, name])
            if found is None:
                return None
            host, st = found
            if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                hops += 1
                if hops > _MAX_LINKS:
                    return None
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                todo = _parts(target) + todo if target.startswith("/") else [
                    *[p for p in target.split("/") if p and p != "."],
                    *todo,
                ]
                continue
            done.append(name)
        return done

    def _stat(self, path: str) -> tuple[Path, os.stat_result] | None:
        parts = self._resolve(path)
        if parts is None:
            return None
        if not parts:
            return self.layers[0], os.stat(self.layers[0])
        return self._lookup(parts)

    def read_bytes(self, path: str) -> bytes | None:
        found = self._stat(path)
        if found is None or not stat.S_ISREG(found[1].st_mode):
            return None
        try:
            return found[0].read_bytes()
        except OSError:
            return None

    def is_dir(self, path: str) -> bool:
        found = self._stat(path)
        return found is not None and stat.S_ISDIR(found[1].st_mode)

    def is_symlink(self, path: str) -> bool:
        parts = self._resolve(posixpath.dirname(path))
        if parts is None:
            return False
        found = self._lookup([*parts, posixpath.basename(path)])
        return found is not None and stat.S_ISLNK(found[1].st_mode)

    def listdir(self, path: str) -> list[str] | None:
        parts = self._resolve(path)
        if parts is None:
            return None
        rel = "/".join(parts)
        names: set[str] = set()
        hidden: set[str] = set()
        seen_dir = False
        for layer in self.layers:
            host = layer / rel if rel else layer
            if self._hidden_below(layer, parts) and not host.exists():
                break
            try:
                st = os.lstat(host)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if not stat.S_ISDIR(st.st_mode):
                if seen_dir:
                    break
                return None
            seen_dir = True
            with os.scandir(host) as it:
                for entry in it:
                    name = entry.name
                    if name.startswith(".wh."):
                        if name != ".wh..wh..opq":
                            hidden.add(name[4:])
                        continue
                    if name in hidden or name in names:
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                        hidden.add(name)  # overlay whiteout
                        continue
                    names.add(name)
            if _is_opaque(host) or (host / ".wh..wh..opq").exists():
                break
        return sorted(names) if seen_dir else None


def _is_opaque(folder: Path) -> bool:
    try:
        return os.getxattr(folder, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class TarFS:
    """The same view over a flattened tar stream of a whole file tree."""

    def __init__(self, stream: Readable, keep: tuple[str, ...] = ()) -> None:
        self._files: dict[str, bytes] = {}
        self._links: dict[str, str] = {}
        self._dirs: dict[str, set[str]] = {"": set()}
        with tarfile.open(fileobj=stream, mode="r|*") as tar:  # type: ignore[call-overload]
            for member in tar:
                parts = _parts(member.name)
                if not parts:
                    continue
                name = "/".join(parts)
                self._add_parents(parts)
                if member.isdir():
                    self._dirs.setdefault(name, set())
                elif member.issym():
                    self._links[name] = member.linkname
                elif member.islnk():
                    target = "/".join(_parts(member.linkname))
                    if target in self._files:
                        self._files[name] = self._files[target]
                elif member.isfile() and (not keep or _wanted(name, keep)):
                    f = tar.extractfile(member)
                    if f is not None:
                        self._files[name] = f.read()

    def _add_parents(self, parts: list[str]) -> None:
        for i in range(len(parts)):
            parent = "/".join(parts[:i])
            self._dirs.setdefault(parent, set()).add(parts[i])

    def _resolve(self, path: str) -> str | None:
        todo = _parts(path)
        done: list[str] = []
        hops = 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if done:
                    done.pop()
                continue
            here = "/".join([*done, name])
            if here in self._links:
                hops += 1
                if hops > _MAX_LINKS:
                    return None
                target = self._links[here]
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p and p != "."] + todo
                continue
            done.append(name)
        return "/".join(done)

    def read_bytes(self, path: str) -> bytes | None:
        key = self._resolve(path)
        return None if key is None else self._files.get(key)

    def listdir(self, path: str) -> list[str] | None:
        key = self._resolve(path)
        if key is None or key not in self._dirs:
            return None
        return sorted(self._dirs[key])

    def is_dir(self, path: str) -> bool:
        key = self._resolve(path)
        return key is not None and key in self._dirs

    def is_symlink(self, path: str) -> bool:
        parent = self._resolve(posixpath.dirname(path))
        if parent is None:
            return False
        return "/".join([*_parts(parent), posixpath.basename(path)]) in self._links


def _wanted(name: str, keep: tuple[str, ...]) -> bool:
    return any(name.startswith(k) or k in name for k in keep)
