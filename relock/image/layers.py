"""An image as its layers: each layer's tar read as a stream, merged as the engine would.

``ImageLayers`` is what any origin gives: the image's config (its ID, each
layer's diff ID and the history step that made it) and a way to open each
layer's blob. The engine gives it from ``docker save`` (``DockerEngine.
image_layers``), a registry from its blobs (``RegistrySource.image_layers``),
and an image archive on disk (``docker save``'s tar or an OCI layout in a tar)
from ``archive_layers``. ``read_image`` applies the layers bottom first into
``ImageFiles``: every path of the merged view (whiteouts and opaque folders
applied, as overlayfs does) with its type, mode, owner, size, content digest,
link target and mtime, and the layer that last wrote it.

Nothing in a layer is run or extracted: tars are read as streams, regular
files hashed as they pass, symlinks kept as the text they hold (never
followed), and every image read within ``Limits`` (decompressed bytes,
entries, the length of a name).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

from relock import bounds
from relock.errors import LayerError, LimitError
from relock.image.rootfs import Readable
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    import tarfile

# tarfile and zlib are imported where layers are read: the engine module imports this
# one, and relock's start-up (a freeze reading an engine's folders) needs neither.

_CHUNK = 1 << 20
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
# What one step's text may be, shown (a created_by of megabytes is clipped).
MAX_STEP = 4096


@dataclass(frozen=True)
class Limits:
    """How much of one image is read before it is refused (``relock.bounds``' values)."""

    max_bytes: int = bounds.LAYER_BYTES  # decompressed bytes of all its layers
    max_entries: int = bounds.LAYER_ENTRIES  # tar entries of all its layers
    max_name: int = bounds.TAR_NAME  # bytes of one path
    max_archive: int = bounds.IMAGE_ARCHIVE  # an image archive spooled to disk (docker save)
    max_config: int = bounds.CONFIG  # an image config or manifest


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Layer:
    """One layer: its place (0 is the bottom), its digests, the step that made it."""

    index: int
    diff_id: str  # sha256 of the uncompressed tar, as the config lists it
    digest: str = ""  # the blob's digest (compressed), "" where the origin does not say
    step: str = ""  # the history's created_by, "" where the history does not say

    @property
    def short(self) -> str:
        """The diff ID as people read it: 12 hex digits."""
        return self.diff_id.removeprefix("sha256:")[:12]


@dataclass(frozen=True)
class ImageLayers:
    """An image by its layers, from any origin; ``open(i)`` reads layer i's blob."""

    label: str
    id: str  # the config's digest
    layers: tuple[Layer, ...]
    open: Callable[[int], contextlib.AbstractContextManager[Readable]] = field(
        compare=False, repr=False)


class LayerSource(Protocol):
    """A place an image's layers can be read from: the engine, a registry, an archive."""

    def image_layers(self, ref: str) -> contextlib.AbstractContextManager[ImageLayers]:
        """``ref``'s layers, readable while the context lasts."""
        ...


@dataclass(frozen=True)
class Entry:
    """One path of the merged view, as the layer that last wrote it says."""

    kind: str  # file, dir, symlink, hardlink, char, block, fifo
    mode: int  # permission bits with setuid, setgid and sticky (0o7777)
    uid: int
    gid: int
    layer: int
    size: int = 0
    sha256: str = ""  # of a file's content (a hard link's: its target's)
    link: str = ""  # a symlink's target; a hard link's target path when it has no content
    device: str = ""  # "major,minor" of a character or block device
    mtime_ns: int = 0  # nanoseconds since the epoch (a PAX header's fraction kept)


@dataclass(frozen=True)
class ImageFiles:
    """An image's merged file tree: each path's entry, and what whiteouts removed.

    Paths are relative to the root, without a leading ``/`` (``etc/hosts``).
    ``removed`` maps a path a whiteout (or an opaque folder) took away to
    the layer that did it.
    """

    label: str
    id: str
    layers: tuple[Layer, ...]
    entries: dict[str, Entry]
    removed: dict[str, int]

    def removed_by(self, path: str) -> int | None:
        """The layer whose whiteout removed ``path`` or a folder above it, if one did."""
        parts = path.split("/")
        for i in range(len(parts), 0, -1):
            found = self.removed.get("/".join(parts[:i]))
            if found is not None:
                return found
        return None


# -- history -------------------------------------------------------------------------

_SHELL = re.compile(r"^(?:RUN )?(?:\|\d+ .*?)?/bin/sh -c (?P<cmd>.*)$", re.S)


def step_text(created_by: str, run_command: Callable[[str], str] | None = None) -> str:
    """A history entry's ``created_by`` as the template's step: ``RUN date > /x``.

    The classic builder writes ``/bin/sh -c CMD`` (``#(nop) COPY ...`` for
    others), BuildKit ``RUN /bin/sh -c CMD # buildkit``; build arguments
    (``|2 A=1 B=2``) are left out. ``run_command`` rewrites a RUN's command
    (relock's view prefix taken off, by the layer that knows it).
    """
    text = created_by.strip().removesuffix("# buildkit").rstrip()
    m = _SHELL.match(text)
    if m:
        cmd = m["cmd"].strip()
        if cmd.startswith("#(nop)"):
            return _clip(" ".join(cmd[6:].split(None, 1)) if cmd[6:].strip() else "")
        return _clip("RUN " + (run_command(cmd) if run_command else cmd))
    return _clip(text)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_STEP else text[: MAX_STEP - 3] + "..."


def layers_of(config: dict[str, Any], label: str, digests: tuple[str, ...] = ()
              ) -> tuple[Layer, ...]:
    """The layers an image config names, with each one's history step where it says.

    The history's entries that are not ``empty_layer`` are the layers', in
    order; a history that does not count the same leaves every step unsaid.
    """
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
            isinstance(d, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", d) for d in diff_ids):
        raise LayerError(f"{label}: the image config has no valid rootfs.diff_ids")
    if digests and len(digests) != len(diff_ids):
        raise LayerError(f"{label}: {len(digests)} layer blobs but {len(diff_ids)} diff IDs "
                         "in the image config")
    history = config.get("history")
    steps: list[str] = []
    if isinstance(history, list):
        for item in history:
            if not isinstance(item, dict) or item.get("empty_layer") is True:
                continue
            said = item.get("created_by") or item.get("comment") or ""
            steps.append(str(said) if isinstance(said, str) else "")
    if len(steps) != len(diff_ids):
        steps = [""] * len(diff_ids)
    return tuple(Layer(i, d, digests[i] if digests else "", steps[i])
                 for i, d in enumerate(diff_ids))


def with_steps(layers: ImageLayers, run_command: Callable[[str], str]) -> ImageLayers:
    """``layers`` with each step read as the template's (``step_text``)."""
    return ImageLayers(layers.label, layers.id, tuple(
        Layer(x.index, x.diff_id, x.digest, step_text(x.step, run_command) if x.step else "")
        for x in layers.layers), layers.open)


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object (an image config, a manifest) or a LayerError naming ``what``."""
    try:
        value = bounds.load_json(data)
    except bounds.JSONTooDeep as e:
        raise LimitError(f"{what}: {e}; refused") from None
    except ValueError:
        raise LayerError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise LayerError(f"{what} is not a JSON object")
    return value


# -- reading layers ---------------------------------------------------------------------


class _Budget:
    """The decompressed bytes and entries an image may still use."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bytes = limits.max_bytes
        self.entries = limits.max_entries


class _Decompressed:
    """A layer blob read decompressed (gzip or plain), counted, its diff ID computed."""

    def __init__(self, raw: Readable, budget: _Budget, where: str) -> None:
        self._raw = raw
        self._budget = budget
        self._where = where
        self.digest = hashlib.sha256()
        head = raw.read(4)
        if head.startswith(_ZSTD):
            raise LayerError(f"{where}: a zstd-compressed layer; relock reads plain and gzip "
                             "layers only")
        import zlib

        self._pending = head
        self._z = zlib.decompressobj(wbits=31) if head.startswith(_GZIP) else None
        self._out = b""
        self._pos = 0
        self._eof = False

    def _take(self) -> bytes:
        data, self._pending = self._pending or self._raw.read(_CHUNK), b""
        return data

    def _feed(self) -> None:
        import zlib

        z = self._z
        if z is None:
            data = self._take()
            self._eof = not data
            self._add(data)
            return
        if z.eof:  # a gzip member ended: another may follow (concatenated streams)
            data = z.unused_data or self._take()
            if not data:
                self._eof = True
                return
            self._z = z = zlib.decompressobj(wbits=31)
        else:
            data = z.unconsumed_tail or self._take()
            if not data:
                raise LayerError(f"{self._where}: the gzip stream ends early")
        try:
            self._add(z.decompress(data, _CHUNK))
        except zlib.error as e:
            raise LayerError(f"{self._where}: not a readable gzip stream ({e})") from None

    def _add(self, data: bytes) -> None:
        self._budget.bytes -= len(data)
        if self._budget.bytes < 0:
            raise LimitError(bounds.over(self._where, "the decompressed size of the image's layers",
                                         bounds.size_text(self._budget.limits.max_bytes)))
        self.digest.update(data)
        self._out, self._pos = self._out[self._pos:] + data, 0

    def read(self, size: int = -1, /) -> bytes:
        want = _CHUNK if size < 0 else size
        while not self._eof and len(self._out) - self._pos < want:
            self._feed()
            if size < 0 and self._eof:
                break
        if size < 0:
            while not self._eof:
                self._feed()
            out, self._out, self._pos = self._out[self._pos:], b"", 0
            return out
        out = self._out[self._pos:self._pos + size]
        self._pos += len(out)
        return out

    def drain(self) -> None:
        """Read to the end, so that the diff ID covers the whole stream."""
        while self.read(_CHUNK):
            pass


# Tar's type flags (tarfile.REGTYPE and the rest; GNU sparse files are regular files).
_KINDS = {b"0": "file", b"\0": "file", b"7": "file", b"S": "file", b"5": "dir",
          b"2": "symlink", b"1": "hardlink", b"3": "char", b"4": "block", b"6": "fifo"}


class _Tree:
    """The merged view being built, layer by layer, bottom first."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.children: dict[str, set[str]] = {"": set()}
        self.removed: dict[str, int] = {}

    def remove(self, path: str, below: int) -> bool:
        """Take ``path`` and all under it away where layers below ``below`` put it."""
        gone = False
        for child in sorted(self.children.get(path, ())):
            gone |= self.remove(f"{path}/{child}" if path else child, below)
        entry = self.entries.get(path)
        if entry is not None and entry.layer < below:
            del self.entries[path]
            gone = True
        if path and path not in self.entries and not self.children.get(path):
            self.children.pop(path, None)
            parent, _, base = path.rpartition("/")
            self.children.get(parent, set()).discard(base)
        return gone

    def put(self, path: str, entry: Entry) -> None:
        old = self.entries.get(path)
        if old is not None and not (old.kind == "dir" and entry.kind == "dir"):
            self.remove(path, entry.layer + 1)  # a file replaces what was, folder and all
        self.removed.pop(path, None)
        parts = path.split("/")
        for i in range(len(parts)):
            self.children.setdefault("/".join(parts[:i]), set()).add(parts[i])
        if entry.kind == "dir":
            self.children.setdefault(path, set())
        self.entries[path] = entry


def _name(member: tarfile.TarInfo, where: str, limits: Limits) -> str:
    raw = member.name
    if len(raw.encode("utf-8", "surrogateescape")) > limits.max_name:
        raise LimitError(bounds.over(where, "an entry's name", f"{limits.max_name} bytes"))
    parts = [p for p in raw.split("/") if p and p != "."]
    if ".." in parts or "\0" in raw:
        raise LayerError(f"{where}: the entry {raw[:200]!r} reaches outside the image's root")
    return "/".join(parts)


def _apply(tree: _Tree, stream: Readable, index: int, where: str, budget: _Budget) -> None:
    import tarfile

    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                budget.entries -= 1
                if budget.entries < 0:
                    raise LimitError(bounds.over(where, "the number of the image's tar entries",
                                                 f"{budget.limits.max_entries} entries"))
                _member(tree, tar, member, index, where, budget.limits)
    except tarfile.TarError as e:
        raise LayerError(f"{where}: not a readable layer tar ({e})") from None
    except (EOFError, OSError) as e:
        raise LayerError(f"{where}: the layer tar ends early or cannot be read ({e})"
                         ) from None


def _member(tree: _Tree, tar: tarfile.TarFile, member: tarfile.TarInfo, index: int,
            where: str, limits: Limits) -> None:
    path = _name(member, where, limits)
    if not path:
        return  # the root folder itself
    folder, _, base = path.rpartition("/")
    if base == ".wh..wh..opq":
        for child in sorted(tree.children.get(folder, ())):
            name = f"{folder}/{child}" if folder else child
            if tree.remove(name, index):
                tree.removed[name] = index
        return
    if base.startswith(".wh."):
        name = f"{folder}/{base[4:]}" if folder else base[4:]
        if base[4:] and tree.remove(name, index):
            tree.removed[name] = index
        return
    kind = _KINDS.get(member.type)
    if kind is None:
        raise LayerError(f"{where}: the entry {path!r} is of an unknown tar type "
                         f"{member.type!r}")
    mode, uid, gid, mtime = member.mode & 0o7777, member.uid, member.gid, _mtime_ns(member)
    if kind == "file":
        digest, size = hashlib.sha256(), 0
        f = tar.extractfile(member)
        if f is not None:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        entry = Entry("file", mode, uid, gid, index, size=size, sha256=digest.hexdigest(),
                      mtime_ns=mtime)
    elif kind == "hardlink":
        target = _inside(member.linkname)
        found = tree.entries.get(target)
        if found is not None and found.kind == "file":
            entry = Entry("file", mode, uid, gid, index, size=found.size, sha256=found.sha256,
                          mtime_ns=mtime)
        else:
            entry = Entry("hardlink", mode, uid, gid, index,
                          link=member.linkname[: limits.max_name], mtime_ns=mtime)
    elif kind == "symlink":
        entry = Entry("symlink", mode, uid, gid, index, link=member.linkname[: limits.max_name],
                      mtime_ns=mtime)
    elif kind in ("char", "block"):
        entry = Entry(kind, mode, uid, gid, index, device=f"{member.devmajor},{member.devminor}",
                      mtime_ns=mtime)
    else:
        entry = Entry(kind, mode, uid, gid, index, mtime_ns=mtime)
    tree.put(path, entry)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    """The mtime in nanoseconds: a PAX ``mtime`` (``1796207566.123456789``) exactly, as
    BuildKit and containerd write it (two builds a second apart differ there only)."""
    import decimal

    text = member.pax_headers.get("mtime", "")
    if text and len(text) <= 40:
        try:
            return int(decimal.Decimal(text).scaleb(9))
        except (decimal.InvalidOperation, ValueError, OverflowError):
            pass
    return int(member.mtime) * 1_000_000_000


def read_image(layers: ImageLayers, limits: Limits = DEFAULT_LIMITS,
               progress: Progress = quiet) -> ImageFiles:
    """Apply ``layers`` bottom first into the merged view, each layer's diff ID checked."""
    tree = _Tree()
    budget = _Budget(limits)
    for layer in layers.layers:
        where = f"{layers.label} layer {layer.index} ({layer.short})"
        progress(f"reading {where}")
        with layers.open(layer.index) as raw:
            stream = _Decompressed(raw, budget, where)
            _apply(tree, stream, layer.index, where, budget)
            stream.drain()
        if f"sha256:{stream.digest.hexdigest()}" != layer.diff_id:
            raise LayerError(f"{where}: its content is not the diff ID the image config "
                             f"names (sha256:{stream.digest.hexdigest()[:12]})")
    return ImageFiles(layers.label, layers.id, layers.layers, tree.entries, tree.removed)


# -- image archives (docker save, an OCI layout in a tar) ---------------------------------


@contextlib.contextmanager
def archive_layers(archive: IO[bytes], label: str, limits: Limits = DEFAULT_LIMITS
                   ) -> Iterator[ImageLayers]:
    """The image in an archive ``docker save`` writes (or an OCI image layout in a tar).

    ``archive`` must be seekable: each layer is read from its place in it.
    ``manifest.json`` (docker) is read where there is one, else ``index.json``
    (OCI); either must name one image.
    """
    import tarfile

    try:
        tar = tarfile.TarFile(fileobj=archive, mode="r")  # not compressed: seekable
    except (tarfile.TarError, EOFError, OSError) as e:
        raise LayerError(f"{label}: not a readable image archive ({e})") from None
    with tar:
        yield _archive(tar, label, limits)


def _archive(tar: tarfile.TarFile, label: str, limits: Limits) -> ImageLayers:
    import tarfile

    members: dict[str, tarfile.TarInfo] = {}
    try:
        for count, member in enumerate(tar):
            if count >= bounds.ARCHIVE_ENTRIES:
                raise LimitError(bounds.over(label, "the number of the archive's entries",
                                             f"{bounds.ARCHIVE_ENTRIES} entries"))
            members[_inside(member.name)] = member
    except (tarfile.TarError, EOFError, OSError) as e:
        raise LayerError(f"{label}: not a readable image archive ({e})") from None

    def read(name: str, what: str) -> bytes:
        member = members.get(name)
        if member is None or not (member.isfile() or member.issym() or member.islnk()):
            raise LayerError(f"{label}: the archive has no {what} ({name})")
        if member.size > limits.max_config:
            raise LimitError(bounds.over(label, f"the {what}",
                                         bounds.size_text(limits.max_config)))
        return _extract(tar, member, label).read(limits.max_config + 1)[: limits.max_config]

    if "manifest.json" in members:
        config_name, layer_names = _docker_manifest(read("manifest.json", "manifest.json"),
                                                    label)
    elif "index.json" in members:
        config_name, layer_names = _oci_index(read, label)
    else:
        raise LayerError(f"{label}: neither manifest.json nor index.json: not an image archive")
    data = read(config_name, "image config")
    config = parse_json(data, f"{label}: the image config")
    digests = tuple(_blob_digest(n) for n in layer_names)
    layers = layers_of(config, label, digests if all(digests) else ())
    if len(layers) != len(layer_names):
        raise LayerError(f"{label}: {len(layer_names)} layers but {len(layers)} diff IDs")

    @contextlib.contextmanager
    def open_layer(i: int) -> Iterator[Readable]:
        member = members.get(layer_names[i])
        if member is None:
            raise LayerError(f"{label}: the archive has no layer {layer_names[i]}")
        yield _extract(tar, member, label)

    return ImageLayers(label, "sha256:" + hashlib.sha256(data).hexdigest(), layers, open_layer)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, label: str) -> IO[bytes]:
    import tarfile

    try:
        f = tar.extractfile(member)  # a link inside the archive resolves inside it
    except (tarfile.TarError, KeyError) as e:
        raise LayerError(f"{label}: {member.name!r} cannot be read from the archive ({e})"
                         ) from None
    if f is None:
        raise LayerError(f"{label}: {member.name!r} is not a file in the archive")
    return f


def _blob_digest(name: str) -> str:
    m = re.fullmatch(r"blobs/sha256/([0-9a-f]{64})", name)
    return f"sha256:{m[1]}" if m else ""


def _docker_manifest(data: bytes, label: str) -> tuple[str, list[str]]:
    try:
        value = bounds.load_json(data)
    except bounds.JSONTooDeep as e:
        raise LimitError(f"{label}: manifest.json: {e}; refused") from None
    except ValueError:
        raise LayerError(f"{label}: manifest.json is not JSON") from None
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        raise LayerError(f"{label}: manifest.json must name exactly one image")
    config, layers = value[0].get("Config"), value[0].get("Layers")
    if not isinstance(config, str) or not isinstance(layers, list) or not all(
            isinstance(x, str) for x in layers):
        raise LayerError(f"{label}: manifest.json has no Config and Layers")
    return _inside(config), [_inside(x) for x in layers]


def _inside(name: str) -> str:
    return "/".join(p for p in name.split("/") if p and p != ".")


def _oci_index(read: Callable[[str, str], bytes], label: str) -> tuple[str, list[str]]:
    index = parse_json(read("index.json", "index.json"), f"{label}: index.json")
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or len(manifests) != 1 or not isinstance(
            manifests[0], dict):
        raise LayerError(f"{label}: index.json must name exactly one image")
    digest = _digest(manifests[0].get("digest"), label)
    manifest = parse_json(read(f"blobs/sha256/{digest}", "image manifest"),
                          f"{label}: the image manifest")
    if "manifests" in manifest:
        raise LayerError(f"{label}: the archive's image is an index; save one platform")
    config = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise LayerError(f"{label}: the image manifest has no config and layers")
    names = []
    for x in layers:
        if not isinstance(x, dict):
            raise LayerError(f"{label}: the image manifest's layers are not descriptors")
        names.append(f"blobs/sha256/{_digest(x.get('digest'), label)}")
    return f"blobs/sha256/{_digest(config.get('digest'), label)}", names


def _digest(value: object, label: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", value):
        raise LayerError(f"{label}: {str(value)[:80]!r} is not a sha256 digest")
    return value.removeprefix("sha256:")
