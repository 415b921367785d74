"""``relock render``, ``relock build``, ``relock serve`` and ``relock verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from relock.build.command import RENDERED_NAME
from relock.cli.common import (
    BUILD_PLATFORMS,
    PLATFORM,
    build_arg_option,
    build_log,
    build_log_shown,
    builder_option,
    cli,
    lock_option,
    progress,
    rebuild_options,
    store_views,
    template_option,
    user_errors,
)
from relock.errors import EXIT_DIFFERS

if TYPE_CHECKING:
    from relock.build.command import RebuildFlags, Reproduction, VerifyOutcome


@cli.command("render")
@template_option
@lock_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Where to write the pinned Dockerfile. [default: {RENDERED_NAME} beside "
                   "the template]")
@click.option("--view-url", metavar="URL",
              help="Where the build will reach the locked view (`relock serve`). "
                   "[default: http://127.0.0.1:7780]")
@build_arg_option
@click.option("--force", is_flag=True,
              help="Use the lock even if it was frozen from another version of the template.")
@click.option("--platform", metavar="OS/ARCH", type=PLATFORM,
              help="Render for this platform's part of the lock only, its base pinned by the "
                   "platform's own manifest. [default: every platform the lock holds]")
def render_cmd(dockerfile: Path | None, lock_path: Path | None, output: Path | None,
               view_url: str | None, build_args: dict[str, str], force: bool,
               platform: str | None) -> None:
    """Write the pinned Dockerfile for another builder.

    Every FROM is pinned to its locked digest and every RUN is pointed at
    the locked view, which `relock serve` runs on loopback: APT, pip and uv
    then see only the lock's packages, each checked against the lock. The
    template is never overwritten. `relock build` does all of this itself;
    render is for builds that relock does not drive.

    A lock of several platforms gives one Dockerfile for all of them: each
    FROM names the image index, and each RUN takes the APT packages of the
    architecture dpkg reports in the build (`relock serve` serves each
    platform's part), so `docker build --platform linux/arm64` gets arm64's.

    \b
    Example:
      relock render --lock locks/sci.lock            # -> Dockerfile.relock
      relock serve --lock locks/sci.lock &           # the locked view
      docker build --network host -f Dockerfile.relock .
    """
    from relock.build.command import RenderRequest, run_render

    request = RenderRequest(dockerfile=dockerfile, lock_path=lock_path, output=output,
                            view_url=view_url, build_args=build_args, force=force,
                            platform=platform)
    with user_errors():
        out = run_render(request)
    click.echo(f"wrote {out}")


@cli.command("serve")
@lock_option
@rebuild_options
@click.option("--platform", metavar="OS/ARCH", type=PLATFORM,
              help="Serve this platform's part of the lock only (for a Dockerfile rendered "
                   "with the same --platform). [default: every platform the lock holds]")
def serve_cmd(lock_path: Path | None, flags: RebuildFlags, platform: str | None) -> None:
    """Serve the locked view on loopback until interrupted.

    Fetches the locked .deb files the base images do not hold (checked
    against the lock, cached), then serves them as an APT repository and
    the locked Python files as a package index, for a Dockerfile made by
    `relock render`. Stop it with Ctrl-C. For a lock of several platforms
    the APT repository of each platform's part is also served under
    /apt/ARCH/ (ARCH as dpkg names it: amd64, arm64).
    """
    from relock.build.command import ServeRequest, run_serve

    request = ServeRequest(lock_path=lock_path, flags=flags, platform=platform)
    with user_errors():
        outcome = run_serve(request, progress, ready=click.echo, views=store_views(flags.store))
    if outcome.unlocked:
        progress(f"asked for but not in the lock: {', '.join(outcome.unlocked)}")


@cli.command("build")
@template_option
@lock_option
@click.option("-t", "--tag", help="Name the built image (with --push: HOST[:PORT]/REPO:TAG).")
@click.option("--platform", type=BUILD_PLATFORMS, metavar="OS/ARCH[,...]",
              help="Target platform(s), e.g. linux/amd64, or linux/amd64,linux/arm64 (one "
                   "BuildKit build, an image index), or all: every platform the lock holds. "
                   "[default: this machine's]")
@click.option("--push", is_flag=True,
              help="Push the image (an index for several platforms) to the registry -t "
                   "names instead of loading it into the engine, and verify it there.")
@click.option("--context", type=click.Path(file_okay=False, path_type=Path),
              help="Build context. [default: the template's folder]")
@click.option("--no-cache", is_flag=True, help="Do not reuse cached layers.")
@click.option("--no-verify", is_flag=True, help="Skip checking the image against the lock.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the build log.")
@click.option("--reproducible", is_flag=True,
              help="Build the same image on every host and day (BuildKit, the containerd "
                   "image store): dated by the lock's snapshot, checked against the digest "
                   "the lock records (the first such build records it).")
@builder_option
@rebuild_options
@build_arg_option
def build_cmd(dockerfile: Path | None, lock_path: Path | None, tag: str | None,
              platform: str | None, push: bool, context: Path | None, no_cache: bool,
              no_verify: bool,
              quiet: bool, reproducible: bool, builder: str | None, flags: RebuildFlags,
              build_args: dict[str, str]) -> None:
    """Rebuild the template pinned to a lock, and verify the image.

    The template is built as written, layer by layer, with every FROM
    pinned to its locked digest, and every RUN's APT, pip and uv seeing only
    the lock's packages (the locked view, on loopback; each file checked
    against the lock). A package the lock does not have fails the build with
    its name. Nothing is written into the context or the image. Build
    arguments recorded in the lock apply unless given again.

    Exit 0 when the image matches the lock, 1 when the build failed or the
    image drifted, 2 on bad input or an unreachable engine.

    With --store, every byte comes from a store `relock vendor` filled (the
    base image is published from it into the engine's registry mirror, same
    digest): nothing is asked of the archive, the index or Docker Hub, and a
    file missing from the store is an error before anything is built.

    The builder is BuildKit (docker buildx) where it is installed, else the
    engine's classic builder; the build says which. --builder chooses:
    buildkit, classic, or the name of a buildx builder (docker buildx ls).

    With --reproducible, SOURCE_DATE_EPOCH is the lock's snapshot time, every
    timestamp in the image is rewritten to it, and what apt, dpkg and ldconfig
    write of the moment stays out of the image; the context is taken with one
    time and no group write, and the build cache is not used: two builds of
    one lock give one image digest, on any host. The first such build records
    the digest in the lock; every later one says "reproduced sha256:..., as
    LOCK says", or exits 1 naming both digests (relock diff --files names the
    files that differ).

    With several --platform (linux/amd64,linux/arm64, or all), BuildKit builds
    them in one build into one image index, from the one pinned Dockerfile
    `relock render` writes: loaded into the engine (which needs the containerd
    image store), or with --push pushed to the registry -t names; then each
    platform's image is verified against its part of the lock, a drift naming
    its platform. A platform the lock lacks is an error before any step.

    \b
    Example:
      relock build --lock locks/sci.lock -t sci:pinned
      relock build --lock locks/sci.lock --platform all --push -t reg.example/sci:1
      relock build --lock locks/sci.lock --builder classic -t sci:pinned
      relock build --lock locks/sci.lock --store ./store -t sci:pinned
      relock build --lock locks/sci.lock --reproducible -t sci:pinned
    """
    from relock.build.command import BuildRequest, run_build

    request = BuildRequest(dockerfile=dockerfile, lock_path=lock_path, tag=tag,
                           platform=platform, context=context, no_cache=no_cache,
                           no_verify=no_verify, flags=flags, build_args=build_args,
                           builder=builder, reproducible=reproducible, push=push)
    with user_errors(), build_log_shown():
        outcome = run_build(request, progress, log=build_log(quiet),
                            views=store_views(flags.store))
    if outcome.drift is None:
        click.echo(outcome.image)
    else:
        _report(outcome, as_json=False, exit_on_drift=False)
    same = _reproduced(outcome)
    if outcome.drift or not same:
        raise SystemExit(EXIT_DIFFERS)


def _reproduced(outcome: VerifyOutcome) -> bool:
    """Say what a reproducible build gave against the lock (each platform's image, for a
    build of several); whether it is the same image (each of them)."""
    each = (outcome.reproduced,) if outcome.reproduced else outcome.reproduced_each
    return all([_reproduced_one(outcome, r, len(each) > 1) for r in each])


def _reproduced_one(outcome: VerifyOutcome, r: Reproduction, several: bool) -> bool:
    made = f"{r.digest.manifest} (config {r.digest.config})"
    of = f" for {r.digest.platform}" if several and r.digest.platform else ""
    if r.recorded is None:
        click.echo(f"recorded {made}{of} in {outcome.lock_path}")
        return True
    if r.same:
        click.echo(f"reproduced {r.digest.manifest}{of}, as {outcome.lock_path} says")
        return True
    image = f"{outcome.image}'s {r.digest.platform} image" if of else outcome.image
    click.echo(f"not reproduced: {image} is {made}; {outcome.lock_path} records "
               f"{r.recorded.manifest or '-'} (config {r.recorded.config})")
    if r.differences is None and of:
        click.echo(f"  (relock diff --files {outcome.image} --platform {r.digest.platform} "
                   "with the recorded image names the files that differ)")
        return False
    if r.differences is None:
        click.echo("  (the engine has no image of the recorded digest: relock diff --files "
                   "with one names the files that differ)")
        return False
    shown = r.differences[:SHOWN]
    click.echo(f"  {len(r.differences)} file(s) differ from the recorded image"
               + (f", the first {SHOWN}:" if len(r.differences) > SHOWN else ":"))
    for d in shown:
        click.echo(f"  {d.describe()}")
    return False


SHOWN = 20  # files a not-reproduced build names (relock diff --files names them all)


def _report(outcome: VerifyOutcome, as_json: bool, exit_on_drift: bool = True) -> None:
    """Whether the image matches the lock; exit 1 when it drifted (``exit_on_drift``)."""
    image, lock_path, drift = outcome.image, str(outcome.lock_path), outcome.drift or ()
    if as_json:
        click.echo(json.dumps({"image": image, "lock": lock_path, "matches": not drift,
                               "drift": [d.as_dict() for d in drift]}, indent=2,
                              sort_keys=True))
    elif drift:
        click.echo(f"{image} drifted from {lock_path}: {len(drift)} difference(s)")
        for d in drift:
            click.echo(f"  {d.describe()}")
    else:
        click.echo(f"{image} matches {lock_path}")
    if drift and exit_on_drift:
        raise SystemExit(EXIT_DIFFERS)


@cli.command("verify")
@click.argument("image")
@click.option("--lock", "lock_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The lock file. [default: for an oci:// IMAGE the lock attached to it "
                   "(relock attach), else the only *.lock in locks/]")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_cmd(image: str, lock_path: Path | None, as_json: bool) -> None:
    """Check that IMAGE's packages and base match a lock.

    Reads IMAGE's files (nothing is run), compares every APT and pip package
    version and checks that the image sits on a locked base digest. Exit 0
    when it matches, 1 with the list of differences when it drifted, 2 on
    trouble. This is what CI runs.

    An oci://HOST/REPO@sha256:... (or :TAG) IMAGE is read from its registry,
    every platform of it, with no engine; without --lock its lock is the one
    relock attach pushed beside it, checked against its digest.
    """
    from relock.build.command import VerifyRequest, run_verify

    with user_errors():
        outcome = run_verify(VerifyRequest(image=image, lock_path=lock_path), progress)
    _report(outcome, as_json)
