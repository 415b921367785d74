"""relock.lock.platform: one reading, one spelling and one Debian architecture of a platform."""

from __future__ import annotations

import pytest

from relock.lock import platform as pf
from relock.lock.platform import Platform, PlatformError

# text -> its one spelling (containerd's normalisation).
SPELLINGS = {
    "linux/amd64": "linux/amd64",
    "linux/amd64/v1": "linux/amd64",
    "linux/amd64/v2": "linux/amd64/v2",
    "linux/x86_64": "linux/amd64",
    "linux/arm64": "linux/arm64",
    "linux/arm64/v8": "linux/arm64",
    "linux/aarch64": "linux/arm64",
    "linux/arm64/v9": "linux/arm64/v9",
    "linux/arm": "linux/arm/v7",
    "linux/arm/v7": "linux/arm/v7",
    "linux/arm/7": "linux/arm/v7",
    "linux/arm/v6": "linux/arm/v6",
    "linux/arm/v5": "linux/arm/v5",
    "linux/armhf": "linux/arm/v7",
    "linux/armel": "linux/arm/v6",
    "linux/386": "linux/386",
    "linux/i386": "linux/386",
    "linux/ppc64le": "linux/ppc64le",
    "linux/s390x": "linux/s390x",
    "linux/riscv64": "linux/riscv64",
    "Linux/AMD64": "linux/amd64",
}

# The Debian architecture of each platform: Debian's armhf needs ARMv7, so v6 and
# v5 are armel (as the official arm32v5 images are).
DEBIAN = {
    "linux/amd64": "amd64",
    "linux/arm64": "arm64",
    "linux/arm64/v8": "arm64",
    "linux/arm/v7": "armhf",
    "linux/arm": "armhf",
    "linux/arm/v6": "armel",
    "linux/arm/v5": "armel",
    "linux/386": "i386",
    "linux/ppc64le": "ppc64el",
    "linux/mips64le": "mips64el",
    "linux/s390x": "s390x",
    "linux/riscv64": "riscv64",
}


@pytest.mark.parametrize(("text", "spelled"), sorted(SPELLINGS.items()))
def test_the_normalisation_table(text: str, spelled: str) -> None:
    assert pf.canonical(text) == spelled
    assert str(pf.parse(text)) == spelled


@pytest.mark.parametrize("text", sorted(set(SPELLINGS.values())))
def test_round_trips(text: str) -> None:
    p = pf.parse(text)
    assert str(p) == text
    assert pf.parse(str(p)) == p
    descriptor = {"os": p.os, "architecture": p.arch, **({"variant": p.variant} if p.variant
                                                         else {})}
    assert pf.from_descriptor(descriptor) == p
    assert pf.descriptor_text(descriptor) == text


@pytest.mark.parametrize(("text", "arch"), sorted(DEBIAN.items()))
def test_the_debian_architecture_table(text: str, arch: str) -> None:
    assert pf.debian_arch(text) == arch
    assert pf.parse(text).debian_arch == arch


def test_an_arm64_filter_matches_v8_descriptors() -> None:
    v8 = pf.from_descriptor({"os": "linux", "architecture": "arm64", "variant": "v8"})
    assert v8 is not None
    assert v8.matches("linux/arm64")
    assert v8.matches("linux/arm64/v8")
    assert v8.matches(Platform("linux", "arm64"))
    assert not v8.matches("linux/amd64")
    assert not v8.matches("linux/arm64/v9")
    assert not v8.matches("not a platform")
    assert pf.descriptor_text({"os": "linux", "architecture": "arm64", "variant": "v8"}) == \
        "linux/arm64"
    arm = pf.from_descriptor({"os": "linux", "architecture": "arm"})
    assert arm is not None and arm.matches("linux/arm/v7")


def test_platforms_made_as_engines_give_them_are_equal() -> None:
    assert Platform("linux", "arm64", "v8") == Platform("linux", "arm64")
    assert Platform(arch="x86_64") == Platform()
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"
    assert Platform("linux", "arm", "v6").arch_text == "arm/v6"


@pytest.mark.parametrize("value", [None, {}, {"os": "linux"}, {"architecture": "amd64"},
                                   {"os": 1, "architecture": "amd64"}, "linux/amd64"])
def test_a_descriptor_without_a_platform_names_none(value: object) -> None:
    assert pf.from_descriptor(value) is None
    assert pf.descriptor_text(value) == ""


@pytest.mark.parametrize("text", ["", "linux", "amd64", "linux/", "/amd64", "linux/arm/v7/x",
                                  "linux/amd 64", "linux/amd64\n"])
def test_text_that_is_not_a_platform_is_refused(text: str) -> None:
    with pytest.raises(PlatformError, match="is not a platform"):
        pf.parse(text)
    assert pf.spelled(text) == text


@pytest.mark.parametrize(("machine", "text"), [
    ("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"), ("armv7l", "linux/arm/v7"),
    ("armv6l", "linux/arm/v6"), ("i686", "linux/386"), ("ppc64le", "linux/ppc64le"),
    ("s390x", "linux/s390x"), ("riscv64", "linux/riscv64")])
def test_the_platform_of_a_machine(machine: str, text: str) -> None:
    assert str(pf.of_machine(machine)) == text


def test_a_lock_part_is_found_by_any_spelling_of_its_platform() -> None:
    from tests.factories import make_lock

    lock = make_lock(platform="linux/arm64")
    assert lock.for_platform("linux/arm64/v8") is lock
