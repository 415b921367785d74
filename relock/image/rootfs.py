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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from relock import bounds

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

    def subdirs(self, path: str) -> list[str] | None:
        """The names of the real folders (not symlinks) in ``path`` (sorted), or None."""
        ...


def _parts(path: str) -> list[str]:
    return [p for p in posixpath.normpath("/" + path).split("/") if p and p != "."]


def resolve(path: str, link_of: Callable[[tuple[str, ...]], str | None]) -> tuple[str, ...] | None:
    """Resolve ``path`` inside an image, one component at a time.

    ``link_of(parts)`` says what stands at ``parts``: None when nothing does,
    "" for a file or folder, the target for a symlink. Absolute targets start
    again at the image's root and ``..`` stops there, as in a chroot.
    """
    walked = _walk(_parts(path), link_of, [], 0)
    return None if walked is None else walked[0]


def _walk(todo: list[str], link_of: Callable[[tuple[str, ...]], str | None], done: list[str],
          hops: int) -> tuple[tuple[str, ...], int] | None:
    """``resolve``'s loop from a state (``done`` so far after ``hops`` links): the
    parts reached and the links taken, so that a walk can go on from there."""
    while todo:
        name = todo.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        target = link_of((*done, name))
        if target is None:
            return None
        if not target:
            done.append(name)
            continue
        hops += 1
        if hops > _MAX_LINKS:
            return None
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p and p != "."] + todo
    return tuple(done), hops


class LayeredFS:
    """A merged view of overlay layer folders, the top layer first.

    Folders are merged once, on first use, and remembered: each name maps to
    the top layer that has it, the kind of file it is there, and the layer
    below which it does not reach (a whiteout or an opaque folder stops it).
    """

    def __init__(self, layers: Iterable[Path | str]) -> None:
        self.layers = [os.fspath(x) for x in layers]
        # folder parts -> {name: (top layer, stop layer, kind)}
        self._dirs: dict[tuple[str, ...], dict[str, tuple[int, int, str]] | None] = {}
        # folder parts as written -> where resolving them ends, and after how
        # many links: files of one folder resolve it once.
        self._heads: dict[tuple[str, ...], tuple[tuple[str, ...], int] | None] = {}

    def _host(self, layer: int, parts: tuple[str, ...]) -> str:
        # Parts are single names (never "", "/", "." or ".."): joining is concatenating.
        return "/".join((self.layers[layer], *parts))

    def _merge(self, parts: tuple[str, ...], top: int,
               stop: int) -> dict[str, tuple[int, int, str]]:
        found: dict[str, tuple[int, int, str]] = {}
        ends: dict[str, int] = {}  # names hidden from this layer down
        for layer in range(top, stop):
            host = self._host(layer, parts)
            try:
                entries = list(os.scandir(host))
            except FileNotFoundError:
                continue
            except NotADirectoryError:
                break  # a file here: the folder above replaced it and all below
            opaque = False
            for entry in entries:
                name = entry.name
                if name == ".wh..wh..opq":
                    opaque = True
                    continue
                if name.startswith(".wh."):
                    ends.setdefault(name[4:], layer)
                    continue
                kind = _kind(entry)
                if kind == "whiteout":
                    ends.setdefault(name, layer)
                    continue
                if name in found or name in ends:
                    continue
                found[name] = (layer, stop, kind)
            if opaque or _is_opaque(host):
                for name in found:
                    ends.setdefault(name, layer + 1)
                break
        return {name: (t, min(s, ends.get(name, s)), k) for name, (t, s, k) in found.items()}

    def _dir(self, parts: tuple[str, ...]) -> dict[str, tuple[int, int, str]] | None:
        if parts in self._dirs:
            return self._dirs[parts]
        if not parts:
            merged: dict[str, tuple[int, int, str]] | None = self._merge((), 0, len(self.layers))
        else:
            parent = self._dir(parts[:-1])
            entry = parent.get(parts[-1]) if parent is not None else None
            merged = None
            if entry is not None and entry[2] == "dir":
                merged = self._merge(parts, entry[0], entry[1])
        self._dirs[parts] = merged
        return merged

    def _entry(self, parts: tuple[str, ...]) -> tuple[int, int, str] | None:
        if not parts:
            return (0, len(self.layers), "dir")
        folder = self._dir(parts[:-1])
        return folder.get(parts[-1]) if folder is not None else None

    def _link_of(self, parts: tuple[str, ...]) -> str | None:
        entry = self._entry(parts)
        if entry is None:
            return None
        return os.readlink(self._host(entry[0], parts)) if entry[2] == "link" else ""

    def _resolve(self, path: str) -> tuple[str, ...] | None:
        parts = _parts(path)
        if not parts:
            return ()
        head = tuple(parts[:-1])
        if head in self._heads:
            state = self._heads[head]
        else:
            state = self._heads[head] = _walk(list(head), self._link_of, [], 0)
        if state is None:
            return None
        walked = _walk(parts[-1:], self._link_of, list(state[0]), state[1])
        return None if walked is None else walked[0]

    def read_bytes(self, path: str) -> bytes | None:
        parts = self._resolve(path)
        entry = self._entry(parts) if parts is not None else None
        if parts is None or entry is None or entry[2] != "file":
            return None
        try:
            with open(self._host(entry[0], parts), "rb") as f:
                data = f.read(bounds.LAYER_FILE + 1)
        except OSError:
            return None
        if len(data) > bounds.LAYER_FILE:
            raise _too_big(path)
        return data

    def is_dir(self, path: str) -> bool:
        parts = self._resolve(path)
        return parts is not None and self._dir(parts) is not None

    def is_symlink(self, path: str) -> bool:
        parent = self._resolve(posixpath.dirname(path))
        if parent is None:
            return False
        entry = self._entry((*parent, posixpath.basename(path)))
        return entry is not None and entry[2] == "link"

    def listdir(self, path: str) -> list[str] | None:
        parts = self._resolve(path)
        folder = self._dir(parts) if parts is not None else None
        return None if folder is None else sorted(folder)

    def subdirs(self, path: str) -> list[str] | None:
        parts = self._resolve(path)
        folder = self._dir(parts) if parts is not None else None
        return None if folder is None else sorted(n for n, e in folder.items() if e[2] == "dir")


# Where container engines keep other images' layers and containers' files: never
# the tree's own software, whatever file system they are on.
CONTAINER_STORAGE = ("var/lib/docker", "var/lib/containerd", "var/lib/containers")


def _unescape(field: str) -> str:
    """A mountinfo path: spaces and the like are written as octal escapes (``\\040``)."""
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def mounts_below(root: str, mountinfo: str) -> list[tuple[str, str]]:
    """(path inside ``root``, file system type) of each mount strictly below ``root``
    that /proc/self/mountinfo's text ``mountinfo`` lists; a mount inside another one
    found is left out (it is skipped with it)."""
    base = os.path.realpath(root).rstrip("/")
    found: dict[str, str] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 8 or "-" not in fields[6:-1]:
            continue
        point = _unescape(fields[4])
        fstype = fields[fields.index("-", 6) + 1]
        if point == base or not point.startswith(base + "/"):
            continue
        found[point[len(base) + 1:]] = fstype
    out: list[tuple[str, str]] = []
    for path in sorted(found):
        if not any(path.startswith(other + "/") for other, _ in out):
            out.append((path, found[path]))
    return out


class TreeFS(LayeredFS):
    """A folder tree read as a machine's own files (``relock freeze --rootfs``).

    What is not the tree's own is hidden, never listed or read: other file
    systems mounted into it (``/proc``, ``/sys``, a disk, a bind mount: those
    /proc/self/mountinfo lists below the root, and any folder on another device
    than the root's) and container storage (``CONTAINER_STORAGE``: other images'
    layers). ``skipped`` says what was, and why, as the walk found it.
    """

    def __init__(self, root: Path | str, mountinfo: str | None = None) -> None:
        super().__init__([root])
        if mountinfo is None:
            try:
                with open("/proc/self/mountinfo") as f:
                    mountinfo = f.read()
            except OSError:
                mountinfo = ""
        self.skipped: dict[str, str] = {}  # path in the tree -> why
        self._hidden: dict[tuple[str, ...], str] = {
            tuple(p.split("/")): f"{t} mounted into the tree"
            for p, t in mounts_below(str(root), mountinfo)}
        for path in CONTAINER_STORAGE:
            self._hidden.setdefault(tuple(path.split("/")), "container storage")
        try:
            self._dev = os.stat(root).st_dev
        except OSError:
            self._dev = -1

    def _merge(self, parts: tuple[str, ...], top: int,
               stop: int) -> dict[str, tuple[int, int, str]]:
        merged = super()._merge(parts, top, stop)
        for name, entry in list(merged.items()):
            here = (*parts, name)
            why = self._hidden.get(here)
            if why is None and entry[2] == "dir":
                try:
                    if os.lstat(self._host(0, here)).st_dev != self._dev:
                        why = "another file system mounted into the tree"
                except OSError:
                    continue
            if why is not None:
                del merged[name]
                self.skipped["/" + "/".join(here)] = why
        return merged


def _kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "link"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    if entry.is_file(follow_symlinks=False):
        return "file"
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return "other"
    return "whiteout" if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 else "other"


def _is_opaque(folder: str) -> bool:
    try:
        return os.getxattr(folder, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class TarFS:
    """The same view over a flattened tar stream of a whole file tree.

    Or over an image's layer tars, applied bottom first with ``add_layer``:
    a layer's whiteouts (``.wh.NAME``) and opaque markers (``.wh..wh..opq``)
    hide what lower layers put there, as overlayfs would. Only the files
    ``keep`` names (prefixes and parts of names) or ``also`` names whole are held
    in memory; every name is kept, for listings.
    Bounded (``relock.bounds``): the tars' decompressed bytes and entries all
    told, and each file held; past a limit ``LimitError``.
    """

    def __init__(self, stream: Readable | None = None, keep: tuple[str, ...] = (),
                 also: Iterable[str] = ()) -> None:
        self._keep = keep
        self._also = {"/".join(_parts(p)) for p in also}  # whole names, not prefixes
        self._files: dict[str, bytes] = {}
        self._big: set[str] = set()  # kept files over bounds.LAYER_FILE: refused when read
        self._links: dict[str, str] = {}
        self._dirs: dict[str, set[str]] = {"": set()}
        self._bytes = 0  # the tars' bytes so far, decompressed
        self._entries = 0
        if stream is not None:
            self._read(stream, layer=False)

    def add_layer(self, stream: Readable) -> None:
        """Apply one layer's tar (uncompressed or compressed) over what is here."""
        self._read(stream, layer=True)

    def _read(self, stream: Readable, layer: bool) -> None:
        # Names this layer put here: its own whiteouts never hide them.
        mine: set[str] = set()
        import tarfile  # here: a freeze of an engine's image reads folders, not tars

        from relock.errors import LimitError

        before = self._bytes
        with tarfile.open(fileobj=stream, mode="r|*") as tar:  # type: ignore[call-overload]
            for member in tar:
                # A member's bytes are counted (tar.offset is past them) before they are
                # read or skipped, so a bomb stops at the limit.
                self._bytes = before + tar.offset
                self._entries += 1
                if self._bytes > bounds.LAYER_BYTES:
                    raise LimitError(bounds.over("the image", "the decompressed size of its layers",
                                                 bounds.size_text(bounds.LAYER_BYTES)))
                if self._entries > bounds.LAYER_ENTRIES:
                    raise LimitError(bounds.over("the image", "the number of its tar entries",
                                                 f"{bounds.LAYER_ENTRIES} entries"))
                parts = _parts(member.name)
                if not parts:
                    continue
                name = "/".join(parts)
                if layer:
                    base = parts[-1]
                    if base == ".wh..wh..opq":
                        folder = "/".join(parts[:-1])
                        for child in sorted(self._dirs.get(folder, ())):
                            self._remove(f"{folder}/{child}" if folder else child, mine)
                        continue
                    if base.startswith(".wh."):
                        self._remove("/".join([*parts[:-1], base[4:]]), mine)
                        continue
                    if name not in mine and (not member.isdir() or name not in self._dirs):
                        self._remove(name, mine)  # a file, link or folder replaces what was
                    mine.add(name)
                self._add_parents(parts)
                if member.isdir():
                    self._dirs.setdefault(name, set())
                elif member.issym():
                    self._links[name] = member.linkname
                elif member.islnk():
                    target = "/".join(_parts(member.linkname))
                    if target in self._files:
                        self._files[name] = self._files[target]
                        if target in self._big:
                            self._big.add(name)
                elif member.isfile() and (not self._keep or _wanted(name, self._keep)
                                          or name in self._also):
                    self._big.discard(name)
                    if member.size > bounds.LAYER_FILE:
                        self._files[name] = b""
                        self._big.add(name)
                        continue
                    f = tar.extractfile(member)
                    if f is not None:
                        self._files[name] = f.read(bounds.LAYER_FILE)

    def _remove(self, name: str, mine: set[str]) -> None:
        """Take ``name`` (and all under it) away, but not what this layer put there."""
        if name in mine:
            return
        for child in sorted(self._dirs.get(name, ())):
            self._remove(f"{name}/{child}", mine)
        self._files.pop(name, None)
        self._big.discard(name)
        self._links.pop(name, None)
        if self._dirs.get(name):  # a folder still holding this layer's own entries
            return
        self._dirs.pop(name, None)
        parent, _, base = name.rpartition("/")
        self._dirs.get(parent, set()).discard(base)

    def _add_parents(self, parts: list[str]) -> None:
        for i in range(len(parts)):
            parent = "/".join(parts[:i])
            self._dirs.setdefault(parent, set()).add(parts[i])

    def _link_of(self, parts: tuple[str, ...]) -> str | None:
        key = "/".join(parts)
        if key in self._links:
            return self._links[key]
        return "" if key in self._files or key in self._dirs else None

    def _resolve(self, path: str) -> str | None:
        parts = resolve(path, self._link_of)
        return None if parts is None else "/".join(parts)

    def read_bytes(self, path: str) -> bytes | None:
        key = self._resolve(path)
        if key is not None and key in self._big:
            raise _too_big(path)
        return None if key is None else self._files.get(key)

    def listdir(self, path: str) -> list[str] | None:
        key = self._resolve(path)
        if key is None or key not in self._dirs:
            return None
        return sorted(self._dirs[key])

    def is_dir(self, path: str) -> bool:
        key = self._resolve(path)
        return key is not None and key in self._dirs

    def subdirs(self, path: str) -> list[str] | None:
        key = self._resolve(path)
        if key is None or key not in self._dirs:
            return None
        prefix = f"{key}/" if key else ""
        return sorted(n for n in self._dirs[key]
                      if prefix + n in self._dirs and prefix + n not in self._links)

    def is_symlink(self, path: str) -> bool:
        parent = self._resolve(posixpath.dirname(path))
        if parent is None:
            return False
        return "/".join([*_parts(parent), posixpath.basename(path)]) in self._links


def _too_big(path: str) -> Exception:
    from relock.errors import LimitError

    return LimitError(bounds.over(f"the image's /{'/'.join(_parts(path))}", "the file",
                                  bounds.size_text(bounds.LAYER_FILE)))


def _wanted(name: str, keep: tuple[str, ...]) -> bool:
    return any(name.startswith(k) or k in name for k in keep)
