"""Base images in and out of a store, by digest, byte for byte.

``vendor_base`` copies an image (its index or manifest list, every platform
manifest, configs and layers) from a registry into a store; ``publish_base``
copies it from a store into a registry repository, so that an engine whose
registry (or registry mirror) that is pulls ``NAME@sha256:<same digest>``.
Only a registry can give back the exact manifest bytes a digest names; an
engine cannot (``docker save`` writes other manifests), so a base that only
an engine holds is an error, never a new digest.
"""

from __future__ import annotations

from relock import registry as reg
from relock.errors import BaseImageError, RegistryError, StoreError
from relock.store import CopyStats, Descriptor, RegistryStore, Store, base_tag, copy_image


def vendor_base(ref: str, store: Store, *, registry: reg.Registry | None = None,
                tag: str = "") -> tuple[Descriptor, CopyStats]:
    """Copy ``ref`` (which must carry ``@sha256:``) from its registry into ``store``.

    ``registry`` overrides where it is fetched from (e.g. the engine's mirror
    for a Docker Hub name). The manifest is tagged ``base-<hex>`` (or ``tag``).
    """
    try:
        parsed = reg.parse_reference(ref)
    except RegistryError as e:
        raise BaseImageError(str(e)) from None
    if not parsed.digest:
        raise BaseImageError(f"{ref}: a base image is vendored by digest; pin it "
                             "(NAME@sha256:...) or freeze first")
    client = registry or reg.registry_for(parsed.host)
    src = RegistryStore(client, parsed.repo)
    try:
        stats = copy_image(src, store, parsed.digest)
        manifest = store.manifest(parsed.digest)
    except reg.ManifestUnknown:
        raise BaseImageError(
            f"{ref}: no registry answers for this digest ({client.host}/{parsed.repo} has no "
            "such manifest); if only the engine has the image, relock cannot keep its digest "
            "(an engine does not give back a registry's manifest bytes): push it to a "
            "registry, or vendor from one that has it"
        ) from None
    except RegistryError as e:
        raise BaseImageError(f"{ref}: cannot vendor the base image: {e}") from None
    desc = Descriptor(media_type=manifest.media_type, digest=manifest.digest,
                      size=len(manifest.data),
                      annotations={"org.opencontainers.image.base.name": str(parsed)})
    store.tag(tag or base_tag(parsed.digest), desc)
    return desc, stats


def publish_base(store: Store, digest: str, registry: reg.Registry | str, repo: str, *,
                 tag: str = "") -> CopyStats:
    """Copy base image ``digest`` from ``store`` into ``registry``/``repo`` (and tag it)."""
    client = reg.registry_for(registry) if isinstance(registry, str) else registry
    dst = RegistryStore(client, repo)
    try:
        if not store.has_manifest(digest):
            raise BaseImageError(f"{store.url}: base image {digest} is not in the store; "
                                 "run `relock vendor` first")
        stats = copy_image(store, dst, digest)
        if tag:
            manifest = store.manifest(digest)
            dst.tag(tag, Descriptor(media_type=manifest.media_type, digest=digest,
                                    size=len(manifest.data)))
    except (RegistryError, StoreError) as e:
        raise BaseImageError(f"cannot publish base image {digest} to {client.host}/{repo}: {e}"
                             ) from None
    return stats
