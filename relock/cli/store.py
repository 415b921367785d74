"""``relock store ls``, ``verify`` and ``copy``: look into a store, share it."""

from __future__ import annotations

import click

from relock.cli.common import cli, progress, user_errors
from relock.errors import EXIT_DIFFERS, EXIT_OK


@cli.group()
def store() -> None:
    """Look into a store: an OCI image layout folder or oci://HOST[:PORT]/REPO.

    A store keeps, by sha256, every file a lock names (.debs, wheels,
    sdists), the base images (manifests, configs and layers, byte for byte)
    and one lock manifest per lock, in the OCI format any registry or OCI
    tool (skopeo, oras, crane) can copy.
    """


@store.command(name="ls")
@click.argument("where")
def ls(where: str) -> None:
    """List the tags of the store WHERE: what each names, blob count and bytes.

    Lock manifests are tagged lock-<sha256 of the lock file> (or a chosen
    name), base images base-<hex of their manifest digest>.
    """
    from relock.store.command import list_store

    with user_errors():
        for tag in list_store(where):
            summary = tag.summary
            click.echo(f"{tag.name}\t{tag.descriptor.digest}\t{summary.kind}\t"
                       f"{summary.blobs} blobs\t{summary.bytes} bytes")


@store.command(name="verify")
@click.argument("where")
def verify(where: str) -> None:
    """Re-hash every blob and manifest reachable from the tags of the store WHERE.

    Prints one line per missing or changed blob. Exits 0 if all is sound, 1
    if something is missing or changed, 2 if the store cannot be read.
    """
    from relock.store.command import verify_store

    with user_errors():
        checked, problems = verify_store(where)
    for problem in problems:
        click.echo(f"{problem.digest}\t{problem.what}")
    progress(f"{checked} blobs and manifests checked, {len(problems)} problems")
    raise SystemExit(EXIT_DIFFERS if problems else EXIT_OK)


@store.command(name="copy")
@click.argument("source")
@click.argument("destination")
@click.argument("tags", nargs=-1)
def copy(source: str, destination: str, tags: tuple[str, ...]) -> None:
    """Copy the store SOURCE (or only TAGS of it) into DESTINATION, byte for byte.

    This is how a team shares a store: vendor into a folder, copy it to the
    team's registry (oci://HOST/REPO), and build anywhere with --store
    oci://HOST/REPO. Only what DESTINATION lacks is sent; every blob is
    checked by digest on the way. A folder DESTINATION is made if absent.
    """
    from relock.store.command import copy_stores

    with user_errors():
        stats = copy_stores(source, destination, tags)
    progress(f"{stats.blobs} blobs and {stats.manifests} manifests copied "
             f"({stats.bytes / 1e6:.1f} MB), {stats.skipped} already there")
