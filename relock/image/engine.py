"""Where images come from: relock's typed seam, and the Docker engine behind it.

``ImageSource`` is what freezing and verifying need of "a place that has
images": an image's facts as relock's own frozen values (``ImageInfo``), the
images it holds, a pull, and a read-only ``RootFS`` of an image's files.
``ImageBuilder`` is what building needs: a build request in, a stream of
``BuildEvent`` out. ``Engine`` is both, and knows the registry mirrors it
pulls Docker Hub names through: what rebuilding, publishing a store's bases
and updating need. ``DockerEngine`` implements it through the docker SDK;
it is the only place in relock that imports the SDK, inside its methods, so
that ``relock --help`` stays instant. Every engine failure becomes an
``EngineError`` with a line a user can act on.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from relock.errors import EngineError, ImageNotFoundError, one_line
from relock.image.layers import (
    DEFAULT_LIMITS,
    ImageLayers,
    LayerSource,
    Limits,
    archive_layers,
)
from relock.image.rootfs import LayeredFS, RootFS, TarFS
from relock.lock.platform import Platform
from relock.lock.reference import normalize_repo

# What the inventory reads; an exported tree keeps only these files in memory.
INVENTORY_PATHS = (
    "var/lib/dpkg/", "var/lib/apt/", "etc/apt/", "etc/os-release", "usr/lib/os-release",
    ".dist-info/", ".egg-info", "pyvenv.cfg", "usr/share/keyrings/",
)


# -- the seam ------------------------------------------------------------------


@dataclass(frozen=True)
class ImageInfo:
    """What relock knows of one image, whatever it came from.

    ``layers`` are the diff IDs of its layers, bottom first; ``repo_digests``
    the ``repository@sha256:...`` references a registry knows it by.
    """

    id: str
    layers: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    platform: Platform = field(default_factory=Platform)
    created: datetime | None = None
    # The store names every image by a digest of its own, pulled or built (Docker's
    # containerd image store): a repo digest there does not say a registry has it.
    local_digests: bool = False

    @property
    def short_id(self) -> str:
        """The ID as people read it: ``sha256:`` and 12 hex digits."""
        return self.id[:19]

    def digests_for(self, ref: str) -> list[str]:
        """The registry digests of this image in ``ref``'s repository, sorted."""
        want = normalize_repo(ref)
        out = set()
        for entry in self.repo_digests:
            repo, _, digest = entry.partition("@")
            if digest and normalize_repo(repo) == want:
                out.add(digest)
        return sorted(out)

    def sits_on(self, base: ImageInfo) -> bool:
        """Whether ``base``'s layers are the bottom layers of this image."""
        return bool(base.layers) and self.layers[: len(base.layers)] == base.layers


class ImageSource(Protocol):
    """A place that has images: an engine, a registry, a fake in a test."""

    def image(self, ref: str) -> ImageInfo:
        """The image named ``ref`` (tag, digest reference or ID); ImageNotFoundError if none."""
        ...

    def images(self) -> list[ImageInfo]:
        """Every image the source holds."""
        ...

    def pull(self, ref: str) -> ImageInfo:
        """Fetch ``ref`` (e.g. a digest reference) into the source and return it."""
        ...

    def open_rootfs(self, image: ImageInfo, also: tuple[str, ...] = ()
                    ) -> contextlib.AbstractContextManager[RootFS]:
        """A read-only view of ``image``'s files while the context lasts: the inventory's
        files readable, and those under ``also`` (paths in the image, no leading slash)."""
        ...

    def registry_has(self, ref: str) -> bool | None:
        """Whether a registry the source pulls from has ``ref`` (``repo@sha256:...``);
        None when it could not be asked."""
        ...


@dataclass(frozen=True)
class BuildRequest:
    """One build: a context (a folder, or a ready tar of one) and how to build it."""

    dockerfile: str  # its path in the context; ignored when ``dockerfile_text`` is given
    context: Path | None = None
    context_tar: IO[bytes] | None = None
    # The Dockerfile itself, kept out of the context folder (COPY never sees it).
    dockerfile_text: str | None = None
    tag: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    nocache: bool = False
    network_mode: str = "host"
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None  # build only up to this stage
    # Pull every FROM even if the engine has an image by that name: the
    # legacy builder takes a local image whatever its platform, so a build
    # for another platform must pull that platform's image.
    pull: bool = False
    # A reproducible build: SOURCE_DATE_EPOCH for the build and every timestamp of the
    # image rewritten to it at export (BuildKit only).
    source_date_epoch: int | None = None


@dataclass(frozen=True)
class BuildEvent:
    """One thing a build said: a ``log`` line, the ``image`` ID it made, its ``digest``
    (``sha256:<config> sha256:<manifest>``, where the builder wrote the image itself), an
    ``error`` of a build step, or ``refused`` when the engine would not build."""

    kind: Literal["log", "image", "digest", "error", "refused"]
    text: str


class ImageBuilder(Protocol):
    """Something that builds images."""

    def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
        """Run the build, yielding what it says as it says it."""
        ...


class Engine(ImageSource, ImageBuilder, LayerSource, Protocol):
    """A container engine: images in and built, their layers, and the registry mirrors it
    pulls through."""

    def registry_mirrors(self) -> list[str]:
        """The engine's ``registry-mirrors`` URLs, which it asks for Docker Hub names first."""
        ...

    def containerd_store(self) -> bool:
        """Whether the engine keeps its images in the containerd image store (its image IDs
        are manifest digests; its BuildKit can export an image with rewritten timestamps)."""
        ...

    def image_archive(self, ref: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """``docker save`` of ``ref``: a seekable image archive (the containerd image store
        writes an OCI layout holding every platform it has of the image)."""
        ...


# -- the Docker engine ------------------------------------------------------------


def _where() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


DEFAULT_TIMEOUT = 60


def engine_timeout() -> int:
    """Seconds an engine request may take: ``RELOCK_ENGINE_TIMEOUT``, 60 by default."""
    text = os.environ.get("RELOCK_ENGINE_TIMEOUT", "")
    try:
        timeout = int(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        raise EngineError(f"RELOCK_ENGINE_TIMEOUT={text!r} is not a number of seconds"
                          ) from None
    if timeout <= 0:
        raise EngineError(f"RELOCK_ENGINE_TIMEOUT={text!r} must be above 0")
    return timeout


def connect(timeout: int | None = None) -> DockerEngine:
    """The Docker engine of this host (``DOCKER_HOST``), once it has answered.

    The client asks the engine for its API version on creation; that answer
    is the sign of life (a separate ping would cost another round trip).
    Every request but a build's log stream must be answered within
    ``timeout`` seconds (``RELOCK_ENGINE_TIMEOUT``, 60 by default): an engine
    that accepts and never answers does not hold relock.
    """
    if timeout is None:
        timeout = engine_timeout()
    import docker
    import requests
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout, version="auto")
    except (DockerException, requests.RequestException) as e:
        raise EngineError(
            f"cannot reach the container engine at {_where()}: {one_line(e)} "
            "(is dockerd running? `scripts/testbed` starts one)"
        ) from None
    except ValueError as e:  # a malformed DOCKER_HOST (a port out of range, say)
        raise EngineError(f"DOCKER_HOST {_where()!r} is not a usable address: {e}") from None
    return DockerEngine(client, timeout)


@contextlib.contextmanager
def _answers(what: str, timeout: float | None) -> Iterator[None]:
    """Whatever the SDK, requests or urllib3 raise for ``what`` as one EngineError line.

    The SDK wraps HTTP errors, not a read that timed out or a broken connection.
    """
    import requests
    from docker.errors import DockerException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except (DockerException, requests.RequestException, HTTPError, TimeoutError) as e:
        if not isinstance(e, requests.Timeout | TimeoutError) and \
                "timed out" not in str(e).lower():
            raise EngineError(f"engine error when {what}: {one_line(e)}") from None
        bound = f" within {timeout:g} s" if timeout else ""
        raise EngineError(f"the engine did not answer{bound} when {what} (timed out; "
                          f"RELOCK_ENGINE_TIMEOUT): {one_line(e)}") from None


class DockerEngine:
    """``ImageSource`` and ``ImageBuilder`` over a docker SDK client."""

    def __init__(self, client: Any, timeout: float | None = None) -> None:  # SDK: untyped
        # The docker SDK ships no type hints: its client is untyped.
        self.client: Any = client  # docker.DockerClient (the SDK ships no types)
        self.timeout = timeout
        # Inspect JSON (untyped, as the engine sends it) by image ID, for the
        # layer folders open_rootfs reads.
        self._attrs: dict[str, Mapping[str, Any]] = {}
        self._engine_info: Mapping[str, Any] | None = None

    def _daemon(self, what: str) -> Mapping[str, Any]:  # Any: the engine's info JSON
        """The engine's ``/info`` answer, asked once (its store and its mirrors)."""
        if self._engine_info is None:
            with _answers(what, self.timeout):
                info = self.client.info()
            self._engine_info = info if isinstance(info, dict) else {}
        return self._engine_info

    def containerd_store(self) -> bool:
        """Whether the engine keeps its images in the containerd image store."""
        status = self._daemon("asked for its image store").get("DriverStatus")
        return "io.containerd.snapshotter" in json.dumps(status or [])

    def _info(self, image: Any) -> ImageInfo:  # Any: an SDK Image (untyped)
        # An SDK Image (untyped); its attrs are the engine's inspect JSON.
        attrs: Mapping[str, Any] = image.attrs  # the engine's inspect JSON, as the SDK gives it
        self._attrs[image.id] = attrs
        info = image_info(image.id, attrs)
        return replace(info, local_digests=True) if self.containerd_store() else info

    def registry_has(self, ref: str) -> bool | None:
        """Whether the engine's registry for ``ref`` (its mirrors and credentials, as a pull
        of it would go) has that manifest: the engine's distribution endpoint."""
        import requests
        from docker.errors import APIError, DockerException, NotFound

        try:
            self.client.api.inspect_distribution(ref)
        except NotFound:
            return False
        except APIError as e:
            text = str(e).lower()
            return False if "unknown" in text or "not found" in text else None
        except (DockerException, requests.RequestException):
            return None
        return True

    def image(self, ref: str) -> ImageInfo:
        import requests
        from docker.errors import APIError, DockerException, ImageNotFound

        try:
            return self._info(self.client.images.get(ref))
        except ImageNotFound:
            raise ImageNotFoundError(
                f"image {ref!r} not found in the engine; build or pull it first"
            ) from None
        except (APIError, DockerException) as e:
            raise EngineError(f"engine error looking up image {ref!r}: {one_line(e)}") from None
        except requests.Timeout as e:
            raise EngineError(f"the engine did not answer about image {ref!r}{self._within()} "
                              f"(timed out; RELOCK_ENGINE_TIMEOUT): {one_line(e)}") from None
        except requests.RequestException as e:  # after APIError, which is one too
            raise EngineError(f"the engine did not answer about image {ref!r}: {one_line(e)}"
                              ) from None

    def _within(self) -> str:
        return f" within {self.timeout:g} s" if self.timeout else ""

    def registry_mirrors(self) -> list[str]:
        """The engine's ``registry-mirrors`` (URLs), which it asks for Docker Hub names."""
        info = self._daemon("asked for its registry mirrors")
        return [str(m) for m in (info.get("RegistryConfig") or {}).get("Mirrors") or []]

    def images(self) -> list[ImageInfo]:
        with _answers("asked for its images", self.timeout):
            return [self._info(img) for img in self.client.images.list()]

    def pull(self, ref: str) -> ImageInfo:
        """Pull ``ref``; the engine's progress must say something every ``timeout`` s.

        The SDK's own pull waits for ever (it sets no time-out): an engine
        that takes the request and never answers would hold relock.
        """

        from docker import auth
        from docker.utils import parse_repository_tag

        repo, tag = parse_repository_tag(ref)
        tag = tag or "latest"
        api = self.client.api
        headers = {}
        header = auth.get_config_header(api, auth.resolve_repository_name(repo)[0])
        if header:
            headers["X-Registry-Auth"] = header
        with _answers(f"pulling {ref}", self.timeout):
            resp = api.post(f"{api.base_url}/v{api.api_version}/images/create",
                            params={"fromImage": repo, "tag": tag}, headers=headers,
                            stream=True, timeout=self.timeout)
            with resp:
                if resp.status_code >= 400:
                    raise EngineError(f"cannot pull {ref}: {_api_message(resp)}")
                for line in resp.iter_lines():
                    try:
                        event = json.loads(line) if line.strip() else None
                    except ValueError:
                        continue
                    if isinstance(event, dict) and event.get("error"):
                        raise EngineError(f"cannot pull {ref}: {_first_line(event['error'])}")
            sep = "@" if tag.startswith("sha256:") else ":"
            return self._info(self.client.images.get(f"{repo}{sep}{tag}"))

    @contextlib.contextmanager
    def open_rootfs(self, image: ImageInfo, also: tuple[str, ...] = ()) -> Iterator[RootFS]:
        """A read-only view of an image's files; nothing in the image is run.

        On a local engine whose overlay2 layers this process can read, the
        layer folders are read in place (fast). Otherwise a container is
        created, never started, and its file tree exported.
        """
        attrs = self._attrs.get(image.id)
        if attrs is None:
            self.image(image.id)
            attrs = self._attrs[image.id]
        layers = _overlay_layers(attrs)
        if layers is not None:
            yield LayeredFS(layers)
            return
        from docker.errors import DockerException

        container = None
        try:
            # Created only to export its files; it is never started.
            with _answers(f"reading the files of image {image.short_id}", self.timeout):
                container = self.client.containers.create(
                    image.id, command=["/relock-never-runs"], entrypoint=[], network_mode="none")
                stream = _ChunkReader(container.export())
                yield TarFS(stream, INVENTORY_PATHS, also)
        except (KeyError, TypeError) as e:  # an answer without the fields the API promises
            raise EngineError(
                f"cannot read the files of image {image.short_id}: the engine answered "
                f"without {e}"
            ) from None
        finally:
            if container is not None:
                with contextlib.suppress(DockerException, EngineError), _answers(
                        "removing a container", self.timeout):
                    container.remove(force=True)

    def image_layers(self, ref: str, limits: Limits = DEFAULT_LIMITS
                     ) -> contextlib.AbstractContextManager[ImageLayers]:
        """``ref``'s layers as ``docker save`` writes them, spooled to a temporary file.

        The same for every image store (overlay2, containerd): the engine's own
        archive of the image, its config and each layer's tar, read by
        ``relock.image.layers``. Nothing in the image is run. An image the
        engine does not have is an ``ImageNotFoundError`` here, not on entry.
        """
        return self._saved(ref, self.image(ref), limits)

    @contextlib.contextmanager
    def _saved(self, ref: str, info: ImageInfo, limits: Limits) -> Iterator[ImageLayers]:
        with self._spooled(info.id, info.short_id, limits) as spool, \
                archive_layers(spool, ref, limits) as layers:
            yield layers

    def image_archive(self, ref: str, limits: Limits = DEFAULT_LIMITS
                      ) -> contextlib.AbstractContextManager[IO[bytes]]:
        """``docker save`` of ``ref`` as the engine writes it (the containerd image store:
        an OCI layout of every platform it holds of the image), spooled to a temporary
        file; ``ImageNotFoundError`` here if the engine has no such image."""
        info = self.image(ref)
        # By name: the containerd store saves the image index a name holds, an ID
        # one platform's image.
        return self._spooled(ref, info.short_id, limits)

    @contextlib.contextmanager
    def _spooled(self, name: str, short: str, limits: Limits) -> Iterator[IO[bytes]]:
        import tempfile

        with tempfile.TemporaryFile(prefix="relock-save-") as spool:
            written = 0
            with _answers(f"saving image {short}", self.timeout):
                for chunk in self.client.api.get_image(name):
                    written += len(chunk)
                    if written > limits.max_archive:
                        raise EngineError(f"image {short}: docker save gives over "
                                          f"{limits.max_archive >> 20} MB")
                    spool.write(chunk)
            spool.seek(0)
            yield spool

    def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
        from docker.errors import APIError, DockerException
        from requests.exceptions import RequestException
        from urllib3.exceptions import HTTPError

        if request.source_date_epoch is not None:
            yield BuildEvent("refused", "the classic builder cannot build reproducibly (it "
                             "stamps every file a RUN writes with the time of the build): "
                             "build with BuildKit (--builder buildkit)")
            return
        if request.dockerfile_text is not None and request.context is not None:
            import tempfile

            from relock.image.buildcontext import pack

            with tempfile.TemporaryFile() as tar:
                name = pack(request.context, request.dockerfile_text, tar, pack_context)
                tar.seek(0)
                yield from self.build(replace(request, dockerfile=name, context=None,
                                              context_tar=tar, dockerfile_text=None))
            return
        # Keyword arguments of the SDK's untyped build().
        where: dict[str, Any] = (
            {"fileobj": request.context_tar, "custom_context": True}
            if request.context_tar is not None else {"path": str(request.context)})
        try:
            stream = self.client.api.build(
                **where, dockerfile=request.dockerfile, tag=request.tag,
                buildargs=dict(request.build_args), platform=request.platform,
                network_mode=request.network_mode, extra_hosts=dict(request.extra_hosts) or None,
                rm=True, forcerm=True, decode=True, nocache=request.nocache, pull=request.pull,
                target=request.target,
                # A build step may be silent for long (a compiler): its log
                # stream has no read deadline; every other request has one.
                timeout=None,
            )
            for chunk in stream:
                yield from _build_events(chunk)
        except APIError as e:
            yield BuildEvent("refused", str(e.explanation or e))
        except (DockerException, RequestException, HTTPError) as e:
            # A connection that breaks while the log streams is not wrapped by the SDK.
            raise EngineError(f"lost the engine during the build: {e}") from None


def _api_message(resp: Any) -> str:  # Any: a requests Response inside an SDK error
    """The ``message`` of an engine's error answer (a requests response), else its status."""
    try:
        found = resp.json().get("message")
    except (ValueError, AttributeError):
        found = None
    return _first_line(found) if found else f"HTTP {resp.status_code}"


def _build_events(chunk: Mapping[str, Any]) -> Iterator[BuildEvent]:
    """The events in one decoded (untyped JSON) chunk of the engine's build stream."""
    if "stream" in chunk:
        for line in str(chunk["stream"]).splitlines():
            yield BuildEvent("log", line)
    aux = chunk.get("aux")
    if isinstance(aux, dict) and "ID" in aux:
        yield BuildEvent("image", str(aux["ID"]))
    if "error" in chunk:
        yield BuildEvent("error", str(chunk.get("error", "")))


def pack_context(context: Path, ignore: list[str], name: str, dockerfile: str,
                 out: IO[bytes]) -> None:
    """Write ``context`` as the engine takes it (a tar, ``ignore`` applied) with
    ``dockerfile`` added as ``name`` and hidden from COPY by ``.dockerignore``."""
    # The SDK's context writer and .dockerignore matcher, the engine's own rules.
    from docker.utils.build import tar

    tar(str(context), exclude=list(ignore), dockerfile=(name, dockerfile), fileobj=out)


def context_paths(context: Path, ignore: list[str]) -> set[str]:
    """The paths (files and folders, relative) of ``context`` that a build sees: ``ignore``
    (its ``.dockerignore``) applied by the SDK's matcher, the engine's own rules; links to
    folders are not followed."""
    from docker.utils.build import exclude_paths

    # The SDK always keeps the Dockerfile it is told of: a name no context holds.
    return set(exclude_paths(str(context), list(ignore), dockerfile=".relock.none"))


# The engine's inspect JSON comes untyped from the SDK (Mapping[str, Any] below); each
# value read is checked where it is used.
def image_info(image_id: str, attrs: Mapping[str, Any]) -> ImageInfo:
    """An ``ImageInfo`` from the engine's inspect JSON (untyped) of an image."""
    return ImageInfo(
        id=image_id,
        layers=tuple((attrs.get("RootFS") or {}).get("Layers") or ()),
        repo_digests=tuple(attrs.get("RepoDigests") or ()),
        platform=Platform(os=attrs.get("Os", "linux"), arch=attrs.get("Architecture", "amd64"),
                          variant=attrs.get("Variant") or ""),
        created=parse_created(attrs.get("Created", "")),
    )


def parse_created(text: str) -> datetime | None:
    """An RFC 3339 time as the engine and image configs give it (to the second, UTC)."""
    if not text:
        return None
    # The engine gives nanoseconds; datetime takes microseconds.
    main = text.rstrip("Z").partition(".")[0]
    try:
        return datetime.fromisoformat(main).replace(tzinfo=UTC)
    except ValueError:
        return None


def _overlay_layers(attrs: Mapping[str, Any]) -> list[Path] | None:  # Any: inspect JSON
    driver = attrs.get("GraphDriver") or {}
    if driver.get("Name") != "overlay2":
        return None
    data = driver.get("Data") or {}
    layers = [data.get("UpperDir", ""), *(data.get("LowerDir") or "").split(":")]
    paths = [Path(p) for p in layers if p]
    if not paths or not all(os.access(p, os.R_OK | os.X_OK) for p in paths):
        return None
    return paths


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


def _first_line(value: object, limit: int = 160) -> str:
    """The first line of what an engine said, clipped, for a one-line error."""
    lines = str(value).strip().splitlines()
    text = lines[0] if lines else "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."
