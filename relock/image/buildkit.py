"""BuildKit as relock's builder, through the ``docker buildx`` command.

The docker SDK speaks only to the classic builder. BuildKit's own clients are
``buildctl`` (which needs a BuildKit daemon's address, and knows nothing of
the engine's image store or of the user's named builders) and ``docker
buildx``, Docker's supported client, which builds with the engine's own
BuildKit (the ``docker`` driver, on either image store) or with any builder
the user has made (``docker buildx create``: a container, a remote daemon,
Kubernetes), and loads or pushes the result. relock runs ``docker buildx
build --progress=rawjson`` and turns BuildKit's solve status (one JSON object
after another: vertexes, their logs, their errors) into relock's own
``BuildEvent``s, so the rest of relock never sees buildx.

Nothing relock does not ask for is added to the image: no provenance or SBOM
attestation (the lock is the record), so that the image a build loads is the
image alone.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from relock import bounds
from relock.errors import EngineError, UsageError
from relock.files import read_regular
from relock.image import buildcontext
from relock.image.engine import (
    BuildEvent,
    BuildRequest,
    Engine,
    ImageBuilder,
    ImageInfo,
    context_paths,
)
from relock.image.layers import ImageLayers
from relock.image.rootfs import RootFS

# What --builder takes besides a buildx builder's name.
CLASSIC = "classic"
BUILDKIT = "buildkit"
AUTO = "auto"
# The name of a loaded image the build was not asked to name (the next such build takes it).
UNTAGGED = "relock-untagged:latest"
# A solve status object larger than this is not BuildKit's (bounded reads).
MAX_STATUS = bounds.BUILD_STATUS


def docker_cli() -> str | None:
    """The ``docker`` command, or None where there is none."""
    return shutil.which("docker")


def buildx_version(docker: str | None = None) -> str | None:
    """``docker buildx``'s version (``0.13.1``), or None where there is no buildx."""
    docker = docker or docker_cli()
    if docker is None:
        return None
    try:
        out = subprocess.run([docker, "buildx", "version"], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    words = out.stdout.split()
    return words[1].lstrip("v") if len(words) > 1 else "?"


@dataclass
class Buildx:
    """An ``ImageBuilder`` that builds with BuildKit through ``docker buildx build``.

    ``builder`` is a buildx builder's name (None: the engine's own BuildKit, the
    ``docker`` driver of the engine ``DOCKER_HOST`` names). ``push`` pushes the
    result to the registry its tag names instead of loading it into the
    engine; ``outputs`` replaces both (``type=oci,dest=...``).
    """

    builder: str | None = None
    push: bool = False
    outputs: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    docker: str = "docker"
    # What the last build wrote in its --metadata-file (the image's digests).
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def loads(self) -> bool:
        """Whether the image goes into the engine (not pushed, not written elsewhere)."""
        return not self.outputs and not self.push

    def command(self, request: BuildRequest, dockerfile: str, context: str,
                iidfile: Path, metadata: Path, oci: Path | None = None) -> list[str]:
        """The ``docker buildx build`` command line for ``request``; a reproducible one
        that loads writes an OCI archive at ``oci`` (``docker load`` takes it after)."""
        args = [self.docker, "buildx", "build", "--progress=rawjson",
                "--provenance=false", "--sbom=false",
                "-f", dockerfile, "--iidfile", str(iidfile), "--metadata-file", str(metadata)]
        if self.builder:
            args += ["--builder", self.builder]
        if request.network_mode:
            args += ["--network", request.network_mode]
            if request.network_mode == "host":
                args += ["--allow", "network.host"]
        for host, address in sorted(request.extra_hosts.items()):
            args += ["--add-host", f"{host}:{address}"]
        build_args = dict(request.build_args)
        epoch = request.source_date_epoch
        if epoch is not None:
            # BuildKit's own word for it: the config's and history's times, and (with
            # rewrite-timestamp) every file's mtime in the layers, at most this.
            build_args["SOURCE_DATE_EPOCH"] = str(epoch)
        for key, value in sorted(build_args.items()):
            args += ["--build-arg", f"{key}={value}"]
        if request.platform:
            args += ["--platform", request.platform]
        if request.target:
            args += ["--target", request.target]
        if request.nocache:
            args.append("--no-cache")
        if request.pull:
            args.append("--pull")
        if request.tag:
            args += ["-t", request.tag]
        elif self.loads:
            # An image BuildKit loads without a name is not kept by every image
            # store (the containerd one drops it): it gets relock's.
            args += ["-t", UNTAGGED]
        name = request.tag or UNTAGGED
        if self.outputs:
            for output in self.outputs:
                args += ["--output", output]
        elif self.push and epoch is not None:
            # The engine's own exporter unpacks what it pushes, which rewriting timestamps
            # conflicts with (BuildKit 0.13): an OCI archive, which relock pushes itself.
            if oci is None:
                raise UsageError("a reproducible build needs a place for its OCI archive")
            args += ["--output", f"type=oci,dest={oci},name={name},rewrite-timestamp=true"]
        elif self.push:
            args.append("--push")
        elif epoch is not None:
            # The engine's own exporter cannot rewrite timestamps when it unpacks the image
            # (BuildKit 0.13): an OCI archive can, and the engine loads it unchanged.
            if oci is None:
                raise UsageError("a reproducible build needs a place for its OCI archive")
            args += ["--output", f"type=oci,dest={oci},name={name},rewrite-timestamp=true"]
        else:
            args.append("--load")
        args.append(context)
        return args

    def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
        with tempfile.TemporaryDirectory(prefix="relock-buildx-") as tmp:
            iidfile, metadata = Path(tmp, "iid"), Path(tmp, "metadata.json")
            dockerfile = request.dockerfile
            if request.dockerfile_text is not None:
                # Outside the context, as `docker buildx build -f FILE` reads it.
                dockerfile = str(Path(tmp, "Dockerfile"))
                Path(dockerfile).write_text(request.dockerfile_text, encoding="utf-8")
            elif request.context is not None and not Path(dockerfile).is_absolute():
                # The engine's API takes it in the context; buildx from the working folder.
                dockerfile = str(request.context / dockerfile)
            if request.context is not None and request.source_date_epoch is not None:
                # A reproducible build takes the context with its times and modes made the
                # same on every host (a checkout's are its own).
                copy = Path(tmp, "context")
                copy.mkdir()
                files = buildcontext.normalized_copy(
                    request.context, context_paths(request.context,
                                                   buildcontext.ignore_patterns(request.context)),
                    copy, request.source_date_epoch)
                yield BuildEvent("log", f"the build context: {files} files, each dated "
                                 "SOURCE_DATE_EPOCH, without group or other write")
                context, stdin = str(copy), None
            elif request.context is not None:
                context, stdin = str(request.context), None
            elif request.context_tar is not None:
                context, stdin = "-", request.context_tar
            else:
                raise UsageError("a build needs a context")
            oci = Path(tmp, "image.oci.tar") if (request.source_date_epoch is not None and (
                self.loads or self.push)) else None
            argv = self.command(request, dockerfile, context, iidfile, metadata, oci)
            env = {**os.environ, **self.env, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else
                                        subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env=env)
            except OSError as e:
                raise EngineError(f"cannot run docker buildx: {e}") from None
            feeder = _feed(proc, stdin) if stdin is not None else None
            status = _Status()
            try:
                assert proc.stdout is not None
                for obj in _objects(proc.stdout):
                    yield from status.events(obj)
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if feeder is not None:
                    feeder.join(timeout=30)
            if code != 0:
                yield BuildEvent("error", status.failure() or
                                 f"docker buildx build exited {code}: "
                                 f"{status.last_words() or 'no reason given'}")
                return
            self.metadata = _read_json(metadata)
            if oci is not None and self.push:
                name = request.tag or ""
                yield BuildEvent("log", f"pushing the image to {name}")
                yield BuildEvent("image", push_archive(oci, name))
                return
            if oci is not None and "," in (request.platform or ""):
                # An index of several platforms: each platform's digests are read from the
                # engine after (relock.build.command), the index's ID from the engine.
                yield BuildEvent("log", "loading the image index into the engine")
                self._load(oci, env)
                yield BuildEvent("image", _read_small(iidfile).strip() or UNTAGGED)
                return
            if oci is not None:
                config, manifest = oci_digests(oci)
                yield BuildEvent("log", f"loading the image ({manifest}) into the engine")
                self._load(oci, env)
                yield BuildEvent("digest", f"{config} {manifest}")
                yield BuildEvent("image", config)
                return
            image = _read_small(iidfile).strip()
            if self.push:
                # What the registry names the image by: its manifest's (an index's) digest.
                pushed = str(self.metadata.get("containerimage.digest") or "")
                image = pushed if re.fullmatch(r"sha256:[0-9a-f]{64}", pushed) else image
            if image:
                yield BuildEvent("image", image)

    def _load(self, archive: Path, env: Mapping[str, str]) -> None:
        """``docker load`` of an OCI archive this build wrote (the engine keeps its digests)."""
        try:
            done = subprocess.run([self.docker, "load", "-q", "-i", str(archive)], env=dict(env),
                                  capture_output=True, text=True, check=False)
        except OSError as e:
            raise EngineError(f"cannot run docker load: {e}") from None
        if done.returncode != 0:
            words = (done.stderr or done.stdout).strip().splitlines()
            raise EngineError(f"the engine did not load the built image: "
                              f"{words[-1] if words else f'docker load exited {done.returncode}'}")


def push_archive(archive: Path, name: str) -> str:
    """The OCI archive a build wrote pushed to the registry ``name`` (``HOST/REPO:TAG``)
    names, by relock's registry client; the digest the registry names it by."""
    from relock.image import ociarchive
    from relock.lock.reference import parse
    from relock.upstream import registry as reg

    r = parse(name)
    try:
        with archive.open("rb") as f, ociarchive.reading(f, "the OCI archive BuildKit wrote"
                                                         ) as held:
            return ociarchive.push(held, reg.registry_for(r.host), r.repo, r.tag or "latest")
    except OSError as e:
        raise EngineError(f"cannot read the OCI archive BuildKit wrote: {e}") from None


def oci_digests(archive: Path) -> tuple[str, str]:
    """The config's and the manifest's digest of the one image of an OCI archive that
    BuildKit wrote (``index.json`` naming one manifest)."""
    import tarfile

    def member(tar: tarfile.TarFile, name: str) -> Any:
        try:
            info = tar.getmember(name)
            # An OCI archive's index and manifest are small; a bigger one is not BuildKit's.
            limit = bounds.OCI_ARCHIVE_JSON
            handle = tar.extractfile(info) if info.isfile() and info.size <= limit else None
            if handle is None:
                raise KeyError(name)
            return bounds.load_json(handle.read(limit))
        except (KeyError, ValueError, UnicodeDecodeError) as e:
            raise EngineError(f"the OCI archive BuildKit wrote has no readable {name} ({e})"
                              ) from None

    try:
        with tarfile.open(archive) as tar:
            index = member(tar, "index.json")
            manifests = index.get("manifests") if isinstance(index, dict) else None
            if not isinstance(manifests, list) or len(manifests) != 1 or \
                    not isinstance(manifests[0], dict):
                raise EngineError("the OCI archive BuildKit wrote does not name one image")
            digest = str(manifests[0].get("digest", ""))
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                raise EngineError(f"the OCI archive names a manifest {digest[:80]!r}")
            manifest = member(tar, f"blobs/sha256/{digest[7:]}")
            config = manifest.get("config") if isinstance(manifest, dict) else None
            config_digest = str(config.get("digest", "")) if isinstance(config, dict) else ""
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", config_digest):
                raise EngineError(f"the image's manifest names no config ({digest})")
            return config_digest, digest
    except (OSError, tarfile.TarError) as e:
        raise EngineError(f"cannot read the OCI archive BuildKit wrote: {e}") from None


def _feed(proc: subprocess.Popen[bytes], source: IO[bytes]) -> threading.Thread:
    """Copy the context tar into buildx's stdin on a thread (its stdout is read meanwhile)."""
    def run() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            shutil.copyfileobj(source, proc.stdin, 1 << 20)
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.close()

    thread = threading.Thread(target=run, name="relock-buildx-context", daemon=True)
    thread.start()
    return thread


def _objects(stream: IO[bytes]) -> Iterator[Any]:
    """The JSON values buildx writes one after another (pretty-printed); any line that is
    not JSON (buildx's own words before a build starts) as a string."""
    decoder = json.JSONDecoder()
    buffer = ""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        if not buffer and not line.lstrip().startswith("{"):
            if line.strip():
                yield line.rstrip("\n")
            continue
        buffer += line
        if len(buffer) > MAX_STATUS:
            raise EngineError("docker buildx wrote a status of more than "
                              f"{MAX_STATUS // (1024 * 1024)} MiB: not BuildKit's")
        try:
            value, end = decoder.raw_decode(buffer)
        except ValueError:
            continue
        yield value
        buffer = buffer[end:].lstrip()
    if buffer.strip():
        yield buffer.strip()


class _Status:
    """BuildKit's solve status, followed: step names by vertex, log lines, the failed step."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.started: set[str] = set()
        self.partial: dict[tuple[str, int], str] = {}
        self.failed: tuple[str, str] | None = None
        self.words: list[str] = []

    def events(self, obj: Any) -> Iterator[BuildEvent]:
        if isinstance(obj, str):
            self.words.append(obj)
            yield BuildEvent("log", obj)
            return
        if not isinstance(obj, dict):
            return
        for vertex in _list(obj.get("vertexes")):
            digest, name = str(vertex.get("digest", "")), str(vertex.get("name", ""))
            if digest and name:
                self.names[digest] = name
            if digest and vertex.get("started") and digest not in self.started:
                self.started.add(digest)
                cached = " CACHED" if vertex.get("cached") else ""
                yield BuildEvent("log", f"#{len(self.started)} {step_line(name)}{cached}")
            error = vertex.get("error")
            if error and self.failed is None and "context canceled" not in str(error):
                self.failed = (name, str(error))
        for entry in _list(obj.get("logs")):
            yield from self._log(entry)

    def _log(self, entry: dict[str, Any]) -> Iterator[BuildEvent]:
        try:
            data = base64.b64decode(str(entry.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            return
        key = (str(entry.get("vertex", "")), int(entry.get("stream", 1) or 1))
        text = self.partial.pop(key, "") + data.decode("utf-8", "replace")
        *lines, rest = text.replace("\r\n", "\n").split("\n")
        if rest:
            self.partial[key] = rest[-4096:]
        for line in lines:
            yield BuildEvent("log", line)

    def failure(self) -> str | None:
        """``RUN pip install ...: process ... did not complete successfully: exit code 1``."""
        if self.failed is None:
            return None
        name, error = self.failed
        first = error.splitlines()[0] if error else "failed"
        # 'process "/bin/sh -c <the step with relock's view before it>" did not complete
        # successfully: exit code: 1': the step is named already, the process is noise.
        ran = _PROCESS.fullmatch(first)
        return f"{step_line(name)}: {ran.group(1) if ran else first}"

    def last_words(self) -> str:
        return next((w for w in reversed(self.words) if w.strip()), "")


_PROCESS = re.compile(r'process ".*" (did not complete successfully: .*)')


def step_line(name: str) -> str:
    """A vertex's name as BuildKit gives it (``[stage 2/5] RUN ...``), on one line."""
    return " ".join(name.split())[:2000]


def _list(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _read_small(path: Path, limit: int = 1 << 16) -> str:
    """What buildx wrote in one of its files (none: empty), a regular file of at most ``limit``."""
    try:
        return read_regular(path, limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = bounds.load_json(_read_small(path, MAX_STATUS) or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- choosing the builder ---------------------------------------------------------------

@dataclass
class WithBuilder:
    """An engine whose builds go to ``builder``: images, pulls and files as the engine's."""

    engine: Engine
    builder: ImageBuilder
    name: str

    def reproducible_problem(self) -> str | None:
        """Why this builder cannot build reproducibly here (None: it can)."""
        if not isinstance(self.builder, Buildx):
            return (f"{self.name} cannot build reproducibly (it stamps every file a RUN "
                    "writes with the time of the build): build with BuildKit "
                    "(--builder buildkit; Debian: apt-get install docker-buildx)")
        if self.builder.builder is None and not self.engine.containerd_store():
            return ("the engine keeps its images in the overlay2 store, whose BuildKit cannot "
                    "write an image with rewritten timestamps: turn on the containerd image "
                    'store ("features": {"containerd-snapshotter": true} in daemon.json), '
                    "or name a buildx builder of the docker-container driver with --builder")
        return None

    def platforms_problem(self, count: int, push: bool) -> str | None:
        """Why this builder cannot build ``count`` platforms into one image (an index), to
        be pushed (``push``) or loaded into the engine (None: it can)."""
        if not isinstance(self.builder, Buildx):
            if count == 1 and not push:
                return None
            return (f"{self.name} builds one platform's image at a time and pushes nothing "
                    "itself: build with BuildKit (--builder buildkit; Debian: apt-get install "
                    "docker-buildx), or give one --platform per build")
        if count > 1 and self.builder.builder is None and not self.engine.containerd_store():
            return ("the engine keeps its images in the overlay2 store, whose BuildKit (the "
                    "docker driver) cannot build several platforms into one image: turn on "
                    'the containerd image store ("features": {"containerd-snapshotter": true} '
                    "in daemon.json), or name a buildx builder of the docker-container driver "
                    "with --builder and --push the image")
        if count > 1 and not push and not self.engine.containerd_store():
            return ("an image of several platforms can be loaded only into an engine with the "
                    "containerd image store, and this one keeps its images in the overlay2 "
                    'store: turn it on ("features": {"containerd-snapshotter": true} in '
                    "daemon.json), or --push the image to a registry (-t HOST/REPO:TAG)")
        return None

    def pushing(self) -> WithBuilder:
        """This builder, its images pushed to the registry their tag names (BuildKit only:
        ``platforms_problem`` says so first)."""
        if not isinstance(self.builder, Buildx):
            raise UsageError(f"{self.name} cannot push an image")
        return WithBuilder(self.engine, dataclasses.replace(self.builder, push=True,
                                                            metadata={}), self.name)

    def image(self, ref: str) -> ImageInfo:
        return self.engine.image(ref)

    def images(self) -> list[ImageInfo]:
        return self.engine.images()

    def pull(self, ref: str) -> ImageInfo:
        return self.engine.pull(ref)

    def open_rootfs(self, image: ImageInfo, also: tuple[str, ...] = ()
                    ) -> contextlib.AbstractContextManager[RootFS]:
        return self.engine.open_rootfs(image, also)

    def registry_mirrors(self) -> list[str]:
        return self.engine.registry_mirrors()

    def registry_has(self, ref: str) -> bool | None:
        return self.engine.registry_has(ref)

    def containerd_store(self) -> bool:
        return self.engine.containerd_store()

    def image_layers(self, ref: str) -> contextlib.AbstractContextManager[ImageLayers]:
        return self.engine.image_layers(ref)

    def image_archive(self, ref: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self.engine.image_archive(ref)

    def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
        for event in self.builder.build(request):
            if event.kind == "image" and isinstance(self.builder, Buildx) \
                    and self.builder.loads:
                # BuildKit's image ID is its config's digest; an image store may
                # know the image by another (the containerd one: the manifest's).
                yield BuildEvent("image", self.engine.image(request.tag or UNTAGGED).id)
            else:
                yield event


def builder_names(docker: str) -> list[str]:
    """The buildx builders this user has (``docker buildx ls``)."""
    try:
        out = subprocess.run([docker, "buildx", "ls", "--format", "{{.Name}}"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def select(engine: Engine, choice: str | None = None) -> WithBuilder:
    """The engine with the builder ``choice`` names (``--builder``, else ``RELOCK_BUILDER``):

    ``auto`` (the default): BuildKit where ``docker buildx`` is installed (and
    ``DOCKER_BUILDKIT`` is not ``0``), else the classic builder; ``buildkit``: the
    engine's own BuildKit; ``classic``: the engine's classic builder; any other
    word: the buildx builder of that name (``docker buildx ls``).
    """
    choice = (choice or os.environ.get("RELOCK_BUILDER") or AUTO).strip()
    if not choice:
        raise UsageError("--builder is empty: name auto, buildkit, classic or a buildx builder")
    if choice == CLASSIC or (choice == AUTO and os.environ.get("DOCKER_BUILDKIT") == "0"):
        return WithBuilder(engine, engine, "the classic builder")
    docker = docker_cli()
    version = buildx_version(docker)
    if version is None or docker is None:
        if choice == AUTO:
            return WithBuilder(engine, engine, "the classic builder (no docker buildx here)")
        raise UsageError(f"--builder {choice}: docker buildx is not installed here (Debian: "
                         "apt-get install docker-buildx), so BuildKit cannot be used; "
                         "--builder classic builds with the engine's classic builder")
    if choice in (AUTO, BUILDKIT):
        buildx = Buildx(docker=docker)
        return WithBuilder(engine, buildx, f"BuildKit (the engine's own, buildx {version})")
    if choice not in builder_names(docker):
        raise UsageError(f"--builder {choice}: no buildx builder of that name (docker buildx "
                         "ls lists them; auto, buildkit and classic are relock's own words)")
    return WithBuilder(engine, Buildx(builder=choice, docker=docker),
                       f"BuildKit (buildx builder {choice}, buildx {version})")
