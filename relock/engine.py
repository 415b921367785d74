"""Talking to the container engine through the docker SDK.

The SDK is imported here only, inside functions, so that ``relock --help``
stays instant. Every engine failure becomes an ``EngineError`` with a line a
user can act on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from relock.errors import EngineError, ImageNotFoundError
from relock.rootfs import LayeredFS, RootFS, TarFS

# What the inventory reads; an exported tree keeps only these files in memory.
INVENTORY_PATHS = (
    "var/lib/dpkg/", "var/lib/apt/", "etc/apt/", "etc/os-release", "usr/lib/os-release",
    ".dist-info/", ".egg-info", "pyvenv.cfg", "usr/share/keyrings/",
)


def _where() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: int = 600) -> Any:
    """A docker SDK client that has answered a ping."""
    import docker
    import requests
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, requests.RequestException) as e:
        raise EngineError(
            f"cannot reach the container engine at {_where()}: {_first_line(e)} "
            "(is dockerd running? `scripts/testbed` starts one)"
        ) from None
    return client


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def get_image(client: Any, ref: str) -> Any:
    """The engine's image named ``ref`` (a tag, a digest reference or an ID)."""
    import requests
    from docker.errors import APIError, DockerException, ImageNotFound

    try:
        return client.images.get(ref)
    except ImageNotFound:
        raise ImageNotFoundError(
            f"image {ref!r} not found in the engine; build or pull it first"
        ) from None
    except (APIError, DockerException) as e:
        raise EngineError(f"engine error looking up image {ref!r}: {_first_line(e)}") from None
    except requests.RequestException as e:  # after APIError, which is one too
        raise EngineError(f"the engine did not answer about image {ref!r}: {_first_line(e)}"
                          ) from None


def layers(image: Any) -> list[str]:
    """The diff IDs of an image's layers, bottom first."""
    return list((image.attrs.get("RootFS") or {}).get("Layers") or [])


def sits_on(image: Any, base: Any) -> bool:
    """Whether ``base``'s layers are the bottom layers of ``image``."""
    want = layers(base)
    return bool(want) and layers(image)[: len(want)] == want


def platform(image: Any) -> str:
    """``os/arch[/variant]`` of an image."""
    attrs = image.attrs
    text = f"{attrs.get('Os', 'linux')}/{attrs.get('Architecture', 'amd64')}"
    return text + (f"/{attrs['Variant']}" if attrs.get("Variant") else "")


def _overlay_layers(image: Any) -> list[Path] | None:
    driver = image.attrs.get("GraphDriver") or {}
    if driver.get("Name") != "overlay2":
        return None
    data = driver.get("Data") or {}
    layers = [data.get("UpperDir", ""), *(data.get("LowerDir") or "").split(":")]
    paths = [Path(p) for p in layers if p]
    if not paths or not all(os.access(p, os.R_OK | os.X_OK) for p in paths):
        return None
    return paths


@contextlib.contextmanager
def image_rootfs(client: Any, image: Any, keep: tuple[str, ...] = INVENTORY_PATHS
                 ) -> Iterator[RootFS]:
    """A read-only view of an image's files; nothing in the image is run.

    On a local engine whose overlay2 layers this process can read, the layer
    folders are read in place (fast). Otherwise a container is created, never
    started, and its file tree exported.
    """
    layers = _overlay_layers(image)
    if layers is not None:
        yield LayeredFS(layers)
        return
    from docker.errors import DockerException

    container = None
    try:
        # Created only to export its files; it is never started.
        container = client.containers.create(image.id, command=["/relock-never-runs"],
                                             entrypoint=[], network_mode="none")
        stream = _ChunkReader(container.export())
        yield TarFS(stream, keep)
    except DockerException as e:
        raise EngineError(
            f"cannot read the files of image {image.id[:19]}: {_first_line(e)}"
        ) from None
    finally:
        if container is not None:
            with contextlib.suppress(DockerException):
                container.remove(force=True)


class _ChunkReader:
    """A file-like ``read`` over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        return out


def normalize_repo(ref: str) -> str:
    """The full repository name of a reference: ``debian:12`` -> ``docker.io/library/debian``."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        domain, path = "docker.io", name
    else:
        domain, path = first, rest
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    return f"{domain}/{path}"


def repo_digests(image: Any, ref: str) -> list[str]:
    """The registry digests the engine knows for ``ref``'s repository."""
    want = normalize_repo(ref)
    out = []
    for entry in image.attrs.get("RepoDigests") or []:
        repo, _, digest = entry.partition("@")
        if normalize_repo(repo) == want and digest:
            out.append(digest)
    return sorted(set(out))


def pull(client: Any, ref: str) -> Any:
    """Pull ``ref`` (e.g. a digest reference) and return the image."""
    from docker.errors import DockerException

    try:
        return client.images.pull(ref)
    except DockerException as e:
        raise EngineError(f"cannot pull {ref}: {_first_line(e)}") from None


def registry_mirrors(client: Any) -> list[str]:
    """The engine's ``registry-mirrors`` (URLs), which it asks for Docker Hub names."""
    from docker.errors import DockerException

    try:
        info = client.info()
    except DockerException as e:
        raise EngineError(f"cannot ask the engine for its registry mirrors: {_first_line(e)}"
                          ) from None
    return [str(m) for m in (info.get("RegistryConfig") or {}).get("Mirrors") or []]
