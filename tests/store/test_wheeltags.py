"""Choosing the locked Python files that install in the image (relock.store.wheeltags)."""

from __future__ import annotations

import pytest
from packaging.tags import Tag

from relock.build.view import PipFile
from relock.lock.lockfile import AptPackage, Distro, Input, Lock, PythonEnv
from relock.store.wheeltags import (
    TagError,
    glibc_of,
    installable,
    lock_tags,
    machine,
    platform_tags,
    supported_tags,
)


def lock(platform: str = "linux/amd64", libc: str | None = "2.41-12",
         python: str = "3.13") -> Lock:
    apt = (AptPackage("libc6", libc, "amd64"),) if libc else ()
    return Lock(input=Input("Dockerfile.in", "0" * 64), distro=Distro("debian", "13"),
                platform=platform, apt=apt,
                python=(PythonEnv("/opt/venv", python, "/opt/venv/lib", venv=True),))


def files(*names: str) -> list[PipFile]:
    return [PipFile("x", "1.0", n, f"{i:064x}") for i, n in enumerate(names)]


def test_glibc_from_the_locked_libc6() -> None:
    assert glibc_of(lock(libc="2.41-12")) == (2, 41)
    assert glibc_of(lock(libc="2.36-9+deb12u10")) == (2, 36)
    assert glibc_of(lock(libc=None)) is None


def test_platform_tags_follow_glibc_down_to_manylinux1() -> None:
    tags = platform_tags("x86_64", (2, 28))
    assert tags[0] == "manylinux_2_28_x86_64"
    assert tags.index("manylinux_2_17_x86_64") < tags.index("manylinux2014_x86_64")
    assert "manylinux1_x86_64" in tags and "manylinux_2_29_x86_64" not in tags
    assert tags[-1] == "linux_x86_64"
    # Without glibc (not a glibc distro) only the plain linux tag.
    assert platform_tags("aarch64", None) == ["linux_aarch64"]


def test_machine_names() -> None:
    assert machine("linux/amd64") == "x86_64"
    assert machine("linux/arm64") == "aarch64"
    with pytest.raises(TagError, match="windows/amd64"):
        machine("windows/amd64")


def test_supported_tags_are_the_images_not_this_machines() -> None:
    tags = supported_tags((3, 11), ["manylinux_2_17_x86_64", "linux_x86_64"])
    assert tags[0] == Tag("cp311", "cp311", "manylinux_2_17_x86_64")
    assert Tag("cp311", "abi3", "linux_x86_64") in tags
    assert Tag("py3", "none", "any") in tags
    assert Tag("cp313", "cp313", "manylinux_2_17_x86_64") not in tags


def test_a_binary_wheel_for_the_image_and_pure_wheels_are_chosen() -> None:
    found = files(
        "markupsafe-3.0.2-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "markupsafe-3.0.2-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "markupsafe-3.0.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "markupsafe-3.0.2-cp313-cp313-musllinux_1_2_x86_64.whl",
        "markupsafe-3.0.2-cp313-cp313-win_amd64.whl",
        "markupsafe-3.0.2.tar.gz",
    )
    chosen = installable(found, lock_tags(lock(), "/opt/venv"))
    assert [f.filename for f in chosen] == [
        "markupsafe-3.0.2-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
    pure = files("six-1.17.0-py2.py3-none-any.whl", "six-1.17.0.tar.gz")
    assert [f.filename for f in installable(pure, lock_tags(lock(), "/opt/venv"))] == [
        "six-1.17.0-py2.py3-none-any.whl"]


def test_a_wheel_needing_a_newer_glibc_is_not_chosen_and_the_sdist_is() -> None:
    found = files("x-1.0-cp313-cp313-manylinux_2_39_x86_64.whl", "x-1.0.tar.gz")
    old_glibc = lock(libc="2.36-9")
    assert [f.filename for f in installable(found, lock_tags(old_glibc, "/opt/venv"))] == [
        "x-1.0.tar.gz"]
    assert [f.filename for f in installable(found, lock_tags(lock(), "/opt/venv"))] == [
        "x-1.0-cp313-cp313-manylinux_2_39_x86_64.whl"]


def test_the_envs_python_and_the_locks_arch_decide() -> None:
    found = files("x-1.0-cp311-cp311-manylinux_2_17_aarch64.whl")
    assert installable(found, lock_tags(lock(platform="linux/arm64", python="3.11"),
                                        "/opt/venv")) == found
    assert installable(found, lock_tags(lock(), "/opt/venv")) == []


def test_an_env_the_lock_does_not_describe_is_an_error() -> None:
    with pytest.raises(TagError, match="/usr/local"):
        lock_tags(lock(), "/usr/local")
