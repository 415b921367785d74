"""``relock attach``: the lock (and its SBOMs) pushed beside its image, by digest."""

from __future__ import annotations

from pathlib import Path

import click

from relock.cli.common import cli, lock_option, progress, user_errors


@cli.command()
@click.argument("image_ref", metavar="IMAGE_REF")
@lock_option
@click.option("--sbom", is_flag=True,
              help="Attach the lock's CycloneDX and SPDX SBOMs too (relock sbom's).")
def attach(image_ref: str, lock_path: Path | None, sbom: bool) -> None:
    """Attach the lock (and SBOMs) to an image in its registry.

    IMAGE_REF is oci://HOST/REPO@sha256:... or oci://HOST/REPO:TAG (the tag
    is resolved to its digest now). The lock goes up as an OCI 1.1 artifact
    whose subject is the image's digest, listed by the registry's referrers
    API or, where it has none, by the tag sha256-<hex>. Then relock verify
    oci://HOST/REPO@sha256:... finds the lock from the image alone.

    \b
    Examples:
      relock attach oci://127.0.0.1:5000/team/sci:1 --lock locks/sci.lock
      relock attach oci://registry.example/team/sci@sha256:... --sbom
    """
    from relock.supply.attach import AttachRequest, run_attach

    with user_errors():
        outcome = run_attach(AttachRequest(image=image_ref, lock_path=lock_path, sbom=sbom),
                             progress)
    for kind, digest in outcome.artifacts:
        click.echo(f"{kind} {digest}")
    progress(f"attached to {outcome.subject}, listed by {outcome.listed_by}")
