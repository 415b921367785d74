"""Which files of a locked Python distribution install in the locked image.

A lock names every file of a distribution version on the index (any of them
may be the one pip chose), but a store needs only those that install on the
image's platform and interpreter: the wheels whose tags the image's CPython
supports (its ``major.minor`` from ``[[python]]``, its architecture from the
lock's platform, the manylinux levels its glibc allows, from the locked
``libc6`` version), and the sdist when no wheel fits. The tags come from
``packaging.tags``, computed for the image rather than for this machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from relock.errors import RelockError
from relock.lock.lockfile import Lock
from relock.lock.platform import PlatformError, parse

if TYPE_CHECKING:
    from relock.build.view import PipFile

# Platforms' architectures (``Platform.arch_text``) -> the machine names in wheel tags.
ARCHES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "386": "i686",
    "arm/v7": "armv7l",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
# manylinux's first levels had names of their own (PEP 513, 571, 599).
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_LEGACY_ARCHES = {"x86_64", "i686", "aarch64", "ppc64le", "s390x", "armv7l"}


class TagError(RelockError):
    """The lock does not say enough to choose the Python files that install."""


def machine(platform: str) -> str:
    """The wheel machine name of a ``linux/ARCH[/VARIANT]`` platform."""
    try:
        found = parse(platform)
    except PlatformError:
        found = None
    if found is None or found.os != "linux" or found.arch_text not in ARCHES:
        raise TagError(f"platform {platform!r}: relock knows no wheel tags for it "
                       f"(known: {', '.join('linux/' + a for a in sorted(ARCHES))})")
    return ARCHES[found.arch_text]


def glibc_of(lock: Lock) -> tuple[int, int] | None:
    """``(2, minor)`` of the locked libc6 (``2.41-12`` -> ``(2, 41)``), or None."""
    for p in lock.apt:
        if p.name == "libc6" and not p.stage:
            found = re.match(r"(?:\d+:)?(\d+)\.(\d+)", p.version)
            if found:
                return int(found.group(1)), int(found.group(2))
    return None


def platform_tags(arch: str, glibc: tuple[int, int] | None) -> list[str]:
    """Platform tags of Linux on ``arch`` with ``glibc``, most specific first."""
    out = []
    if glibc is not None and glibc[0] == 2:
        for minor in range(glibc[1], 4, -1):
            out.append(f"manylinux_2_{minor}_{arch}")
            legacy = _LEGACY.get((2, minor))
            if legacy and arch in _LEGACY_ARCHES:
                out.append(f"{legacy}_{arch}")
    out.append(f"linux_{arch}")
    return out


def python_version(text: str) -> tuple[int, int]:
    """``(3, 13)`` from a ``[[python]]`` entry's ``python`` field."""
    found = re.fullmatch(r"(\d+)\.(\d+)(?:\..*)?", text.strip())
    if not found:
        raise TagError(f"Python version {text!r} in the lock is not major.minor")
    return int(found.group(1)), int(found.group(2))


def supported_tags(python: tuple[int, int], platforms: Sequence[str]) -> list[Tag]:
    """Every tag a CPython ``python`` on ``platforms`` installs, best first (as pip ranks)."""
    abi = f"cp{python[0]}{python[1]}"
    return [*cpython_tags(python, [abi], platforms),
            *compatible_tags(python, abi, platforms)]


def lock_tags(lock: Lock, env: str) -> list[Tag]:
    """The tags of the environment ``env`` (a ``[[python]]`` prefix) of ``lock``."""
    found = next((e for e in lock.python if e.prefix == env), None)
    if found is None or not found.python:
        raise TagError(f"the lock has no Python version for environment {env}; re-freeze")
    return supported_tags(python_version(found.python),
                          platform_tags(machine(lock.platform), glibc_of(lock)))


def installable(files: Iterable[PipFile], tags: Sequence[Tag]) -> list[PipFile]:
    """The wheels among ``files`` that install with ``tags``; the sdists if none does."""
    wanted = set(tags)
    wheels, sdists = [], []
    for f in files:
        if f.filename.endswith(".whl"):
            try:
                file_tags = parse_wheel_filename(f.filename)[3]
            except InvalidWheelFilename:
                continue
            if file_tags & wanted:
                wheels.append(f)
        elif f.filename.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz")):
            sdists.append(f)
    return sorted(wheels or sdists, key=lambda f: f.filename)
