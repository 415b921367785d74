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

from collections.abc import Collection, Sequence

from relock.errors import BaseImageError, RegistryError, StoreError
from relock.lock.reference import parse
from relock.store.store import (
    PLATFORMS,
    CopyStats,
    Descriptor,
    RegistryStore,
    Store,
    base_tag,
    copy_image,
    tag_platforms,
)
from relock.upstream import registry as reg


def vendor_base(ref: str, store: Store, *, registries: Sequence[reg.Registry] = (),
                mirrors: Sequence[str] = (), tag: str = "",
                platforms: Collection[str] | None = None) -> tuple[Descriptor, CopyStats]:
    """Copy ``ref`` (which must carry ``@sha256:``) from a registry into ``store``.

    A Docker Hub name is asked of the engine's ``mirrors`` first, as the
    engine itself does, then of Docker Hub; ``registries``, if given, are
    asked instead, in order. The manifest is tagged ``base-<hex>`` (or ``tag``).
    """
    try:
        parsed = parse(ref)
    except RegistryError as e:
        raise BaseImageError(str(e)) from None
    if not parsed.digest:
        raise BaseImageError(f"{ref}: a base image is vendored by digest; pin it "
                             "(NAME@sha256:...) or freeze first")
    if registries:
        clients = list(registries)
    else:
        clients = [reg.registry_for(h) for h in reg.pull_hosts(parsed, mirrors)]
    asked: list[str] = []
    for client in clients:
        src = RegistryStore(client, parsed.repo)
        try:
            stats = copy_image(src, store, parsed.digest, platforms=platforms)
        except reg.ManifestUnknown:
            asked.append(f"{client.host}: no such manifest")
            continue
        except reg.RegistryUnreachable:
            asked.append(f"{client.host}: unreachable")
            continue
        except RegistryError as e:
            raise BaseImageError(f"{ref}: cannot vendor the base image: {e}") from None
        manifest = store.manifest(parsed.digest)
        annotations = {"org.opencontainers.image.base.name": str(parsed)}
        if platforms is not None and manifest.media_type in reg.INDEX_TYPES:
            annotations[PLATFORMS] = ",".join(sorted(platforms))
        desc = Descriptor(media_type=manifest.media_type, digest=manifest.digest,
                          size=len(manifest.data), annotations=annotations)
        store.tag(tag or base_tag(parsed.digest), desc)
        return desc, stats
    raise BaseImageError(
        f"{ref}: no registry answers for this digest ({'; '.join(asked)}); if only the "
        "engine has the image, relock cannot keep its digest (an engine does not give back "
        "a registry's manifest bytes): push it to a registry, or vendor from one that has it"
    )


def publish_base(store: Store, digest: str, registry: reg.Registry | str, repo: str, *,
                 tag: str = "") -> CopyStats:
    """Copy base image ``digest`` from ``store`` into ``registry``/``repo`` (and tag it)."""
    client = reg.registry_for(registry) if isinstance(registry, str) else registry
    dst = RegistryStore(client, repo)
    kept = None
    try:
        if not store.has_manifest(digest):
            raise BaseImageError(f"{store.url}: base image {digest} is not in the store; "
                                 "run `relock vendor` first")
        for desc in store.tags().values():
            if desc.digest == digest:
                kept = tag_platforms(desc)
        stats = copy_image(store, dst, digest, platforms=kept)
        if tag:
            manifest = store.manifest(digest)
            dst.tag(tag, Descriptor(media_type=manifest.media_type, digest=digest,
                                    size=len(manifest.data)))
    except (RegistryError, StoreError) as e:
        hint = ""
        if kept is not None:
            hint = (f" (the store keeps only {', '.join(sorted(kept))} of this index; a "
                    "registry that wants every entry of an index needs the base vendored "
                    "for all platforms)")
        raise BaseImageError(f"cannot publish base image {digest} to {client.host}/{repo}: "
                             f"{e}{hint}") from None
    return stats
