"""``relock sbom``: the lock as a CycloneDX or SPDX SBOM."""

from __future__ import annotations

from pathlib import Path

import click

from relock.cli.common import PLATFORM, cli, lock_option, user_errors


@cli.command()
@lock_option
@click.option("--format", "fmt", type=click.Choice(["cyclonedx", "spdx"]), required=True,
              help="cyclonedx: CycloneDX 1.6 JSON; spdx: SPDX 2.3 JSON.")
@click.option("--platform", metavar="OS/ARCH", type=PLATFORM,
              help="Only this platform's part of a multi-platform lock. [default: every "
                   "platform the lock holds]")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the SBOM here (atomically). [default: stdout]")
@click.option("--image", default="", metavar="REF",
              help="The root component's name. [default: the image the lock's header names]")
@click.option("--supplier", default="", metavar="NAME",
              help="Who supplies the image (the root's and the environments' supplier).")
def sbom(lock_path: Path | None, fmt: str, platform: str | None, output: Path | None,
         image: str, supplier: str) -> None:
    """Write the lock's SBOM: every APT package, Python distribution and base image.

    From the lock alone (no engine, no network): APT packages as pkg:deb with
    their source package and .deb sha256, Python distributions as pkg:pypi
    in their environment with the sha256 of their files, base images as
    pkg:oci by digest. The time is the lock's snapshot; the same lock gives
    the same bytes. Mapping: docs/supply-chain.md.

    \b
    Examples:
      relock sbom --lock locks/sci.lock --format cyclonedx -o sci.cdx.json
      relock sbom --format spdx --platform linux/arm64 > sci.spdx.json
    """
    from relock.supply.command import SbomRequest, run_sbom

    request = SbomRequest(fmt=fmt, lock_path=lock_path, platform=platform, output=output,
                          image=image, supplier=supplier)
    with user_errors():
        outcome = run_sbom(request)
    if outcome.written is None:
        click.echo(outcome.text, nl=False)
