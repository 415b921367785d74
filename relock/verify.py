"""Does an image still match its lock? The drift between the two, if any.

Versions are compared for every APT and pip package; the base image is
checked by layers: the final stage's locked base must be the bottom of the
image. Hashes are not compared: an installed file no longer knows the hash
of the wheel it came from (``pip install --require-hashes`` checked it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relock.lockfile import Lock


@dataclass(frozen=True)
class Drift:
    """One way an image differs from its lock."""

    kind: str  # apt, pip, base, distro
    name: str
    locked: str
    found: str

    def describe(self) -> str:
        if self.kind == "base":
            return f"base {self.name}: locked {self.locked}, but {self.found}"
        if not self.found:
            return f"{self.kind} {self.name}: locked {self.locked}, not in the image"
        if not self.locked:
            return f"{self.kind} {self.name}: {self.found} in the image, not in the lock"
        return f"{self.kind} {self.name}: locked {self.locked}, image has {self.found}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "locked": self.locked, "found": self.found}


def compare(locked: Lock, found: Lock) -> list[Drift]:
    """Every difference in distro, APT and pip contents between two locks."""
    drift: list[Drift] = []
    if (locked.distro.id, locked.distro.version_id) != (found.distro.id, found.distro.version_id):
        drift.append(Drift("distro", "os-release",
                           f"{locked.distro.id} {locked.distro.version_id}",
                           f"{found.distro.id} {found.distro.version_id}"))
    want_apt = {f"{p.name}:{p.arch}": p.version for p in locked.apt}
    have_apt = {f"{p.name}:{p.arch}": p.version for p in found.apt}
    drift += _versions("apt", want_apt, have_apt)
    want_pip = {f"{p.name} ({p.env})": p.version for p in locked.pip}
    have_pip = {f"{p.name} ({p.env})": p.version for p in found.pip}
    drift += _versions("pip", want_pip, have_pip)
    return drift


def _versions(kind: str, want: dict[str, str], have: dict[str, str]) -> list[Drift]:
    return [
        Drift(kind, key, want.get(key, ""), have.get(key, ""))
        for key in sorted(set(want) | set(have))
        if want.get(key) != have.get(key)
    ]


def check_base(client: Any, image: Any, locked: Lock) -> list[Drift]:
    """Whether one of the locked base images is the bottom of ``image``.

    A multi-stage build's final stage starts from one of the locked bases
    (directly or through earlier stages); its layers must be the image's
    first layers.
    """
    from relock import engine
    from relock.errors import EngineError

    have = image.attrs.get("RootFS", {}).get("Layers", [])
    refs = []
    for base in sorted(locked.base, key=lambda b: -b.stage):
        ref = f"{base.ref.split('@', 1)[0]}@{base.digest}" if base.digest else base.image_id
        refs.append(ref)
        try:
            found = engine.get_image(client, ref)
        except EngineError:
            if not base.digest:
                continue
            found = engine.pull(client, ref)
        want = found.attrs.get("RootFS", {}).get("Layers", [])
        if want and have[: len(want)] == want:
            return []
    if not refs:
        return []
    return [Drift("base", " / ".join(b.ref for b in locked.base), ", ".join(refs),
                  "the image is built on none of them")]
