"""Platforms of a multi-platform image: which manifest of an image index is whose.

A tag such as ``debian:trixie-slim`` names an image index (a manifest list):
one manifest per platform. A lock pins the index digest (what ``FROM`` names,
the same on every platform) and, per platform, that platform's own manifest
digest, asked of the registry here. A build or a check for one platform uses
the platform's manifest: an engine may hold the index digest for one
platform's image only.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from relock.errors import ImagePlatformError, RelockError
from relock.lock.lockfile import Lock
from relock.lock.platform import descriptor_text, from_descriptor
from relock.lock.reference import parse

if TYPE_CHECKING:
    from relock.upstream.registry import Manifest

Lookup = Callable[[str, str, str], str]


def _is(entry: Mapping[str, object], platform: str) -> bool:
    """Whether the index entry ``entry`` is ``platform``'s image."""
    found = from_descriptor(entry.get("platform"))
    return found is not None and found.matches(platform)


def _manifest(ref: str, what: str, mirrors: Sequence[str]) -> Manifest:
    """The manifest ``what`` (tag or digest) of ``ref``'s repository.

    A Docker Hub name is asked of the engine's registry ``mirrors`` first, as
    the engine itself pulls it, then of Docker Hub.
    """
    from relock.upstream.registry import (
        ManifestUnknown,
        RegistryUnreachable,
        pull_hosts,
        registry_for,
    )

    r = parse(ref)
    *mirrors_first, own = pull_hosts(r, mirrors)
    for host in mirrors_first:
        try:
            return registry_for(host).manifest(r.repo, what)
        except (ManifestUnknown, RegistryUnreachable):
            continue
    return registry_for(own).manifest(r.repo, what)


def manifest_digest(ref: str, digest: str, platform: str, mirrors: Sequence[str] = ()) -> str:
    """The digest of ``platform``'s manifest in the index ``ref@digest``.

    "" when ``digest`` names a single image manifest (nothing to choose).
    ``ImagePlatformError`` when the index has no manifest for ``platform``;
    ``RegistryError`` when the registry cannot be asked.
    """
    from relock.upstream.registry import INDEX_TYPES, check_digest

    manifest = _manifest(ref, digest, mirrors)
    if manifest.media_type not in INDEX_TYPES:
        return ""
    entries = manifest.objects("manifests")
    for entry in entries:
        if _is(entry, platform):
            return check_digest(str(entry.get("digest", "")), f"{ref}@{digest} {platform}")
    have = sorted(descriptor_text(e.get("platform")) or "/" for e in entries)
    raise ImagePlatformError(f"{ref}@{digest} has no {platform} image (it has "
                             f"{', '.join(have) or 'none'})")


def tag_index(ref: str, manifest: str, platform: str, mirrors: Sequence[str] = ()) -> str:
    """The digest of the image index ``ref``'s tag names now, if it lists
    ``manifest`` as its ``platform`` image; "" otherwise.

    An engine records the digest it pulled: a platform's own manifest when
    the image came by that digest (or from a registry that served the
    platform's manifest for the tag). A lock for several platforms names
    the index in ``FROM``, the same on every platform.
    """
    from relock.upstream.registry import INDEX_TYPES

    r = parse(ref)
    if not r.tag or r.digest:
        return ""
    index = _manifest(ref, r.tag, mirrors)
    if index.media_type not in INDEX_TYPES:
        return ""
    for entry in index.objects("manifests"):
        if entry.get("digest") == manifest and _is(entry, platform):
            return index.digest
    return ""




def with_manifests(lock: Lock, platform: str, lookup: Lookup | None = None,
                   lift: Lookup | None = None, mirrors: Sequence[str] = ()
                   ) -> tuple[Lock, list[str]]:
    """``lock`` (one platform's) with each base's platform manifest digest filled in.

    A base locked by a platform's own manifest is lifted to the index its
    tag names, when that index lists the manifest for ``platform``: every
    platform's part then names the same ``FROM`` digest. A registry that
    cannot be asked leaves the fields as they are, with a warning.
    """
    if lookup is None:
        lookup = functools.partial(manifest_digest, mirrors=mirrors)
    if lift is None:
        lift = functools.partial(tag_index, mirrors=mirrors)
    warnings: list[str] = []
    bases = []
    for base in lock.base:
        if base.digest and not base.manifest:
            try:
                manifest = lookup(base.ref, base.digest, platform)
                if manifest:
                    base = dataclasses.replace(base, manifest=manifest)
                else:
                    index = lift(base.ref, base.digest, platform)
                    if index:
                        base = dataclasses.replace(base, digest=index, manifest=base.digest)
            except ImagePlatformError:
                raise
            except RelockError as e:
                warnings.append(f"could not ask the registry for the {platform} manifest of "
                                f"{base.ref} ({e}); a build for {platform} will name the index")
        bases.append(base)
    return dataclasses.replace(lock, base=tuple(bases)), warnings


def by_manifest(lock: Lock) -> Lock:
    """One platform's lock with each base pinned to that platform's own manifest
    where the lock knows it: what a build or a check for that platform pulls."""
    return dataclasses.replace(lock, base=tuple(b.by_manifest() for b in lock.base))
