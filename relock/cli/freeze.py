"""``relock freeze``: read a built image into a lock file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from relock.cli.common import (
    PLATFORMS,
    build_arg_option,
    cli,
    dockerfile_option,
    progress,
    user_errors,
    warn,
)

if TYPE_CHECKING:
    from relock.freeze.command import FreezeOutcome


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
              type=PLATFORMS,
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
    from relock.build.command import run_freeze
    from relock.freeze.command import FreezeRequest

    request = FreezeRequest(
        image=image, dockerfile=dockerfile, output=output, name=name, rootfs=rootfs,
        snapshot=snapshot, allow_local_base=allow_local_base, no_index=no_index,
        no_archive=no_archive, context=context, final_only=final_only,
        platforms=platforms, build_args=build_args)
    with user_errors():
        outcome = run_freeze(request, progress, warn)
    _print_summary(outcome, as_json)


def _print_summary(outcome: FreezeOutcome, as_json: bool) -> None:
    """What was written: JSON for scripts, else one line."""
    lock, out = outcome.lock, outcome.path
    summary = {
        "lock": str(out),
        "apt": len(lock.apt),
        "pip": len(lock.pip),
        "base": len(lock.base),
        "snapshot": lock.snapshot,
        "platforms": list(lock.all_platforms),
        "warnings": list(outcome.warnings),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        click.echo(f"wrote {out}: {len(lock.apt)} apt, {len(lock.pip)} pip, "
                   f"{len(lock.base)} base, snapshot {lock.snapshot or '-'}")
