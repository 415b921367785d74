"""Platforms: ``os/arch[/variant]``, read once and spelled one way.

An engine, a registry's image index, a lock and a user on the command line
all name platforms, each a little differently: ``arm64`` with or without
its ``v8``, ``arm`` with or without its ``v7``, ``x86_64`` for ``amd64``.
A ``Platform`` is normalised as containerd does (arm64's v8 and amd64's v1
are the default variants and are dropped; ``arm`` without a variant is v7),
so that two names of one platform are equal and print the same. The Debian
architecture of a platform is here too: one map, not one per caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relock.errors import RelockError


class PlatformError(RelockError):
    """Text that does not name a platform."""


# Other names of an architecture -> (the OCI name, the variant it implies or "").
_ARCH_ALIASES = {
    "x86_64": ("amd64", ""), "x86-64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "armhf": ("arm", "v7"), "armel": ("arm", "v6"),
    "i386": ("386", ""), "i686": ("386", ""),
}
# The variant an architecture means when it names none: written, it is dropped.
_DEFAULT_VARIANT = {"amd64": "v1", "arm64": "v8"}
# Other spellings of a variant (containerd's).
_VARIANT_ALIASES = {
    "arm64": {"8": "v8", "v8.0": "v8", "9": "v9", "9.0": "v9", "v9.0": "v9"},
    "arm": {"5": "v5", "6": "v6", "7": "v7", "8": "v8"},
}

# A platform's (arch, variant) -> its Debian architecture, where Debian names it
# otherwise or the variant decides. Debian's armhf needs ARMv7; ARMv6 and v5
# boards run armel (the official arm32v5 images are armel).
_DEBIAN_ARCHES = {
    ("amd64", ""): "amd64",
    ("arm64", ""): "arm64",
    ("arm", "v7"): "armhf",
    ("arm", "v6"): "armel",
    ("arm", "v5"): "armel",
    ("386", ""): "i386",
    ("ppc64le", ""): "ppc64el",
    ("mips64le", ""): "mips64el",
    ("s390x", ""): "s390x",
    ("riscv64", ""): "riscv64",
}

# ``uname -m`` of a machine -> its platform's architecture text.
_MACHINES = {"armv7l": "arm/v7", "armv6l": "arm/v6", "armv5tel": "arm/v5",
             "armv5tejl": "arm/v5"}

# Debian's architecture names as Python's ``platform.machine()`` spells them on Linux
# (the ``platform_machine`` of markers).
PYTHON_MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "armhf": "armv7l",
                   "armel": "armv5tel", "i386": "i686", "ppc64el": "ppc64le",
                   "s390x": "s390x", "riscv64": "riscv64", "mips64el": "mips64",
                   "loong64": "loongarch64"}

_WORD = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, order=True)
class Platform:
    """The platform an image is for: ``os/arch[/variant]``, kept normalised."""

    os: str = "linux"
    arch: str = "amd64"
    variant: str = ""

    def __post_init__(self) -> None:
        os_, arch, variant = self.os.lower(), self.arch.lower(), self.variant.lower()
        if arch in _ARCH_ALIASES:
            arch, implied = _ARCH_ALIASES[arch]
            variant = variant or implied
        variant = _VARIANT_ALIASES.get(arch, {}).get(variant, variant)
        if arch == "arm" and not variant:
            variant = "v7"
        if variant == _DEFAULT_VARIANT.get(arch):
            variant = ""
        object.__setattr__(self, "os", os_)
        object.__setattr__(self, "arch", arch)
        object.__setattr__(self, "variant", variant)

    def __str__(self) -> str:
        text = f"{self.os}/{self.arch}"
        return f"{text}/{self.variant}" if self.variant else text

    @property
    def arch_text(self) -> str:
        """``arch[/variant]``: the platform less its os (``arm/v7``)."""
        return f"{self.arch}/{self.variant}" if self.variant else self.arch

    @property
    def debian_arch(self) -> str:
        """The Debian architecture of the platform (``armhf`` for ``linux/arm/v7``).

        One Debian does not name is the platform's own architecture word.
        """
        return _DEBIAN_ARCHES.get((self.arch, self.variant), self.arch)

    def matches(self, other: Platform | str) -> bool:
        """Whether ``other`` (a Platform or its text) names this platform."""
        if isinstance(other, str):
            try:
                other = parse(other)
            except PlatformError:
                return False
        return self == other


def parse(text: str) -> Platform:
    """The platform ``text`` names: ``linux/arm64``, ``linux/arm64/v8``, ``linux/arm/v7``."""
    words = text.split("/")
    if not 2 <= len(words) <= 3 or not all(_WORD.fullmatch(w) for w in words):
        raise PlatformError(f"{text!r:.80} is not a platform (os/arch[/variant], as "
                            "linux/amd64 or linux/arm/v7)")
    return Platform(*words)


def canonical(text: str) -> str:
    """``text``'s platform spelled the one way (``linux/arm64/v8`` -> ``linux/arm64``)."""
    return str(parse(text))


def chosen(text: str | None) -> str | None:
    """A ``--platform`` value spelled the one way, None when none was given.

    An empty value, or one that names no platform, is a ``PlatformError``: it
    never means "every platform" (``--platform ''`` is refused, not ignored).
    """
    return None if text is None else canonical(text.strip())


def chosen_list(texts: Sequence[str]) -> list[str]:
    """Repeated or comma-separated ``--platform`` values, each ``chosen``, in order, once."""
    out = [canonical(p.strip()) for text in texts for p in text.split(",")]
    return list(dict.fromkeys(out))


def spelled(text: str) -> str:
    """``canonical(text)``, or ``text`` as it is when it names no platform (to compare)."""
    try:
        return canonical(text)
    except PlatformError:
        return text


def from_descriptor(value: object) -> Platform | None:
    """The platform of an OCI descriptor's ``platform`` object (or of an image
    config: ``os``, ``architecture``, ``variant``); None when it names none."""
    if not isinstance(value, Mapping):
        return None
    os_, arch, variant = value.get("os"), value.get("architecture"), value.get("variant")
    if not (os_ and arch and isinstance(os_, str) and isinstance(arch, str)):
        return None
    return Platform(os_, arch, variant if isinstance(variant, str) else "")


def descriptor_text(value: object) -> str:
    """``os/arch[/variant]`` of a descriptor's ``platform`` object, "" when it names none."""
    found = from_descriptor(value)
    return "" if found is None else str(found)


def debian_arch(text: str) -> str:
    """The Debian architecture of the platform ``text`` (``linux/arm/v6`` -> ``armel``)."""
    return parse(text).debian_arch


def python_machine(text: str) -> str:
    """``platform.machine()`` of Python on the platform ``text`` ("" when not known)."""
    try:
        return PYTHON_MACHINES.get(debian_arch(text), "")
    except PlatformError:
        return ""


def of_machine(machine: str) -> Platform:
    """The Linux platform of a machine whose ``uname -m`` is ``machine``."""
    arch = _MACHINES.get(machine, machine or "amd64")
    return parse(f"linux/{arch}")


def host() -> Platform:
    """This machine's platform (``linux/amd64``), as an engine here builds for by default."""
    import platform

    return of_machine(platform.machine())
