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
from collections.abc import Callable, Mapping
from typing import Any

from relock.errors import ImagePlatformError, RelockError
from relock.lockfile import Lock

Lookup = Callable[[str, str, str], str]


def platform_text(p: Mapping[str, Any]) -> str:
    """``os/arch[/variant]`` of an index entry's ``platform``; arm64's v8 is left out."""
    text = f"{p.get('os', '')}/{p.get('architecture', '')}"
    variant = str(p.get("variant") or "")
    if variant and not (p.get("architecture") == "arm64" and variant == "v8"):
        text += f"/{variant}"
    return text


def manifest_digest(ref: str, digest: str, platform: str) -> str:
    """The digest of ``platform``'s manifest in the index ``ref@digest``.

    "" when ``digest`` names a single image manifest (nothing to choose).
    ``ImagePlatformError`` when the index has no manifest for ``platform``;
    ``RegistryError`` when the registry cannot be asked.
    """
    from relock.registry import INDEX_TYPES, check_digest, parse_reference, registry_for

    r = parse_reference(ref)
    manifest = registry_for(r.host).manifest(r.repo, digest)
    if manifest.media_type not in INDEX_TYPES:
        return ""
    entries = manifest.json().get("manifests") or []
    for entry in entries:
        if isinstance(entry, dict) and platform_text(entry.get("platform") or {}) == platform:
            return check_digest(str(entry.get("digest", "")), f"{ref}@{digest} {platform}")
    have = sorted(platform_text(e.get("platform") or {}) for e in entries if isinstance(e, dict))
    raise ImagePlatformError(f"{ref}@{digest} has no {platform} image (it has "
                             f"{', '.join(have) or 'none'})")


def with_manifests(lock: Lock, platform: str, lookup: Lookup = manifest_digest
                   ) -> tuple[Lock, list[str]]:
    """``lock`` (one platform's) with each base's platform manifest digest filled in.

    A registry that cannot be asked leaves the field empty, with a warning.
    """
    warnings: list[str] = []
    bases = []
    for base in lock.base:
        if base.digest and not base.manifest:
            try:
                base = dataclasses.replace(base, manifest=lookup(base.ref, base.digest, platform))
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
    return dataclasses.replace(lock, base=tuple(
        dataclasses.replace(b, digest=b.manifest) if b.manifest else b for b in lock.base))
