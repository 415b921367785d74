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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from relock.errors import UsageError
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.blobs import BlobCache
    from relock.build.rebuild import RebuildOptions, ViewSource
    from relock.build.verify import Drift
    from relock.freeze.command import FreezeOutcome, FreezeRequest
    from relock.freeze.freeze import FreezeOptions
    from relock.image.engine import Engine, ImageSource
    from relock.image.filediff import FileDifference
    from relock.image.registrysource import RegistryReader
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
    push: bool = False  # --push: to the registry the tag names, not into the engine


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
    # Of a reproducible build of several platforms (or pushed): each platform's.
    reproduced_each: tuple[Reproduction, ...] = ()


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
    lock, parsed, args = load_template(request.dockerfile, lock_path, request.build_args)
    platforms = build_platforms(request.platform, lock)
    if request.push or len(platforms) > 1:
        return _build_index(request, lock_path, lock, parsed, args, platforms, progress, log,
                            views)
    platform = None if request.platform is None else platforms[0]  # ``all`` of a lock of one
    options = request.flags.options(lock_path, tag=request.tag, platform=platform,
                                    nocache=request.no_cache)
    options = _reproducibly(options, request.reproducible)
    # That platform's part (exit 2 naming it if the lock lacks it), before any step.
    lock = by_manifest(lock.part(platform, str(host())))
    ctx = request.context or Path(parsed.path).parent
    client = engine.connect()
    builds = buildkit.select(client, request.builder)
    if request.reproducible and (problem := builds.reproducible_problem()):
        raise UsageError(f"--reproducible: {problem}")
    progress(f"building with {builds.name}" + _how(lock, request.reproducible))
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


def _reproducibly(options: RebuildOptions, reproducible: bool) -> RebuildOptions:
    """``options`` of a reproducible build: without BuildKit's cache, which keys a COPY by
    its files' contents, not their times (a layer cached from a build of another checkout
    would carry that one's times)."""
    return dataclasses.replace(options, reproducible=True, nocache=True) if reproducible \
        else options


def _how(lock: Lock, reproducible: bool) -> str:
    """What the build's first progress line adds of a reproducible build."""
    from relock.build import rebuild

    return (f", reproducibly (SOURCE_DATE_EPOCH={rebuild.source_date_epoch(lock)}, the "
            "lock's snapshot time, without the build cache)") if reproducible else ""


EVERY_PLATFORM = "all"  # --platform all: every platform the lock holds


def build_platforms(given: str | None, lock: Lock) -> list[str]:
    """The platforms ``--platform`` names (comma-separated; ``all``: the lock's), each
    spelled the one way; none given: the host's in a lock of several platforms, else the
    lock's own. A platform the lock lacks is a ``PlatformMissingError`` naming it."""
    from relock.lock.platform import chosen_list, host

    if given is None:
        return [str(host())] if lock.multi else [lock.platform]
    words = [w.strip() for w in given.split(",")]
    if EVERY_PLATFORM in words:
        if words != [EVERY_PLATFORM]:
            raise UsageError(f"--platform {given}: 'all' names every platform of the lock "
                             "and goes alone")
        return list(lock.all_platforms)
    chosen = chosen_list(words)
    for platform in chosen:
        lock.for_platform(platform)  # exit 2 naming it, before any step
    return chosen


def platforms_part(lock: Lock, platforms: list[str]) -> Lock:
    """What a build of ``platforms`` takes of ``lock``: one platform's part (its base pinned
    by the platform's own manifest), or the lock of just those platforms (each base by its
    image index, as ``relock render`` of a lock of several platforms pins it)."""
    from relock.image.platforms import by_manifest

    if len(platforms) == 1:
        return by_manifest(lock.part(platforms[0], platforms[0]))
    if sorted(platforms) == sorted(lock.all_platforms):
        return lock
    joined = lock.for_platform(platforms[0])
    for platform in platforms[1:]:
        joined = joined.with_part(lock.for_platform(platform))
    return joined


def _build_index(request: BuildRequest, lock_path: Path, lock: Lock, parsed: Dockerfile,
                 args: dict[str, str], platforms: list[str], progress: Progress,
                 log: Progress, views: ViewSources | None) -> VerifyOutcome:
    """``run_build`` of several platforms in one BuildKit build (an image index), or of one
    pushed: loaded into the engine (the containerd image store) or pushed to the registry
    the tag names, then each platform verified against its part of the lock."""
    from relock.build import rebuild
    from relock.image import buildkit, engine

    said = ",".join(platforms)
    where = push_target(request.tag) if request.push else None
    part = platforms_part(lock, platforms)
    ctx = request.context or Path(parsed.path).parent
    client = engine.connect()
    builds = buildkit.select(client, request.builder)
    problem = builds.platforms_problem(len(platforms), request.push)
    if problem:
        raise UsageError(f"{'--push' if len(platforms) == 1 else f'--platform {said}'}: "
                         f"{problem}")
    if request.reproducible and (problem := builds.reproducible_problem()):
        raise UsageError(f"--reproducible: {problem}")
    if request.push:
        builds = builds.pushing()
    options = request.flags.options(lock_path, tag=request.tag, platform=said,
                                    nocache=request.no_cache)
    options = _reproducibly(options, request.reproducible)
    progress(f"building {', '.join(platforms)} in one build with {builds.name}, "
             + (f"pushed to {where}" if where else "loaded into the engine")
             + _how(lock, request.reproducible))
    result = rebuild.rebuild(builds, parsed, part, ctx, options, args, log=log,
                             progress=progress, view=(views or rebuild.Upstream)(options))
    made: dict[str, tuple[str, str]] = {}
    if where is not None:
        image = f"oci://{where}@{result.image_id}"
        progress(f"pushed {image}")
        if request.reproducible:
            made = made_digests(image, platforms)
    else:
        # The engine's name of it: the index under one name, which docker save keeps whole.
        image = request.tag or buildkit.UNTAGGED
        progress(f"built {image} ({result.image_id[:19]}), an image of {', '.join(platforms)}")
        if request.reproducible:
            made = saved_digests(client, image, platforms)
    reproduced = tuple(_reproduction(lock_path, lock.for_platform(p) if lock.multi else lock,
                                     made[p], progress) for p in platforms if p in made)
    if request.no_verify:
        return VerifyOutcome(image, lock_path, None, reproduced_each=reproduced)
    if where is not None:
        drift: tuple[Drift, ...] | None = verify_index(image, lock, progress,
                                                       platforms=platforms)
    else:
        drift = verify_saved(client, image, lock, progress, platforms=platforms)
        if drift is None:  # a build of one platform loads no index: that platform's image
            drift = verify(client, image, part, progress)
    return VerifyOutcome(image, lock_path, drift, reproduced_each=reproduced)


def made_digests(ref: str, platforms: Sequence[str],
                 registry_for: Callable[[str], RegistryReader] | None = None
                 ) -> dict[str, tuple[str, str]]:
    """(config, manifest) digests of each platform's image of the ``oci://`` image ``ref``
    (an index's entries, or the one image), as a reproducible build records them."""
    from relock.image.registrysource import RegistrySource
    from relock.upstream import registry as reg

    source = RegistrySource(registry_for=registry_for or reg.registry_for)
    out = {}
    for platform in platforms:
        held = source.resolve(ref, platform)
        out[platform] = (held.info.id, held.manifest or held.digest)
    return out


def saved_digests(engine: Engine, ref: str, platforms: Sequence[str]
                  ) -> dict[str, tuple[str, str]]:
    """``made_digests`` of the image the engine holds as ``ref`` (read from docker save)."""
    from relock.image import ociarchive

    with engine.image_archive(ref) as saved, ociarchive.reading(saved, ref) as archive:
        return made_digests(f"oci://{archive.host}/saved@{archive.top[1]}", platforms,
                            lambda host: archive)


def push_target(tag: str | None) -> str:
    """``HOST[:PORT]/REPO`` of ``--push``'s ``-t``, which must name its registry."""
    from relock.errors import RegistryError
    from relock.lock.reference import DOCKER_HUB, parse

    if not tag:
        raise UsageError("--push needs -t HOST[:PORT]/REPO:TAG, the registry to push to")
    try:
        r = parse(tag)
    except RegistryError as e:
        raise UsageError(f"--push: -t {e}") from None
    named = tag.split("/", 1)[0]
    if "/" not in tag or not ("." in named or ":" in named or named == "localhost") \
            or r.digest:
        raise UsageError(f"--push: -t {tag} does not name a registry: give "
                         f"HOST[:PORT]/REPO:TAG (e.g. {DOCKER_HUB}/you/app:1 or "
                         "127.0.0.1:5000/app:1)")
    return f"{r.host}/{r.repo}"


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
               connect: Callable[[], Engine] | None = None,
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
    source = connect()
    # An image of several platforms is held whole only by the containerd image store.
    drift = verify_saved(source, request.image, lock, progress) \
        if lock.multi and source.containerd_store() else None
    if drift is None:
        drift = verify(source, request.image, lock, progress)
    return VerifyOutcome(request.image, lock_path, drift)


def verify_in_registry(request: VerifyRequest, progress: Progress = quiet,
                       registry_for: Callable[[str], ArtifactRegistry] | None = None
                       ) -> VerifyOutcome:
    """``run_verify`` of an ``oci://`` image: every platform of it, read from the registry."""
    from relock.lock import lockfile
    from relock.lock.reference import parse, strip_prefix
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
    return VerifyOutcome(request.image, said, verify_index(pinned, lock, progress, clients))


def verify_index(ref: str, lock: Lock, progress: Progress = quiet,
                 registry_for: Callable[[str], RegistryReader] | None = None, *,
                 platforms: Sequence[str] = (), held: Sequence[str] | None = None,
                 cache: BlobCache | None = None) -> tuple[Drift, ...]:
    """Every platform of the ``oci://`` image ``ref`` (``held``: those of them) against its
    part of ``lock``, each drift naming its platform when there are several; each of
    ``platforms`` the image lacks is a drift too (a build of them must give them all).
    ``cache``: where the layers read go (relock's blob cache if None)."""
    from relock.build.verify import Drift
    from relock.freeze.command import hub_mirrors
    from relock.image.registrysource import RegistrySource
    from relock.lock.reference import DOCKER_HUB, parse
    from relock.upstream import registry as reg

    clients = registry_for or reg.registry_for
    hub = any(parse(b.ref).host == DOCKER_HUB for b in lock.base if b.ref)
    mirrors = hub_mirrors(progress) if hub else []
    if held is None:
        held = RegistrySource(mirrors=mirrors, registry_for=clients).platforms(ref)
    drift: list[Drift] = []
    for platform in held:
        if len(held) > 1:
            progress(f"verifying the {platform} image")
        source = RegistrySource(mirrors=mirrors, platform=platform, registry_for=clients,
                                cache=cache)
        found = verify(source, ref, lock, progress)
        drift += [dataclasses.replace(d, name=f"{d.name} [{platform}]") if len(held) > 1
                  else d for d in found]
    drift += [Drift("platform", "image", p, "") for p in platforms if p not in held]
    return tuple(drift)


def verify_saved(engine: Engine, ref: str, lock: Lock, progress: Progress = quiet, *,
                 platforms: Sequence[str] = (),
                 registry_for: Callable[[str], RegistryReader] | None = None
                 ) -> tuple[Drift, ...] | None:
    """Every platform the engine holds of ``ref`` against its part of ``lock``, read from
    ``docker save`` of it (the containerd image store saves an image index whole: each
    platform's manifest, config and layers), the base images from their registries.

    None when the engine holds one platform's image of ``ref`` and ``platforms`` asks for
    no more: ``verify`` reads that one from the engine as ever. ``registry_for``: the
    bases' registries' clients (relock's if None)."""
    import tempfile

    from relock.blobs import BlobCache
    from relock.image import ociarchive
    from relock.upstream import registry as reg

    progress(f"reading each platform's image of {ref[:60]} (docker save)")
    # The layers are the engine's: read from the archive, never kept in relock's cache.
    with engine.image_archive(ref) as saved, ociarchive.reading(saved, ref) as archive, \
            tempfile.TemporaryDirectory(prefix="relock-saved-") as tmp:
        held = archive.platforms()
        if len(held) < 2 and not set(platforms) - set(held):
            return None

        def clients(host: str) -> RegistryReader:
            return archive if host == archive.host else (registry_for or reg.registry_for)(host)

        pinned = f"oci://{archive.host}/saved@{archive.top[1]}"
        return verify_index(pinned, lock, progress, clients, platforms=platforms, held=held,
                            cache=BlobCache(Path(tmp)))


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
