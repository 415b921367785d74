"""``relock vendor``: fill a store with every byte a lock's rebuild needs."""

from __future__ import annotations

from pathlib import Path

import click

from relock.cli.common import cli, default_lock, lock_option, progress, user_errors, warn


@cli.command("vendor")
@lock_option
@click.option("--store", "where", required=True, metavar="DIR|oci://HOST/REPO",
              help="The store: an OCI image layout folder (made if absent) or a registry "
                   "repository.")
@click.option("--apt-mirror", "apt_mirrors", multiple=True, metavar="URL",
              help="Another archive to fetch locked .debs from, after the snapshot and the "
                   "image's own sources (repeatable).")
@click.option("--apt-snapshot-url", metavar="URL",
              help="Base URL of the snapshot archive. [default: the distro's snapshot "
                   "service]")
@click.option("--apt-live", is_flag=True,
              help="Do not ask the snapshot service; fetch from the image's own sources "
                   "(then the mirrors).")
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
    from relock.blobs import sigterm_as_interrupt
    from relock.build import rebuild
    from relock.errors import EngineError
    from relock.image import engine
    from relock.lock import lockfile
    from relock.store import store as stores
    from relock.store import vendor as core

    lock_path = default_lock(lock_path)
    with user_errors():
        lock = lockfile.read(lock_path)
        data = lock_path.read_bytes()
        s = stores.open_store(where, create=True)
        mirrors: tuple[str, ...] = ()
        installed: set[tuple[str, str, str]] | None
        try:
            client = engine.connect()
            mirrors = tuple(client.registry_mirrors())
            installed = rebuild.installed_in_bases(client, lock, progress)
        except EngineError as e:
            warn(f"{e}; relock cannot tell which packages the base images hold, so every "
                 "locked .deb is vendored")
            installed = None
        options = core.VendorOptions(use_snapshot=not apt_live, snapshot_url=apt_snapshot_url,
                                     mirrors=apt_mirrors, allow_missing=allow_missing,
                                     workers=jobs, tag=tag, registry_mirrors=mirrors)
        with sigterm_as_interrupt():
            report = core.vendor(lock, data, s, options, installed, progress=progress)
    for line in report.warnings:
        warn(line)
    for line in core.summary(report):
        progress(line)
    click.echo(report.tag)
