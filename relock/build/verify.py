"""Does an image still match its lock? The drift between the two, if any.

Versions are compared for every APT and pip package; the base image is
checked by layers: the final stage's locked base must be the bottom of the
image. Hashes are not compared: an installed file no longer knows the hash
of the wheel it came from (``pip install --require-hashes`` checked it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from relock.errors import EngineError
from relock.lock.lockfile import Lock
from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.image.engine import ImageInfo, ImageSource


@dataclass(frozen=True)
class Drift:
    """One way an image differs from its lock."""

    kind: str  # apt, pip, base, distro, platform, apt-source
    name: str
    locked: str
    found: str

    def describe(self) -> str:
        """One line for a terminal; names and versions from an image are escaped."""
        from relock.lock.grammar import escape_control

        return escape_control(self._text())

    def _text(self) -> str:
        if self.kind == "base":
            return f"base {self.name}: locked {self.locked}, but {self.found}"
        if self.locked == self.found:
            return f"{self.kind} {self.name}: {self.locked}, but other bytes than locked"
        if not self.found:
            return f"{self.kind} {self.name}: locked {self.locked}, not in the image"
        if not self.locked:
            return f"{self.kind} {self.name}: {self.found} in the image, not in the lock"
        return f"{self.kind} {self.name}: locked {self.locked}, image has {self.found}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "locked": self.locked, "found": self.found}


def compare(locked: Lock, found: Lock) -> list[Drift]:
    """Every difference in distro, platform, APT sources, APT and pip contents.

    The comparison is ``relock diff``'s; the snapshot time is left out, since a
    rebuilt image is younger than its lock by nature.
    """
    from relock.lock.diff import diff_locks

    # Build stages' entries are for the locked view; the image holds the final stage, and
    # not the build requirements of the project's own package (pip threw them away).
    installed = replace(locked, pip=tuple(p for p in locked.pip if p.kind != "build"))
    result = diff_locks(installed.final(), found.final(), only=("apt", "pip"),
                        compare_base=False)
    drift: list[Drift] = []
    for label, value in (("distro", result.distro), ("platform", result.platform)):
        if value is not None:
            drift.append(Drift(label, "os-release" if label == "distro" else "image",
                               value.old, value.new))
    for source in result.sources or ():
        line = source.line
        drift.append(Drift("apt-source", source.source.file,
                           line if source.change == "removed" else "",
                           line if source.change == "added" else ""))
    for row in result.apt or ():
        drift.append(Drift("apt", f"{row.name}:{row.where}", row.old, row.new))
    for row in result.pip or ():
        drift.append(Drift("pip", f"{row.name} ({row.where})", row.old, row.new))
    return drift


def check_base(source: ImageSource, image: ImageInfo, locked: Lock) -> list[Drift]:
    """Whether one of the locked base images is the bottom of ``image``.

    A multi-stage build's final stage starts from one of the locked bases
    (directly or through earlier stages); its layers must be the image's
    first layers. A locked digest the source lacks is pulled.
    """
    refs = []
    for base in sorted(locked.base, key=lambda b: -b.stage):
        ref = base.pinned
        refs.append(ref)
        try:
            found = source.image(ref)
        except EngineError:
            if not base.digest:
                continue
            found = source.pull(ref)
        if image.sits_on(found):
            return []
    if not refs:
        return []
    return [Drift("base", " / ".join(b.ref for b in locked.base), ", ".join(refs),
                  "the image is built on none of them")]


def verify_image(source: ImageSource, ref: str, lock: Lock,
                 progress: Progress = quiet) -> list[Drift]:
    """How the image ``ref`` drifted from ``lock``: its base, then its contents.

    The image is frozen again (without asking the package index) and compared
    with the lock; an empty list means it matches.
    """
    from relock.freeze.freeze import FreezeOptions, freeze_image
    from relock.image.platforms import by_manifest

    image = source.image(ref)
    # A multi-platform lock: the image is checked against its own platform's part.
    lock = by_manifest(lock.part(None, str(image.platform)))
    found = freeze_image(source, image.id, None, FreezeOptions(index=None), progress).lock
    return [*check_base(source, image, lock), *compare(lock, found)]
