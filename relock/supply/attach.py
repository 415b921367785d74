"""The use case of ``relock attach``: the lock (and its SBOMs) pushed beside its image.

Each goes to the image's repository as an OCI 1.1 artifact whose ``subject``
is the image's digest (``relock.upstream.referrers``), so that ``relock
verify oci://HOST/REPO@sha256:...`` finds the lock from the image alone. A
tag is resolved to the digest it names now; the lock must hold a part for
every platform of the image. Nothing here prints or exits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.upstream.referrers import ArtifactRegistry, Attached


@dataclass(frozen=True)
class AttachRequest:
    """What ``relock attach``'s arguments say."""

    image: str
    lock_path: Path | None = None
    sbom: bool = False


def run_attach(request: AttachRequest, progress: Progress = quiet, *,
               registry_for: Callable[[str], ArtifactRegistry] | None = None) -> Attached:
    """Push the lock (with ``sbom`` its CycloneDX and SPDX SBOMs too) referring to the
    image's digest; what was pushed and how the registry lists it."""
    from relock.errors import LockfileError, UsageError
    from relock.image.registrysource import RegistrySource
    from relock.lock.reference import is_registry_ref, parse, strip_prefix
    from relock.supply import sbom
    from relock.supply.command import read_lock
    from relock.upstream import referrers
    from relock.upstream import registry as reg

    if not is_registry_ref(request.image):
        raise UsageError(f"{request.image!r:.120}: an image in a registry is "
                         "oci://HOST/REPO@sha256:... or oci://HOST/REPO:TAG")
    r = parse(strip_prefix(request.image))
    lock, text, path = read_lock(request.lock_path)
    clients = registry_for or reg.registry_for
    client = clients(r.host)
    subject = client.manifest(r.repo, r.ref)  # a tag named: the digest it holds now
    image = f"{client.host}/{r.repo}@{subject.digest}"
    progress(f"attaching {path.name} to {image}")
    platforms = RegistrySource(registry_for=clients).platforms(f"oci://{image}")
    missing = [p for p in platforms if p not in lock.all_platforms]
    if missing:
        raise LockfileError(f"{path}: the lock has no part for {', '.join(missing)} of "
                            f"{image} (it holds {', '.join(lock.all_platforms)}); freeze it")
    artifacts = [referrers.Artifact(referrers.LOCK_TYPE, text.encode(), path.name)]
    if request.sbom:
        for fmt, kind, suffix in (("cyclonedx", referrers.CYCLONEDX_TYPE, "cdx.json"),
                                  ("spdx", referrers.SPDX_TYPE, "spdx.json")):
            document = sbom.render(lock, fmt, image=image, name=path.stem)
            artifacts.append(referrers.Artifact(kind, document.encode(),
                                                f"{path.stem}.{suffix}"))
    return referrers.attach(client, r.repo, subject, artifacts)
