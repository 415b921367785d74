"""The local Docker engine's image store, read as files: an ``ImageSource``
that needs neither the docker SDK nor an HTTP stack.

Freeze mostly asks the engine what an image is (its config, tags, registry
digests) and reads its layers. On a local engine with the classic overlay2
image store those answers are files under the engine's data root, written
atomically by the engine: ``image/overlay2/repositories.json`` (tags and
digests), ``imagedb/content/sha256/<id>`` (the config), ``layerdb`` (the
overlay2 folder of each layer). Reading them spares the import of the SDK
and of requests, which costs more than the rest of a freeze.

It is exactly as correct as the SDK or it is not used: only for a local unix
socket with an engine listening, whose data root (learnt once through the
SDK, cached per socket file since the engine makes a new one on each start)
is readable and uses overlay2 without the containerd snapshotter. A name the
files do not resolve, a pull, anything else goes to the SDK, which then gives
its own answer or error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from relock.errors import OutputError
from relock.files import atomic_write_text, cache_home
from relock.image.engine import (
    DockerEngine,
    ImageInfo,
    ImageSource,
    connect,
    engine_timeout,
    parse_created,
)
from relock.image.rootfs import LayeredFS, RootFS
from relock.lock.platform import Platform
from relock.lock.reference import split

DEFAULT_SOCKET = "/var/run/docker.sock"
_HEX64 = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
_SHORT = re.compile(r"(?:sha256:)?([0-9a-f]{1,63})")


class _Unsure(Exception):
    """The files do not answer this for sure; the SDK must."""


class EngineFiles:
    """``ImageSource`` over the engine's data root; the SDK for the rest."""

    def __init__(self, root: Path, engine: DockerEngine | None = None) -> None:
        self.root = root
        self._store = root / "image" / "overlay2"
        self._engine = engine
        self._repos: dict[str, dict[str, str]] | None = None

    def engine(self) -> DockerEngine:
        """The SDK client of the same engine, connected on first use."""
        if self._engine is None:
            self._engine = connect()
        return self._engine

    # -- reading the store

    def _repositories(self) -> dict[str, dict[str, str]]:
        if self._repos is None:
            data = json.loads((self._store / "repositories.json").read_bytes())
            repos = data.get("Repositories") or {}
            if not isinstance(repos, dict):
                raise _Unsure
            self._repos = {str(k): {str(r): str(i) for r, i in (v or {}).items()}
                           for k, v in repos.items()}
        return self._repos

    def _config(self, hex_id: str) -> Mapping[str, Any]:  # Any: JSON, checked where read
        try:
            data = (self._store / "imagedb" / "content" / "sha256" / hex_id).read_bytes()
        except FileNotFoundError:
            raise _Unsure from None
        # The image config JSON (untyped, as the engine stored it).
        config: Any = json.loads(data)
        if not isinstance(config, dict):
            raise _Unsure
        return config

    def _refs_of(self, image_id: str) -> list[str]:
        return [ref for refs in self._repositories().values()
                for ref, target in refs.items() if target == image_id]

    def _info(self, image_id: str) -> ImageInfo:
        config = self._config(image_id.removeprefix("sha256:"))
        created = config.get("created")
        rootfs = config.get("rootfs") or {}
        layers = rootfs.get("diff_ids")
        system, arch, variant = config.get("os"), config.get("architecture"), config.get("variant")
        if (not isinstance(created, str) or not isinstance(layers, list) or not layers
                or not isinstance(system, str) or not system or not isinstance(arch, str)
                or not arch or not isinstance(variant, str | None)):
            raise _Unsure  # the engine's answer for these is the SDK's to give
        digests = sorted(r for r in self._refs_of(image_id) if "@" in r)
        return ImageInfo(
            id=image_id,
            layers=tuple(str(x) for x in layers),
            repo_digests=tuple(digests),
            platform=Platform(os=system, arch=arch, variant=variant or ""),
            created=parse_created(created),
        )

    def _ids(self) -> list[str]:
        folder = self._store / "imagedb" / "content" / "sha256"
        return sorted(p.name for p in folder.iterdir())

    def _resolve(self, ref: str) -> str:
        """The image ID ``ref`` names, as the engine resolves it; _Unsure if not found."""
        whole = _HEX64.fullmatch(ref)
        if whole:
            hex_id = whole.group(1)
            if (self._store / "imagedb" / "content" / "sha256" / hex_id).is_file():
                return "sha256:" + hex_id
            raise _Unsure
        parts = split(ref)
        if parts.tag and parts.digest:
            raise _Unsure
        repo = parts.familiar  # how repositories.json keys it
        key = f"{repo}@{parts.digest}" if parts.digest else f"{repo}:{parts.tag or 'latest'}"
        found = self._repositories().get(repo, {}).get(key)
        if found:
            return found
        short = _SHORT.fullmatch(ref)
        if short:  # the engine tries a name first, then an ID prefix
            matches = [i for i in self._ids() if i.startswith(short.group(1))]
            if len(matches) == 1:
                return "sha256:" + matches[0]
        raise _Unsure

    def _layer_dirs(self, image: ImageInfo) -> list[Path] | None:
        dirs: list[Path] = []
        chain = ""
        for diff_id in image.layers:
            chain = diff_id if not chain else (
                "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest())
            meta = self._store / "layerdb" / "sha256" / chain.removeprefix("sha256:")
            try:
                cache_id = (meta / "cache-id").read_text().strip()
            except OSError:
                return None
            if not cache_id or "/" in cache_id:
                return None
            dirs.append(self.root / "overlay2" / cache_id / "diff")
        dirs.reverse()  # top layer first, as LayeredFS reads them
        if not dirs or not all(os.access(p, os.R_OK | os.X_OK) for p in dirs):
            return None
        return dirs

    # -- ImageSource

    def image(self, ref: str) -> ImageInfo:
        try:
            return self._info(self._resolve(ref))
        except (_Unsure, OSError, ValueError):
            return self.engine().image(ref)

    def images(self) -> list[ImageInfo]:
        try:
            return self._all_images()
        except (_Unsure, OSError, ValueError):
            return self.engine().images()

    def _all_images(self) -> list[ImageInfo]:
        # As the engine lists them by default: intermediate images of the
        # classic builder (no name and a child image) are left out.
        tagged = {i for refs in self._repositories().values() for i in refs.values()}
        parents: set[str] = set()
        meta = self._store / "imagedb" / "metadata" / "sha256"
        if meta.is_dir():
            for entry in meta.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    parents.add((entry / "parent").read_text().strip())
        out = []
        for hex_id in self._ids():
            image_id = "sha256:" + hex_id
            if image_id in parents and image_id not in tagged:
                continue
            out.append(self._info(image_id))
        return out

    def pull(self, ref: str) -> ImageInfo:
        return self.engine().pull(ref)

    def registry_has(self, ref: str) -> bool | None:
        return self.engine().registry_has(ref)

    @contextlib.contextmanager
    def open_rootfs(self, image: ImageInfo, also: tuple[str, ...] = ()) -> Iterator[RootFS]:
        """The image's overlay2 layer folders read in place, else the SDK's way."""
        dirs = self._layer_dirs(image)
        if dirs is not None:
            yield LayeredFS(dirs)
            return
        with self.engine().open_rootfs(image, also) as fs:
            yield fs


# -- finding the data root of the engine behind the socket ----------------------


def _cache_file() -> Path:
    return cache_home() / "engine-roots.json"


def _socket_path() -> str | None:
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host[len("unix://"):] or None
    return None


def _listening(path: str, timeout: float) -> bool:
    """Whether something listens on the unix socket ``path``.

    Linux lists the listening unix sockets of this network namespace in
    /proc/net/unix (proc(5)): found there, no connection is needed (nor the
    socket module's import, a tenth of a quick freeze). Otherwise (another
    namespace's engine, no procfs) a connection answers.
    """
    if _listed_as_listening(path):
        return True
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


_ACCEPTCON = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags: a listening socket


def _listed_as_listening(path: str) -> bool:
    try:
        with open("/proc/net/unix", "rb") as f:
            table = f.read().decode("utf-8", "replace")
    except OSError:
        return False
    want = os.path.realpath(path)
    name = os.path.basename(want)
    for line in table.splitlines()[1:]:
        # Num RefCount Protocol Flags Type St Inode Path (a path may hold spaces)
        fields = line.split(None, 7)
        if len(fields) < 8 or os.path.basename(fields[7]) != name:
            continue
        try:
            listening = int(fields[3], 16) & _ACCEPTCON
        except ValueError:
            continue
        if listening and os.path.realpath(fields[7]) == want:
            return True
    return False


def _learn_root(engine: DockerEngine) -> str:
    """The engine's data root if its image store can be read as files, else ""."""
    try:
        info = engine.client.info()
    except Exception:  # any SDK failure: then the files are not for this engine
        return ""
    status = {str(k) for k, _ in info.get("DriverStatus") or []}
    if info.get("Driver") != "overlay2" or "driver-type" in status:
        return ""  # another storage driver, or the containerd image store
    return str(info.get("DockerRootDir") or "")


def sdk_engine(source: ImageSource) -> DockerEngine:
    """The SDK client behind a source of ``local_images`` (for builds)."""
    if isinstance(source, EngineFiles):
        return source.engine()
    if isinstance(source, DockerEngine):
        return source
    return connect()


def local_images() -> ImageSource:
    """The engine of ``DOCKER_HOST`` as an ``ImageSource``: its files where sound,
    else the SDK client (``connect``)."""
    timeout = engine_timeout()
    path = _socket_path()
    if path is None:
        return connect(timeout)
    try:
        st = os.stat(path)
    except OSError:
        return connect(timeout)
    if not stat.S_ISSOCK(st.st_mode) or not _listening(path, timeout):
        return connect(timeout)
    key = f"{os.path.abspath(path)} {st.st_dev} {st.st_ino} {st.st_mtime_ns}"
    cache = _cache_file()
    known: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(cache.read_bytes())
        if isinstance(loaded, dict):
            known = {str(k): str(v) for k, v in loaded.items()}
    engine = None
    if key not in known:
        engine = connect(timeout)
        # Only this socket's entry: the entries of old sockets are dropped.
        known = {k: v for k, v in known.items() if not k.startswith(os.path.abspath(path) + " ")}
        known[key] = _learn_root(engine)
        with contextlib.suppress(OutputError):  # a cache that cannot be kept is asked again
            atomic_write_text(cache, json.dumps(known, sort_keys=True))
    root = known[key]
    store = Path(root) / "image" / "overlay2" if root else None
    if store is None or not os.access(store / "repositories.json", os.R_OK) \
            or not os.access(store / "imagedb", os.R_OK | os.X_OK):
        return engine or connect(timeout)
    return EngineFiles(Path(root), engine)
