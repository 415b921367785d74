"""The use cases of ``relock render``, ``serve``, ``build``, ``verify`` and ``freeze``.

Each takes one request (what the command's options say) and returns what
the CLI prints. ``run_freeze`` is here, not in ``relock.freeze``, because
freezing a template's build stages builds them again from the engine's
build cache, which only this package may do: it is
``relock.freeze.command.run_freeze`` with the engine's stage builder.

A ``relock freeze`` loads this module, so what it imports at the top stays
small (no render, no rebuild, no docker SDK): the rest is imported where it
is used. Nothing here prints or exits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from relock.errors import UsageError
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.build.rebuild import RebuildOptions, ViewSource
    from relock.build.verify import Drift
    from relock.freeze.command import FreezeOutcome, FreezeRequest
    from relock.freeze.freeze import FreezeOptions
    from relock.image.engine import Engine, ImageSource
    from relock.image.filediff import FileDifference
    from relock.lock.lockfile import ImageDigest, Lock
    from relock.template.dockerfile import Dockerfile
    from relock.upstream.referrers import ArtifactRegistry

    # Makes a rebuild's view source from its options (``relock.build.rebuild.Upstream``,
    # or the store's ``relock.store.storeview.FromStore``).
    ViewSources = Callable[[RebuildOptions], ViewSource]

RENDERED_NAME = "Dockerfile.relock"


def run_freeze(request: FreezeRequest, progress: Progress = quiet,
               warn: Progress = quiet, *, images: ImageSource | None = None) -> FreezeOutcome:
    """``relock freeze``: ``relock.freeze.command.run_freeze`` reading build stages too."""
    from relock.freeze.command import run_freeze as freeze

    return freeze(request, progress, warn, stages=stages_from_build_cache, images=images)


def stages_from_build_cache(images: ImageSource, dockerfile: Dockerfile, context: Path,
                            final: Lock, options: FreezeOptions, progress: Progress) -> Lock:
    """``final`` plus what the template's build stages installed (a ``StageFreezer``)."""
    from relock.build.stages import freeze_stages as freeze
    from relock.template.dockerfile import stages_to_freeze

    if not stages_to_freeze(dockerfile):
        return final
    from relock.image import buildkit
    from relock.image.enginefiles import sdk_engine

    builds = buildkit.select(sdk_engine(images))
    progress(f"reading build stages with {builds.name}")
    return freeze(builds, dockerfile, context, final, options, progress)


# -- what the build commands share ------------------------------------------------------

@dataclass(frozen=True)
class RebuildFlags:
    """Where a pinned build's files come from: --apt-live, --apt-snapshot-url,
    --apt-mirror, --store, --view-port and --force."""

    apt_live: bool = False
    apt_snapshot_url: str | None = None
    apt_mirrors: tuple[str, ...] = ()
    store: str | None = None
    view_port: int | None = None
    force: bool = False

    def options(self, lock_path: Path, *, tag: str | None = None,
                platform: str | None = None, nocache: bool = False) -> RebuildOptions:
        """The rebuild's options; a store excludes every other source."""
        from relock.build.rebuild import RebuildOptions
        from relock.template.render import DEFAULT_VIEW_PORT

        if self.store is not None and (self.apt_live or self.apt_snapshot_url
                                       or self.apt_mirrors):
            raise UsageError("--store takes every file from the store; --apt-live, "
                             "--apt-snapshot-url and --apt-mirror do not apply")
        return RebuildOptions(
            lock_path=str(lock_path), use_snapshot=not self.apt_live,
            snapshot_url=self.apt_snapshot_url, mirrors=self.apt_mirrors,
            view_port=DEFAULT_VIEW_PORT if self.view_port is None else self.view_port,
            force=self.force, tag=tag, platform=platform, nocache=nocache)


def load_template(dockerfile: Path | None, lock_path: Path,
                  build_args: Mapping[str, str]) -> tuple[Lock, Dockerfile, dict[str, str]]:
    """The lock, the template (parsed with the lock's build arguments), those arguments.

    The template is ``dockerfile``, else the one the lock was frozen from if
    it is there, else ``Dockerfile.in``.
    """
    from relock.build.rebuild import effective_build_args
    from relock.lock import lockfile
    from relock.template import dockerfile as df

    lock = lockfile.read(lock_path)
    if dockerfile is None:
        recorded = Path(lock.input.dockerfile) if lock.input.dockerfile else None
        dockerfile = recorded if recorded is not None and recorded.is_file() \
            else Path("Dockerfile.in")
    args = effective_build_args(lock, build_args)
    return lock, df.load(dockerfile, args), args


# -- relock render ------------------------------------------------------------------------

@dataclass(frozen=True)
class RenderRequest:
    """What ``relock render``'s options say."""

    dockerfile: Path | None = None
    lock_path: Path | None = None
    output: Path | None = None
    view_url: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    force: bool = False
    platform: str | None = None


def run_render(request: RenderRequest) -> Path:
    """Write the pinned Dockerfile (atomically, never over the template); its path."""
    from relock.image.platforms import by_manifest
    from relock.lock.locate import default_lock
    from relock.lock.lockfile import atomic_write_text
    from relock.template import render

    lock_path = default_lock(request.lock_path)
    lock, parsed, _ = load_template(request.dockerfile, lock_path, request.build_args)
    if request.platform is not None:
        lock = by_manifest(lock.for_platform(request.platform))
    template = Path(parsed.path)
    out = request.output or template.parent / RENDERED_NAME
    if out.resolve() == template.resolve():
        raise UsageError(f"-o {out} is the template itself; name another file")
    rendered = render.render(parsed, lock, render.RenderOptions(
        view_url=request.view_url or render.DEFAULT_VIEW_URL, force=request.force,
        lock_path=str(lock_path)))
    atomic_write_text(out, rendered.dockerfile)
    return out


# -- relock serve -------------------------------------------------------------------------

@dataclass(frozen=True)
class ServeRequest:
    """What ``relock serve``'s options say."""

    lock_path: Path | None = None
    flags: RebuildFlags = field(default_factory=RebuildFlags)
    platform: str | None = None


@dataclass(frozen=True)
class ServeOutcome:
    """What a build asked the view for that the lock does not have."""

    unlocked: tuple[str, ...]


def run_serve(request: ServeRequest, progress: Progress = quiet,
              ready: Progress = quiet, *, views: ViewSources | None = None) -> ServeOutcome:
    """Serve the locked view on loopback until SIGTERM or Ctrl-C; ``ready`` gets its URL.

    ``views`` makes the view's source from the rebuild's options (the CLI hands in the
    store's for ``--store``, a layer above this one); by default the view is upstream's."""
    import contextlib
    import signal
    import threading

    from relock.build import rebuild
    from relock.image import engine
    from relock.lock import lockfile
    from relock.lock.locate import default_lock

    lock_path = default_lock(request.lock_path)
    options = request.flags.options(lock_path)
    lock = lockfile.read(lock_path)
    if request.platform is not None:
        lock = lock.for_platform(request.platform)
    view = (views or rebuild.Upstream)(options)(engine.connect(), lock, progress)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with rebuild.serve_view(view, options.view_port, progress) as server:
        ready(server.url)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return ServeOutcome(tuple(sorted(view.misses.pip)))


# -- relock build and relock verify ---------------------------------------------------------

@dataclass(frozen=True)
class BuildRequest:
    """What ``relock build``'s options say."""

    dockerfile: Path | None = None
    lock_path: Path | None = None
    tag: str | None = None
    platform: str | None = None
    context: Path | None = None
    no_cache: bool = False
    no_verify: bool = False
    flags: RebuildFlags = field(default_factory=RebuildFlags)
    build_args: Mapping[str, str] = field(default_factory=dict)
    builder: str | None = None  # --builder: auto, buildkit, classic or a buildx builder
    reproducible: bool = False  # --reproducible


@dataclass(frozen=True)
class Reproduction:
    """The image a reproducible build gave, and what the lock recorded before it (None:
    nothing, and now it records this one)."""

    digest: ImageDigest
    recorded: ImageDigest | None
    # When not the same and the engine still has the recorded image: every file that
    # differs (image.filediff's), the recorded image as A.
    differences: tuple[FileDifference, ...] | None = None

    @property
    def same(self) -> bool:
        """Whether the build gave the image the lock records (or the lock recorded none)."""
        r = self.recorded
        return r is None or (r.config == self.digest.config
                             and (not r.manifest or r.manifest == self.digest.manifest))


@dataclass(frozen=True)
class VerifyOutcome:
    """An image checked against a lock (``drift`` None: not checked)."""

    image: str
    lock_path: Path | str  # the lock file, or where the lock attached to the image is
    drift: tuple[Drift, ...] | None
    reproduced: Reproduction | None = None  # of relock build --reproducible


def run_build(request: BuildRequest, progress: Progress = quiet,
              log: Progress = quiet, *, views: ViewSources | None = None) -> VerifyOutcome:
    """Rebuild the template pinned to the lock, then verify the image unless asked not to.

    ``log`` gets the build's log lines; a failed build is a ``BuildError``
    carrying the log's tail. ``views`` as for ``run_serve``.
    """
    from relock.build import rebuild
    from relock.image import buildkit, engine
    from relock.image.platforms import by_manifest
    from relock.lock.locate import default_lock
    from relock.lock.platform import host

    lock_path = default_lock(request.lock_path)
    options = request.flags.options(lock_path, tag=request.tag, platform=request.platform,
                                    nocache=request.no_cache)
    if request.reproducible:
        # Without BuildKit's cache: it keys a COPY by its files' contents, not their times,
        # so a layer cached from a build of another checkout would carry that one's times.
        options = dataclasses.replace(options, reproducible=True, nocache=True)
    lock, parsed, args = load_template(request.dockerfile, lock_path, request.build_args)
    # That platform's part (exit 2 naming it if the lock lacks it), before any step.
    lock = by_manifest(lock.part(request.platform, str(host())))
    ctx = request.context or Path(parsed.path).parent
    client = engine.connect()
    builds = buildkit.select(client, request.builder)
    if request.reproducible and (problem := builds.reproducible_problem()):
        raise UsageError(f"--reproducible: {problem}")
    progress(f"building with {builds.name}" + (
        f", reproducibly (SOURCE_DATE_EPOCH={rebuild.source_date_epoch(lock)}, the lock's "
        "snapshot time, without the build cache)" if request.reproducible else ""))
    result = rebuild.rebuild(builds, parsed, lock, ctx, options, args, log=log,
                             progress=progress, view=(views or rebuild.Upstream)(options))
    image = request.tag or result.image_id
    progress(f"built {image}")
    reproduced = None
    if request.reproducible:
        reproduced = _reproduction(lock_path, lock, result.digest, progress)
        if not reproduced.same:
            reproduced = dataclasses.replace(
                reproduced, differences=_differences(client, reproduced, image, progress))
    if request.no_verify:
        return VerifyOutcome(image, lock_path, None, reproduced)
    return VerifyOutcome(image, lock_path, verify(client, image, lock, progress), reproduced)


def _reproduction(lock_path: Path, part: Lock, digest: tuple[str, str] | None,
                  progress: Progress) -> Reproduction:
    """The image a reproducible build gave against the one ``part`` records; recorded in
    the lock file if it records none (the first reproducible build of the lock)."""
    from relock.errors import RelockError
    from relock.lock import lockfile

    if digest is None:
        raise RelockError("the builder named no digest of the image it wrote")
    text = lockfile.read_text(lock_path)
    full = lockfile.loads(text, str(lock_path))
    made = lockfile.ImageDigest(config=digest[0], manifest=digest[1],
                                platform=part.platform if full.multi else "")
    recorded = part.image_digest()
    if recorded is None:
        lockfile.write(full.with_image(made), lock_path, image=lockfile.header_image(text))
        progress(f"recorded {made.manifest} (config {made.config}) in {lock_path}: every "
                 "reproducible build of it must give that image")
    return Reproduction(made, recorded)


def _differences(engine: Engine, r: Reproduction, image: str,
                 progress: Progress) -> tuple[FileDifference, ...] | None:
    """The files that differ between the image the lock records (if the engine still has it)
    and ``image``; None when the engine has no image of the recorded digest."""
    from relock.errors import ImageNotFoundError
    from relock.image import filediff
    from relock.image import layers as lay
    from relock.template.render import template_command

    recorded = r.recorded
    if recorded is None:
        return None
    for ref in (recorded.manifest, recorded.config):
        if not ref:
            continue
        try:
            engine.image(ref)
        except ImageNotFoundError:
            continue
        progress(f"comparing the files of {image} with the recorded image {ref[:19]}")
        sides = []
        for side in (ref, image):
            with engine.image_layers(side) as found:
                sides.append(lay.read_image(lay.with_steps(found, template_command)))
        return tuple(filediff.compare(sides[0], sides[1]))
    return None


def verify(source: ImageSource, ref: str, lock: Lock,
           progress: Progress = quiet) -> tuple[Drift, ...]:
    """How the image ``ref`` differs from ``lock`` (nothing: it matches)."""
    from relock.build.verify import verify_image

    recorded = _recorded_image(source, ref, lock)
    if recorded:
        progress(f"{ref[:40]} is {recorded}, the image the lock records: nothing more to check")
        return ()
    progress(f"verifying {ref[:40]} against the lock")
    return tuple(verify_image(source, ref, lock))


def _recorded_image(source: ImageSource, ref: str, lock: Lock) -> str:
    """The digest of the image ``ref`` when it is the one a reproducible build of ``lock``
    gave (its ID, which is the config's or the manifest's digest by image store); else ''."""
    from relock.errors import RelockError

    if not lock.image:
        return ""
    image = source.image(ref)
    try:
        recorded = lock.for_platform(str(image.platform)).image_digest() if lock.multi \
            else lock.image_digest()
    except RelockError:
        return ""
    if recorded is None:
        return ""
    return image.id if image.id in {recorded.config, recorded.manifest} - {""} else ""


@dataclass(frozen=True)
class VerifyRequest:
    """What ``relock verify``'s options say."""

    image: str
    lock_path: Path | None = None


def run_verify(request: VerifyRequest, progress: Progress = quiet, *,
               connect: Callable[[], ImageSource] | None = None,
               registry_for: Callable[[str], ArtifactRegistry] | None = None) -> VerifyOutcome:
    """Check the image against the lock (``connect``: the engine; the docker one if None).

    An ``oci://`` image is read from its registry, no engine (``registry_for``: its client;
    relock's if None); without a lock file, the lock is the one attached to the image's
    digest (``relock attach``)."""
    from relock.lock import lockfile
    from relock.lock.locate import default_lock
    from relock.lock.reference import is_registry_ref

    if is_registry_ref(request.image):
        return verify_in_registry(request, progress, registry_for)
    lock_path = default_lock(request.lock_path)
    lock = lockfile.read(lock_path)
    if connect is None:
        from relock.image import engine

        connect = engine.connect
    return VerifyOutcome(request.image, lock_path,
                         verify(connect(), request.image, lock, progress))


def verify_in_registry(request: VerifyRequest, progress: Progress = quiet,
                       registry_for: Callable[[str], ArtifactRegistry] | None = None
                       ) -> VerifyOutcome:
    """``run_verify`` of an ``oci://`` image: every platform of it, read from the registry."""
    import dataclasses

    from relock.freeze.command import hub_mirrors
    from relock.image.registrysource import RegistrySource
    from relock.lock import lockfile
    from relock.lock.reference import DOCKER_HUB, parse, strip_prefix
    from relock.upstream import registry as reg

    clients = registry_for or reg.registry_for
    r = parse(strip_prefix(request.image))
    client = clients(r.host)
    top = client.manifest(r.repo, r.ref)  # a tag named: the digest it holds now
    pinned = f"oci://{client.host}/{r.repo}@{top.digest}"
    said: Path | str = ""
    if request.lock_path is not None:
        lock, said = lockfile.read(request.lock_path), request.lock_path
    else:
        lock, said = attached_lock(client, r.repo, top.digest, progress)
    hub = any(parse(b.ref).host == DOCKER_HUB for b in lock.base if b.ref)
    mirrors = hub_mirrors(progress) if hub else []
    platforms = RegistrySource(mirrors=mirrors, registry_for=clients).platforms(pinned)
    drift: list[Drift] = []
    for platform in platforms:
        source = RegistrySource(mirrors=mirrors, platform=platform, registry_for=clients)
        found = verify(source, pinned, lock, progress)
        drift += [dataclasses.replace(d, name=f"{d.name} [{platform}]") if len(platforms) > 1
                  else d for d in found]
    return VerifyOutcome(request.image, said, tuple(drift))


def attached_lock(client: ArtifactRegistry, repo: str, digest: str,
                  progress: Progress = quiet) -> tuple[Lock, str]:
    """The lock attached to ``repo@digest`` (``relock.upstream.referrers``), read as strictly
    as a lock file, and the name it is known by."""
    from relock.errors import LockfileError
    from relock.lock import lockfile
    from relock.upstream import referrers

    found = referrers.read_artifact(client, repo, digest, referrers.LOCK_TYPE,
                                    lockfile.MAX_BYTES, "lock")
    where = f"{client.host}/{repo}@{found.manifest}"
    progress(f"the lock attached to {digest[:19]} is {where} (listed by {found.listed_by})")
    try:
        text = found.data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LockfileError(f"{where}: the attached lock is not UTF-8 text (byte {e.start})"
                            ) from None
    return lockfile.loads(text, f"the lock attached as {where}"), where
