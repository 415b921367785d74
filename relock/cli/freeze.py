"""``relock freeze``: read a built image into a lock file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from relock.cli.common import (
    build_arg_option,
    cli,
    dockerfile_option,
    lock_name,
    progress,
    user_errors,
    warn,
)

if TYPE_CHECKING:
    from relock.image.engine import ImageSource
    from relock.image.registrysource import RegistrySource
    from relock.template.dockerfile import Dockerfile


@cli.command()
@click.argument("image", required=False)
@dockerfile_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the lock. [default: locks/NAME.lock]")
@click.option("--name", help="NAME of the default output path. [default: from IMAGE; "
                              "an image ID has none: give --name or -o]")
@click.option("--rootfs", type=click.Path(file_okay=False, path_type=Path),
              help="Freeze this folder tree (debootstrap output, unpacked image) "
                   "instead of an image; no engine needed.")
@click.option("--snapshot", metavar="YYYYMMDDTHHMMSSZ",
              help="The APT snapshot time to lock. [default: the image's Release "
                   "files' Date, else its creation time]")
@click.option("--allow-local-base", is_flag=True,
              help="Lock a base image that has no registry digest by its image ID "
                   "(other hosts cannot reproduce that).")
@click.option("--no-index", is_flag=True,
              help="Do not ask the Python package index for hashes (the lock then cannot "
                   "drive a --require-hashes build). APT is not affected.")
@click.option("--no-archive", is_flag=True,
              help="Do not ask the image's APT sources for the .deb sha256 and pool path of "
                   "packages its own APT lists do not record; those entries stay empty.")
@click.option("--context", type=click.Path(file_okay=False, path_type=Path),
              help="The build context IMAGE was built from, to read its build stages "
                   "from the build cache. [default: the template's folder]")
@click.option("--final-only", is_flag=True,
              help="Do not record what build stages installed (a pinned build of a "
                   "template whose stages install packages then fails).")
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH",
              help="The platform IMAGE is for (linux/arm64): its part is added to the lock "
                   "at the output, or replaces that platform's part there; the other "
                   "platforms' parts stay. For an oci:// IMAGE: the platforms of its index "
                   "to freeze (repeatable, or a comma list). [default: oci://, every one]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@build_arg_option
def freeze(image: str | None, dockerfile: Path, output: Path | None, name: str | None,
           rootfs: Path | None, snapshot: str | None, allow_local_base: bool,
           no_index: bool, no_archive: bool, context: Path | None, final_only: bool,
           platforms: tuple[str, ...], as_json: bool,
           build_args: dict[str, str]) -> None:
    """Read IMAGE's files into a lock file.

    Records the base image digests of Dockerfile.in's FROM lines, the distro,
    the APT sources and snapshot time, every dpkg package (name, version,
    arch, with the sha256 and pool path of its .deb) and every pip-installed
    distribution with the sha256 of its files on the package index pip is
    configured to use. Build stages that run something are built again from
    the engine's build cache (--target) and what they hold beyond the final
    image is recorded too, so that a pinned build can offer it. Nothing in
    the image is run. The lock is written atomically: on any error the old
    one stays.

    The .deb hashes come from the APT lists the image kept; without them,
    from the Packages indexes of the image's own sources (at the snapshot
    when the snapshot service answers, else live), each Release checked
    with the image's own keys (gpgv) as apt would, cached under
    ~/.cache/relock/apt. Packages found in no index (a local .deb) keep
    empty fields and are named in a warning. --no-index and --no-archive are
    independent: one is about the Python index, the other about APT.

    \b
    IMAGE may name an image in a registry instead of the engine:
    oci://HOST[:PORT]/REPO:TAG (or @sha256:...), as stores are named. It is
    read from the registry, no engine needed; a multi-platform image (an
    image index) gives one lock of all its platforms, or of those --platform
    chooses. Each platform's part is what freezing that platform's image
    from the engine gives, but for build stages (a registry has none).

    \b
    Examples:
      relock freeze sci                       # -> locks/sci.lock
      relock freeze oci://127.0.0.1:5000/team/sci:1   # every platform
      relock freeze sci -f Dockerfile.in -o locks/2026-11.lock
      relock freeze --rootfs /srv/chroot --name chroot
      relock freeze sci-arm64 --platform linux/arm64 -o locks/sci.lock
    """
    from relock.files import writable_target
    from relock.freeze import freeze as fz
    from relock.lock.lockfile import read, write
    from relock.template import dockerfile as df
    from relock.upstream.archive import Archive
    from relock.upstream.archive import default_cache_dir as apt_cache_dir

    if (image is None) == (rootfs is None):
        raise click.UsageError("give either IMAGE or --rootfs DIR")
    from relock.lock.platform import spelled
    from relock.lock.reference import is_registry_ref, strip_prefix

    label = strip_prefix(image) if image else str(rootfs)
    out = output or Path("locks") / f"{name or lock_name(label)}.lock"
    chosen = [spelled(p.strip()) for text in platforms for p in text.split(",") if p.strip()]
    from_registry = image is not None and is_registry_ref(image)
    if len(chosen) > 1 and not from_registry:
        raise click.UsageError("an image in the engine is of one platform: give one --platform, "
                               "or name a multi-platform image in a registry (oci://HOST/REPO:TAG)")
    platform = chosen[0] if chosen else None
    with user_errors():
        writable_target(out)  # a device or folder there: refuse before the work
        if image is not None or dockerfile.exists():
            parsed = df.load(dockerfile, build_args)
        else:
            parsed = None
        index = None
        if not no_index:
            from relock.upstream.index import Index, default_cache_dir, pip_config

            index = Index(pip_config(), default_cache_dir())
        archive = None if no_archive else Archive(apt_cache_dir())
        options = fz.FreezeOptions(snapshot=snapshot, allow_local_base=allow_local_base,
                                   index=index, deb_entries=True, archive=archive)
        existing = read(out) if chosen and out.exists() else None
        images: ImageSource | None = None  # the engine's, for an engine image
        if rootfs is not None:
            result = fz.freeze_rootfs(rootfs, parsed, options, progress)
        elif from_registry:
            assert image is not None
            source = registry_source(parsed)
            result = fz.freeze_index(source, image, parsed, options, chosen, existing, progress)
        else:
            assert parsed is not None and image is not None
            from relock.build.stages import freeze_stages
            from relock.image.enginefiles import local_images, sdk_engine
            from relock.template.dockerfile import stages_to_freeze

            images = local_images()
            result = fz.freeze_image(images, image, parsed, options, progress)
            if not final_only and stages_to_freeze(parsed):
                staged = freeze_stages(sdk_engine(images), parsed, context or dockerfile.parent,
                                       result.lock, options, progress)
                result = fz.FreezeResult(staged, result.warnings)
        if not from_registry:
            part, more = result.lock, list[str]()
            if platform is not None and part.platform == platform:
                from relock.image.enginefiles import sdk_engine
                from relock.image.platforms import with_manifests

                # The engine's mirrors: only an engine client can ask for them.
                mirrors = sdk_engine(images).registry_mirrors() if images is not None else []
                part, more = with_manifests(part, platform, mirrors=mirrors)
            result = fz.FreezeResult(fz.add_platform(part, platform, existing),
                                     (*result.warnings, *more))
        for line in result.warnings:
            warn(line)
        write(result.lock, out, image=image or f"--rootfs {rootfs}",
              platform="" if from_registry else platform or "")
    lock = result.lock
    summary = {
        "lock": str(out),
        "apt": len(lock.apt),
        "pip": len(lock.pip),
        "base": len(lock.base),
        "snapshot": lock.snapshot,
        "platforms": list(lock.all_platforms),
        "warnings": list(result.warnings),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        click.echo(f"wrote {out}: {len(lock.apt)} apt, {len(lock.pip)} pip, "
                   f"{len(lock.base)} base, snapshot {lock.snapshot or '-'}")


def registry_source(parsed: Dockerfile | None) -> RegistrySource:
    """A registry source; Docker Hub names go through the engine's registry mirrors, as
    the engine's own pulls do (none when no engine answers)."""
    from relock.errors import RelockError
    from relock.image.registrysource import RegistrySource
    from relock.lock.reference import DOCKER_HUB, parse

    mirrors: list[str] = []
    hub = parsed is not None and any(
        s.external and parse(s.ref).host == DOCKER_HUB for s in parsed.stages)
    if hub:
        from relock.image import engine

        try:
            mirrors = engine.connect().registry_mirrors()
        except RelockError as e:
            warn(f"no engine to ask for registry mirrors ({e}); Docker Hub is asked directly")
    return RegistrySource(mirrors=mirrors)
