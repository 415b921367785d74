"""Freezing: an image's (or a folder tree's) files into a ``Lock``.

Nothing in the image is run: the dpkg database, APT sources, os-release and
dist-info folders are read as files (see ``relock.image.rootfs``). Hashes of pip
distributions come from the package index pip is configured to use.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from relock.errors import (
    BaseImageError,
    FrontendError,
    ImagePlatformError,
    RegistryError,
    RelockError,
)
from relock.image.rootfs import RootFS, TreeFS
from relock.inventory import apt, pyenv
from relock.lock import reference
from relock.lock.lockfile import (
    AptPackage,
    AptSource,
    Base,
    Distro,
    Download,
    Frontend,
    Input,
    Lock,
    PipPackage,
    PythonEnv,
)
from relock.lock.platform import host
from relock.progress import Progress, quiet
from relock.upstream.debindex import DebEntry

if TYPE_CHECKING:
    from relock.image.engine import ImageInfo, ImageSource
    from relock.image.registrysource import RegistrySource
    from relock.template.dockerfile import Dockerfile
    from relock.upstream.archive import AptArchive
    from relock.upstream.index import PackageIndex


@dataclass(frozen=True)
class Inventory:
    """What an image's files say, before the index is asked anything."""

    distro: Distro
    sources: tuple[AptSource, ...]
    apt: tuple[AptPackage, ...]
    envs: tuple[PythonEnv, ...]
    dists: tuple[pyenv.Distribution, ...]
    release_date: datetime | None
    warnings: tuple[str, ...] = ()
    # The keyring files apt in the image trusts, by path (read with deb_lists).
    keyrings: Mapping[str, bytes] = field(default_factory=dict)


@dataclass
class FreezeOptions:
    """Choices a user makes when freezing."""

    snapshot: str | None = None
    allow_local_base: bool = False
    index: PackageIndex | None = None
    # Record each .deb's sha256 and pool filename: from the image's own APT
    # lists, else from ``archive`` (the indexes of the image's sources). Verify
    # and diff leave it off: they compare versions, and parsing lists is slow.
    deb_entries: bool = False
    archive: AptArchive | None = None
    # The registry digest of a frontend image reference (``relock.freeze.command`` asks
    # the registry, Docker Hub names through the engine's mirrors); None: the frontend a
    # "# syntax=" line names is not recorded.
    frontends: Callable[[str], str] | None = None


@dataclass(frozen=True)
class FreezeResult:
    """A lock and what the user should hear about it."""

    lock: Lock
    warnings: tuple[str, ...]
    # The plain downloads whose files the image holds where the template puts them
    # (``relock.freeze.downloads.from_image``); the command adds them and the rest.
    held: tuple[Download, ...] = ()


def os_release(fs: RootFS) -> Distro | None:
    """The image's distro from os-release, or None if it has none."""
    data = fs.read_bytes("/etc/os-release") or fs.read_bytes("/usr/lib/os-release")
    if data is None:
        return None
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().isidentifier():
            try:
                words = shlex.split(value)
            except ValueError:
                words = [value.strip()]
            fields[key.strip()] = words[0] if words else ""
    codename = fields.get("VERSION_CODENAME", "")
    if not codename and fields.get("ID") == "debian":
        # Debian testing/sid leave VERSION_CODENAME out of some releases.
        codename = fields.get("DEBIAN_CODENAME", "")
    return Distro(id=fields.get("ID", "linux"), version_id=fields.get("VERSION_ID", ""),
                  codename=codename)


def take_inventory(fs: RootFS, progress: Progress = quiet,
                   deb_lists: bool = False) -> Inventory:
    """Read distro, APT and Python facts from a file tree.

    With ``deb_lists``, each package's .deb entry (sha256, filename) is taken
    from the APT lists the image kept, if any.
    """
    warnings: list[str] = []
    distro = os_release(fs)
    if distro is None:
        warnings.append("no /etc/os-release: the distro is unknown")
        distro = Distro(id="unknown")
    packages: list[AptPackage] = []
    sources: list[AptSource] = []
    release_date = None
    keyrings: dict[str, bytes] = {}
    if apt.has_dpkg(fs):
        progress("reading the dpkg database")
        packages = apt.installed_packages(fs)
        sources = apt.sources(fs)
        release_date = apt.release_date(fs)
        if deb_lists:
            debs = apt.deb_entries(fs, [(p.name, p.version, p.arch) for p in packages])
            packages = [_with_deb(p, debs.get((p.name, p.version, p.arch))) for p in packages]
            keyrings = apt.keyrings(fs, sources)
    else:
        warnings.append("no dpkg database: no APT packages recorded")
    progress("looking for Python environments")
    envs, dists = pyenv.pip_installed(fs)
    return Inventory(
        distro=distro,
        sources=tuple(sources),
        apt=tuple(packages),
        envs=tuple(envs),
        dists=tuple(dists),
        release_date=release_date,
        warnings=tuple(warnings),
        keyrings=keyrings,
    )


def _with_deb(pkg: AptPackage, entry: DebEntry | None) -> AptPackage:
    if entry is None:
        return pkg
    return dataclasses.replace(pkg, sha256=entry.sha256, filename=entry.filename)


def locate_debs(inv: Inventory, options: FreezeOptions, created: datetime | None = None,
                progress: Progress = quiet) -> Inventory:
    """``inv`` with the .deb entry of every APT package the image's lists did not have.

    They come from the package indexes of the image's own sources, at the
    lock's snapshot when the snapshot service answers, else live. Packages
    found nowhere (installed from a local .deb, or gone from the archive)
    keep empty fields and are named in a warning.
    """
    if not options.deb_entries or not inv.apt:
        return inv
    missing = [p for p in inv.apt if not p.sha256]
    packages = {p.key: p for p in inv.apt}
    warnings = list(inv.warnings)
    if missing and options.archive is not None:
        from relock.upstream.archive import SNAPSHOT_URLS

        snapshot, _ = _snapshot(options, inv, created)
        arches = Counter(p.arch for p in inv.apt if p.arch != "all")
        native = arches.most_common(1)[0][0] if arches else "all"
        progress(f"asking the image's APT sources for {len(missing)} .deb hashes")
        archive = options.archive
        hits, asked = archive.cache_hits, archive.requests_made
        for arch in sorted({p.arch for p in missing} - {"all"} | {native}):
            wanted = [(p.name, p.version, p.arch) for p in missing
                      if p.arch == arch or (p.arch == "all" and arch == native)]
            found = archive.deb_entries(
                inv.sources, arch, wanted, snapshot=snapshot,
                snapshot_url=SNAPSHOT_URLS.get(inv.distro.id), keyrings=inv.keyrings)
            for p in missing:
                entry = found.get((p.name, p.version, p.arch))
                if entry is not None:
                    packages[p.key] = _with_deb(p, entry)
        located = sum(1 for p in missing if packages[p.key].sha256)
        progress(f".deb hashes of {located}/{len(missing)} packages: "
                 f"{archive.cache_hits - hits} cached answers, "
                 f"{archive.requests_made - asked} archive requests")
        warnings += [w for w in archive.warnings if w not in warnings]
    unknown = sorted(f"{p.name}={p.version}" for p in packages.values() if not p.sha256)
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more"
                                           if len(unknown) > 10 else "")
        why = ("--no-archive: the archive was not asked" if options.archive is None
               else "in no package index of the image's sources")
        warnings.append(f"no .deb sha256 for {len(unknown)} APT packages ({why}): {shown}")
    return dataclasses.replace(inv, apt=tuple(packages.values()), warnings=tuple(warnings))


def _snapshot(options: FreezeOptions, inv: Inventory,
              created: datetime | None) -> tuple[str, str]:
    if options.snapshot:
        try:
            apt.parse_snapshot(options.snapshot)
        except ValueError:
            raise RelockError(
                f"--snapshot {options.snapshot!r} is not of the form YYYYMMDDTHHMMSSZ"
            ) from None
        return options.snapshot, "user"
    if not inv.apt:
        return "", ""
    if inv.release_date is not None:
        return apt.format_snapshot(inv.release_date), "release-date"
    if created is not None:
        return apt.format_snapshot(created), "image-created"
    return "", ""


def _pip_entries(inv: Inventory, index: PackageIndex | None,
                 progress: Progress) -> tuple[PipPackage, ...]:
    hashes: dict[tuple[str, str], tuple[str, ...]] = {}
    # The project's own packages (installed from a folder) are on no index: the hash of
    # what was built stands for them (relock.freeze.ownpackage).
    wanted = {(d.name, d.version) for d in inv.dists if not d.local_dir}
    if index is not None and wanted:
        progress(f"asking the package index for hashes of {len(wanted)} distributions")
        hits, asked = index.cache_hits, index.requests_made
        hashes = index.hashes_many(wanted)
        progress(f"hashes of {len(wanted)} distributions: {index.cache_hits - hits} from the "
                 f"cache, {index.requests_made - asked} index requests")
    return tuple(
        PipPackage(name=d.name, version=d.version, env=d.env, requested=d.requested,
                   hashes=hashes.get((d.name, d.version), ()))
        if not d.local_dir else
        PipPackage(name=d.name, version=d.version, env=d.env, requested=d.requested,
                   hashes=(f"sha256:{d.record_sha256}",) if d.record_sha256 else (),
                   kind="context")
        for d in inv.dists
    )


def lock_from_inventory(inv: Inventory, *, dockerfile: Dockerfile | None,
                        bases: tuple[Base, ...], platform: str, options: FreezeOptions,
                        created: datetime | None = None,
                        progress: Progress = quiet, frontend: Frontend | None = None) -> Lock:
    """Combine an inventory, base pins and index hashes into a lock."""
    snapshot, snapshot_from = _snapshot(options, inv, created)
    return Lock(
        input=Input(dockerfile=dockerfile.path if dockerfile else "",
                    sha256=dockerfile.sha256 if dockerfile else "",
                    build_args=dict(dockerfile.build_args) if dockerfile else {}),
        distro=inv.distro,
        platform=platform,
        snapshot=snapshot,
        snapshot_from=snapshot_from,
        base=bases,
        frontend=frontend,
        apt_sources=inv.sources,
        python=inv.envs,
        apt=inv.apt,
        pip=_pip_entries(inv, options.index, progress),
    ).sorted()


def freeze_rootfs(root: Path, dockerfile: Dockerfile | None, options: FreezeOptions,
                  progress: Progress = quiet) -> FreezeResult:
    """Freeze a plain folder tree (a debootstrap output, an unpacked image)."""
    if not root.is_dir():
        raise RelockError(f"{root}: not a folder")
    fs = TreeFS(root)
    inv = take_inventory(fs, progress, deb_lists=options.deb_entries)
    inv = locate_debs(inv, options, progress=progress)
    lock = lock_from_inventory(inv, dockerfile=dockerfile, bases=(), platform=str(host()),
                               options=options, progress=progress)
    held: dict[str, Download] = {}
    if dockerfile is not None:
        from relock.blobs import BlobCache
        from relock.freeze.downloads import from_image

        held = from_image(dockerfile, fs, BlobCache(), str(host()))
    return FreezeResult(lock, (*inv.warnings, *skipped_warning(fs.skipped)),
                        tuple(held.values()))


def skipped_warning(skipped: Mapping[str, str], shown: int = 8) -> list[str]:
    """One line naming what a tree freeze left out as not the tree's own, if anything."""
    if not skipped:
        return []
    by_why: dict[str, list[str]] = {}
    for path, why in sorted(skipped.items()):
        by_why.setdefault(why, []).append(path)
    parts = []
    for why, paths in sorted(by_why.items()):
        more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
        parts.append(f"{', '.join(paths[:shown])}{more} ({why})")
    return ["not the tree's own, so not read: " + "; ".join(parts)]


def add_platform(part: Lock, platform: str | None, existing: Lock | None) -> Lock:
    """The lock to write when freezing one image of ``platform``.

    ``part`` is the image's own lock; its platform is the engine's word for
    the image. With ``platform`` the image must be of it, and ``existing`` (the
    lock already at the output, if any) keeps every other platform's part:
    that platform is added or replaced. Without it, ``part`` is the lock.
    """
    if platform is None:
        return part
    if part.platform != platform:
        raise ImagePlatformError(
            f"the image is {part.platform or 'of no known platform'}, not {platform}: "
            f"build it with --platform {platform}, or freeze it without --platform")
    if existing is None:
        return part
    return existing.with_part(part)


def pin_bases(source: ImageSource, dockerfile: Dockerfile, allow_local: bool,
              built: ImageInfo | None = None) -> tuple[tuple[Base, ...], list[str]]:
    """The registry digest of every external FROM of ``dockerfile``.

    With ``built`` (the image frozen), the final stage's base is the one that
    image sits on, even if the tag has moved since the build.
    """
    bases: list[Base] = []
    warnings: list[str] = []
    final_root = dockerfile.root(dockerfile.stages[-1])
    for stage in dockerfile.stages:
        if not stage.external:
            continue
        ref = reference.split(stage.ref)
        if ref.digest.startswith("sha256:"):
            bases.append(Base(stage.index, stage.ref, ref.digest, name=stage.name))
            continue
        image = source.image(stage.ref)
        if built is not None and stage == final_root:
            image = _base_under(source, built, stage.ref, image, warnings)
        digests = image.digests_for(stage.ref)
        if digests and image.local_digests:
            digests = _in_registry(source, stage.ref, digests, warnings)
        if digests:
            bases.append(Base(stage.index, stage.ref, digests[0], name=stage.name))
        elif allow_local:
            warnings.append(
                f"base image {stage.ref} has no registry digest; locked by image ID "
                f"{image.short_id}, which other hosts cannot pull"
            )
            bases.append(Base(stage.index, stage.ref, image_id=image.id, name=stage.name))
        else:
            raise BaseImageError(
                f"base image {stage.ref} ({image.short_id}) has no registry digest: it was "
                "built or imported locally. Push it to a registry and pull it back, or pass "
                "--allow-local-base to lock it by image ID (other hosts cannot reproduce that)"
            )
    return tuple(bases), warnings


def pin_frontend(dockerfile: Dockerfile, resolve: Callable[[str], str] | None
                 ) -> tuple[Frontend | None, list[str]]:
    """The frontend the template's build runs, pinned to its registry digest (``resolve``'s).

    That is the image a ``BUILDKIT_SYNTAX`` build argument names (BuildKit takes it before
    the template's line) if it is one image reference, else the ``# syntax=`` line's; a
    reference already pinned (``@sha256:``) is taken as it is. None without either, or
    without ``resolve``.
    """
    from relock.template.dockerfile import SYNTAX_ARG

    if resolve is None:
        return None, []
    arg = dockerfile.build_args.get(SYNTAX_ARG)
    if arg is not None:
        words = arg.split()
        if len(words) != 1:
            return None, [f"--build-arg {SYNTAX_ARG}={arg[:80]!r} is not one image reference "
                          "(frontend options are not pinned): the frontend is not locked"]
        ref, build_arg = words[0], True
        what = f"--build-arg {SYNTAX_ARG}={ref}"
    else:
        syntax = dockerfile.syntax
        if syntax is None:
            return None, []
        ref, build_arg = syntax.ref, False
        what = f"{dockerfile.path}:{syntax.line + 1}: # syntax={ref}"
    try:
        parsed = reference.parse(ref)
    except RegistryError as e:
        raise FrontendError(f"{what}: the frontend is not an image reference ({e})") from None
    if parsed.digest:
        return Frontend(ref, parsed.digest, build_arg), []
    try:
        digest = resolve(ref)
    except RelockError as e:
        raise FrontendError(f"{what}: cannot pin the frontend to its registry digest "
                            f"({e})") from None
    return Frontend(ref, digest, build_arg), []


def _in_registry(source: ImageSource, ref: str, digests: list[str],
                 warnings: list[str]) -> list[str]:
    """Those of ``digests`` a registry has, where the store names built images by digest too.

    The containerd image store gives an image built here a digest as it gives a pulled one;
    the engine's registry for ``ref`` (asked as a pull would ask it) tells them apart.
    """
    repo = reference.split(ref).name
    known = []
    for digest in digests:
        has = source.registry_has(f"{repo}@{digest}")
        if has is None:
            warnings.append(f"could not ask the registry of {ref} whether it has {digest}; "
                            "locked it (other hosts pull it from there)")
        if has is not False:
            known.append(digest)
    return known


def _base_under(source: ImageSource, built: ImageInfo, ref: str, tagged: ImageInfo,
                warnings: list[str]) -> ImageInfo:
    """The image of ``ref``'s repository that ``built`` sits on.

    Usually that is what ``ref`` names now; after a pull that moved the tag it
    is an older image of the same repository, still in the source.
    """
    if built.sits_on(tagged):
        return tagged
    candidates = [img for img in source.images()
                  if img.digests_for(ref) and built.sits_on(img)]
    if not candidates:
        raise BaseImageError(
            f"the image was not built on {ref} as the engine has it now ({tagged.short_id}): "
            "the tag has moved since the build and the base it was built on is gone; "
            "rebuild the image, or pull that base by digest"
        )
    found = max(candidates, key=lambda img: len(img.layers))
    if found.platform == tagged.platform:
        # The engine keeps one image per tag: for an image of another platform
        # the tag naming this host's image is no news.
        warnings.append(f"{ref} has moved since the build; locked the digest the image sits on")
    return found


def freeze_image(source: ImageSource, ref: str, dockerfile: Dockerfile | None,
                 options: FreezeOptions, progress: Progress = quiet) -> FreezeResult:
    """Freeze the image ``ref`` of ``source``, built from ``dockerfile``.

    Without a Dockerfile there are no FROM lines to pin: the lock has no
    ``base`` entries (``relock verify`` and ``relock diff`` of an image).
    """
    image = source.image(ref)
    bases: tuple[Base, ...] = ()
    warnings: list[str] = []
    frontend = None
    if dockerfile is not None:
        bases, warnings = pin_bases(source, dockerfile, options.allow_local_base, built=image)
        frontend, more = pin_frontend(dockerfile, options.frontends)
        warnings += more
    progress(f"reading the files of {ref} ({image.short_id})")
    held: dict[str, Download] = {}
    from relock.freeze.downloads import from_image, image_paths

    also = image_paths(dockerfile, str(image.platform)) if dockerfile is not None else ()
    with source.open_rootfs(image, also) as fs:
        inv = take_inventory(fs, progress, deb_lists=options.deb_entries)
        if dockerfile is not None:
            from relock.blobs import BlobCache

            held = from_image(dockerfile, fs, BlobCache(), str(image.platform))
    inv = locate_debs(inv, options, image.created, progress)
    lock = lock_from_inventory(inv, dockerfile=dockerfile, bases=bases,
                               platform=str(image.platform), options=options,
                               created=image.created, progress=progress, frontend=frontend)
    return FreezeResult(lock, (*warnings, *inv.warnings), tuple(held.values()))


def freeze_index(source: RegistrySource, ref: str, dockerfile: Dockerfile | None,
                 options: FreezeOptions, platforms: Sequence[str] = (),
                 existing: Lock | None = None, progress: Progress = quiet) -> FreezeResult:
    """Freeze every platform of the registry image ``ref`` (or ``platforms``) into one lock.

    Each platform's part is what freezing that platform's image alone gives;
    the bases are pinned in their registries (the tag's digest, and the
    platform's manifest of it). With ``platforms``, ``existing`` (the lock at
    the output) keeps its other platforms' parts.
    """
    from relock.template.dockerfile import stages_to_freeze

    have = source.platforms(ref)
    chosen = list(dict.fromkeys(platforms)) or have
    missing = [p for p in chosen if p not in have]
    if missing:
        raise ImagePlatformError(f"{ref} has no {', '.join(missing)} image (it has "
                                 f"{', '.join(have) or 'none'})")
    lock = existing if platforms else None
    warnings: list[str] = []
    frontend = None
    if dockerfile is not None:
        frontend, warnings = pin_frontend(dockerfile, options.frontends)
    if dockerfile is not None and stages_to_freeze(dockerfile):
        warnings.append("the build stages are not recorded: a registry holds the final image "
                        "only (a pinned build of a template whose stages install packages then "
                        "fails); freeze the image from the engine that built it for them")
    from relock.freeze.downloads import from_image, image_paths

    held: dict[str, Download] = {}
    for platform in chosen:
        image = source.resolve(ref, platform)
        bases: tuple[Base, ...] = ()
        also: tuple[str, ...] = ()
        if dockerfile is not None:
            bases = registry_bases(source, dockerfile, image.info, platform)
            also = image_paths(dockerfile, platform)
        progress(f"reading the files of {ref} for {platform} ({image.info.short_id})")
        with source.open_rootfs(image.info, also) as fs:
            inv = take_inventory(fs, progress, deb_lists=options.deb_entries)
            if dockerfile is not None:
                from relock.blobs import BlobCache

                held.update(from_image(dockerfile, fs, BlobCache(), platform))
        inv = locate_debs(inv, options, image.info.created, progress)
        part = lock_from_inventory(inv, dockerfile=dockerfile, bases=bases, platform=platform,
                                   options=options, created=image.info.created,
                                   progress=progress, frontend=frontend)
        lock = part if lock is None else lock.with_part(part)
        warnings += [w for w in inv.warnings if w not in warnings]
    assert lock is not None
    return FreezeResult(lock, tuple(warnings), tuple(held.values()))


def registry_bases(source: RegistrySource, dockerfile: Dockerfile, built: ImageInfo,
                   platform: str) -> tuple[Base, ...]:
    """Each external FROM pinned in its registry: the digest its tag names (an index's, for a
    multi-platform base) and ``platform``'s manifest of it.

    The final stage's base must be the one ``built`` sits on (its layers are
    the bottom of ``built``'s): a registry keeps no older images of a tag.
    """
    bases = []
    final_root = dockerfile.root(dockerfile.stages[-1])
    for stage in dockerfile.stages:
        if not stage.external:
            continue
        found = source.resolve(stage.ref, platform)
        pinned = reference.split(stage.ref).digest.startswith("sha256:")
        if stage == final_root and not pinned and not built.sits_on(found.info):
            raise BaseImageError(
                f"the {platform} image was not built on {stage.ref} as its registry has it "
                f"now ({found.digest}): the tag has moved since the build; rebuild and push "
                "the image, or pin the FROM by the digest it was built on")
        bases.append(Base(stage.index, stage.ref, found.digest, name=stage.name,
                          manifest=found.manifest))
    return tuple(bases)
