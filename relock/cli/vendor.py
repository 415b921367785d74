"""``relock vendor``: fill a store with every byte a lock's rebuild needs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from relock.cli.common import apt_source_options, cli, lock_option, progress, user_errors, warn

if TYPE_CHECKING:
    from relock.store.vendor import VendorReport


@cli.command("vendor")
@lock_option
@click.option("--store", "where", required=True, metavar="DIR|oci://HOST/REPO",
              help="The store: an OCI image layout folder (made if absent) or a registry "
                   "repository.")
@apt_source_options
@click.option("--allow-missing", is_flag=True,
              help="Vendor what can be, with a warning for each lock entry that has no "
                   "hash (or no file that installs), instead of failing.")
@click.option("--tag", default="", metavar="NAME",
              help="Tag of the lock manifest. [default: lock-<sha256 of the lock file>]")
@click.option("-j", "--jobs", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Files fetched at once.")
def vendor_cmd(lock_path: Path | None, where: str, apt_mirrors: tuple[str, ...],
               apt_snapshot_url: str | None, apt_live: bool, allow_missing: bool, tag: str,
               jobs: int) -> None:
    """Put every byte a rebuild of the lock needs into a store.

    Every locked .deb the base images do not hold (from, in order: the store
    itself, the snapshot at the lock's time, the image's own sources, each
    --apt-mirror), every locked Python file that installs on the lock's
    platform and interpreter (from pip's configured index) and the base
    images (by digest, byte for byte), each checked against the lock before
    it enters; then a lock manifest that ties them together. What the store
    has is not fetched again; an interrupted run leaves no partial file.
    `relock build --store` then rebuilds with nothing upstream; share the
    store by copying it to your registry (`relock store copy`).

    \b
    Example:
      relock vendor --lock locks/sci.lock --store ./store
      relock vendor --lock locks/sci.lock --store oci://REGISTRY/team/relock
    """
    from relock.store.command import VendorRequest, run_vendor

    request = VendorRequest(store=where, lock_path=lock_path, apt_mirrors=apt_mirrors,
                            apt_snapshot_url=apt_snapshot_url, apt_live=apt_live,
                            allow_missing=allow_missing, tag=tag, jobs=jobs)
    with user_errors():
        report = run_vendor(request, progress, warn)
    _print(report)


def _print(report: VendorReport) -> None:
    """Warnings and the summary on stderr, the lock manifest's tag on stdout."""
    from relock.store.vendor import summary

    for line in report.warnings:
        warn(line)
    for line in summary(report):
        progress(line)
    click.echo(report.tag)
