"""Freezing's logic on an in-memory image source: base pins, moved tags, image facts.

The engine-backed evidence is tests/e2e/test_freeze_e2e.py; these check the
decisions without an engine.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relock.errors import BaseImageError, FrontendError, ImageNotFoundError
from relock.freeze.freeze import FreezeOptions, freeze_image, pin_bases, pin_frontend
from relock.image.engine import ImageInfo
from relock.lock.lockfile import Frontend
from relock.lock.platform import Platform
from relock.template.dockerfile import parse
from tests.fakes import FakeSource, digest, layers, repo_digest

TWO_STAGES = parse("FROM python:3.13-slim AS build\nRUN true\n"
                   "FROM debian:trixie-slim\nCOPY --from=build /x /x\n")


def source_with_bases() -> FakeSource:
    source = FakeSource()
    source.add(ImageInfo("sha256:" + "1" * 64, layers("a"),
                         (repo_digest("python", digest("p")),)), "python:3.13-slim")
    source.add(ImageInfo("sha256:" + "2" * 64, layers("b"),
                         (repo_digest("debian", digest("d")),)), "debian:trixie-slim")
    return source


def test_every_external_from_is_pinned_to_its_repository_digest() -> None:
    bases, warnings = pin_bases(source_with_bases(), TWO_STAGES, allow_local=False)
    assert [(b.stage, b.ref, b.digest, b.name) for b in bases] == [
        (0, "python:3.13-slim", digest("p"), "build"),
        (1, "debian:trixie-slim", digest("d"), ""),
    ]
    assert warnings == []


def test_a_from_with_a_digest_is_kept_without_asking_the_source() -> None:
    df = parse(f"FROM debian:trixie-slim@{digest('e')}\n")
    bases, _ = pin_bases(FakeSource(), df, allow_local=False)
    assert [(b.ref, b.digest) for b in bases] == [
        (f"debian:trixie-slim@{digest('e')}", digest("e"))]


def test_digests_of_another_repository_do_not_count() -> None:
    source = FakeSource()
    # The same image pushed elsewhere: that digest cannot pin debian:trixie-slim.
    source.add(ImageInfo("sha256:" + "3" * 64, layers("b"),
                         (repo_digest("127.0.0.1:5000/debian", digest("m")),)),
               "debian:trixie-slim")
    with pytest.raises(BaseImageError, match=r"no registry digest.*--allow-local-base"):
        pin_bases(source, parse("FROM debian:trixie-slim\n"), allow_local=False)
    bases, warnings = pin_bases(source, parse("FROM debian:trixie-slim\n"), allow_local=True)
    assert bases[0].image_id == "sha256:" + "3" * 64 and not bases[0].digest
    assert "other hosts cannot pull" in warnings[0]


def test_a_store_that_names_built_images_by_digest_asks_the_registry() -> None:
    """The containerd image store gives a locally built base a repo digest too: only
    the registry (asked as a pull would be) tells a pulled base from a built one."""
    source = FakeSource()
    source.add(ImageInfo("sha256:" + "3" * 64, layers("b"), (repo_digest("mine", digest("m")),),
                         local_digests=True), "mine:1")
    df = parse("FROM mine:1\n")
    source.in_registry[f"mine@{digest('m')}"] = False
    with pytest.raises(BaseImageError, match=r"no registry digest.*--allow-local-base"):
        pin_bases(source, df, allow_local=False)
    bases, warnings = pin_bases(source, df, allow_local=True)
    assert bases[0].image_id == "sha256:" + "3" * 64 and not bases[0].digest
    source.in_registry[f"mine@{digest('m')}"] = True
    bases, warnings = pin_bases(source, df, allow_local=False)
    assert [b.digest for b in bases] == [digest("m")] and warnings == []
    # A registry that cannot be asked: locked, and said.
    source.in_registry[f"mine@{digest('m')}"] = None
    bases, warnings = pin_bases(source, df, allow_local=False)
    assert bases[0].digest == digest("m")
    assert warnings == [f"could not ask the registry of mine:1 whether it has {digest('m')}; "
                        "locked it (other hosts pull it from there)"]


def test_a_moved_tag_pins_the_base_the_image_sits_on() -> None:
    source = FakeSource()
    old = source.add(ImageInfo("sha256:" + "4" * 64, layers("o"),
                               (repo_digest("mine/base", digest("o")),)), "mine/base:1")
    built = source.add(ImageInfo("sha256:" + "5" * 64, (*old.layers, *layers("x"))), "app")
    # The tag moves to a new image; the old one stays in the source.
    source.add(ImageInfo("sha256:" + "6" * 64, layers("n"),
                         (repo_digest("mine/base", digest("n")),)), "mine/base:1")
    df = parse("FROM mine/base:1\nRUN true\n")
    bases, warnings = pin_bases(source, df, allow_local=False, built=built)
    assert bases[0].digest == digest("o")
    assert warnings == ["mine/base:1 has moved since the build; locked the digest the image "
                        "sits on"]
    # Without the image that was built, the tag as it is now is what counts.
    assert pin_bases(source, df, allow_local=False)[0][0].digest == digest("n")


def test_an_image_of_another_platform_pins_its_own_base_without_a_moved_tag_warning() -> None:
    """The engine's tag names this host's image; an arm64 image built from the
    arm64 base (pulled by digest) is pinned to that base, and the tag is no news."""
    source = FakeSource()
    arm = source.add(ImageInfo("sha256:" + "4" * 64, layers("a"),
                               (repo_digest("mine/base", digest("a")),),
                               platform=Platform("linux", "arm64")), "mine/base@" + digest("a"))
    source.add(ImageInfo("sha256:" + "6" * 64, layers("n"),
                         (repo_digest("mine/base", digest("n")),)), "mine/base:1")
    built = source.add(ImageInfo("sha256:" + "5" * 64, (*arm.layers, *layers("x")),
                                 platform=Platform("linux", "arm64")), "app")
    bases, warnings = pin_bases(source, parse("FROM mine/base:1\n"), allow_local=False,
                                built=built)
    assert bases[0].digest == digest("a") and warnings == []


def test_a_moved_tag_whose_old_base_is_gone_is_an_error() -> None:
    source = FakeSource()
    source.add(ImageInfo("sha256:" + "6" * 64, layers("n"),
                         (repo_digest("mine/base", digest("n")),)), "mine/base:1")
    built = source.add(ImageInfo("sha256:" + "5" * 64, layers("o", "x")), "app")
    with pytest.raises(BaseImageError, match="the tag has moved since the build"):
        pin_bases(source, parse("FROM mine/base:1\n"), allow_local=False, built=built)


def test_a_base_the_source_lacks_is_image_not_found() -> None:
    with pytest.raises(ImageNotFoundError):
        pin_bases(FakeSource(), parse("FROM debian:trixie-slim\n"), allow_local=False)


def test_freeze_image_takes_platform_and_snapshot_time_from_the_image_facts() -> None:
    source = source_with_bases()
    status = (b"Package: tini\nStatus: install ok installed\nVersion: 0.19.0-3\n"
              b"Architecture: arm64\n\n")
    created = datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC)
    source.add(ImageInfo("sha256:" + "7" * 64, layers("b", "y"),
                         platform=Platform("linux", "arm", "v7"), created=created), "app",
               files={"var/lib/dpkg/status": status,
                      "etc/os-release": b"ID=debian\nVERSION_ID=\"13\"\n"})
    df = parse("FROM debian:trixie-slim\nRUN true\n")
    result = freeze_image(source, "app", df, FreezeOptions(index=None))
    lock = result.lock
    assert lock.platform == "linux/arm/v7"
    assert (lock.snapshot, lock.snapshot_from) == ("20261102T030405Z", "image-created")
    assert [(p.name, p.version, p.arch) for p in lock.apt] == [("tini", "0.19.0-3", "arm64")]
    assert [b.digest for b in lock.base] == [digest("d")]


# -- the frontend a "# syntax=" line names ---------------------------------------------

def test_freeze_records_the_frontend_of_the_syntax_line_by_its_registry_digest() -> None:
    source = source_with_bases()
    source.add(ImageInfo("sha256:" + "8" * 64, layers("b", "z")), "app",
               files={"etc/os-release": b"ID=debian\n"})
    df = parse("# syntax=docker/dockerfile:1\nFROM debian:trixie-slim\nRUN true\n")
    asked: list[str] = []

    def registry(ref: str) -> str:
        asked.append(ref)
        return digest("f")

    lock = freeze_image(source, "app", df, FreezeOptions(index=None, frontends=registry)).lock
    assert asked == ["docker/dockerfile:1"]
    assert lock.frontend == Frontend("docker/dockerfile:1", digest("f"))
    # Without a syntax line nothing is asked or recorded.
    plain = parse("FROM debian:trixie-slim\nRUN true\n")
    assert freeze_image(source, "app", plain,
                        FreezeOptions(index=None, frontends=registry)).lock.frontend is None
    assert asked == ["docker/dockerfile:1"]


def test_the_build_argument_comes_before_the_syntax_line_and_a_pinned_one_is_kept() -> None:
    df = parse("# syntax=docker/dockerfile:1\nFROM debian:trixie-slim\n",
               build_args={"BUILDKIT_SYNTAX": f"me/frontend:2@{digest('e')}"})
    frontend, warnings = pin_frontend(df, lambda ref: pytest.fail("asked"))  # type: ignore[arg-type,return-value]
    assert frontend == Frontend(f"me/frontend:2@{digest('e')}", digest("e"), build_arg=True)
    assert warnings == []
    options = parse("FROM debian:trixie-slim\n",
                    build_args={"BUILDKIT_SYNTAX": "docker/dockerfile:1 --opt"})
    frontend, warnings = pin_frontend(options, lambda ref: digest("f"))
    assert frontend is None
    assert "is not one image reference" in warnings[0]


def test_a_frontend_no_registry_has_is_one_clear_line() -> None:
    df = parse("# syntax=docker/dockerfile:9\nFROM debian:trixie-slim\n", "Dockerfile.in")

    def nowhere(ref: str) -> str:
        raise ImageNotFoundError(f"{ref}: not in the registry (127.0.0.1:5000: no such "
                                 "manifest)")

    with pytest.raises(FrontendError) as e:
        pin_frontend(df, nowhere)
    assert str(e.value) == (
        "Dockerfile.in:1: # syntax=docker/dockerfile:9: cannot pin the frontend to its registry "
        "digest (docker/dockerfile:9: not in the registry (127.0.0.1:5000: no such manifest))")
    assert e.value.exit_code == 2
    bad = parse("# syntax=Docker/Dockerfile\nFROM debian:trixie-slim\n", "Dockerfile.in")
    with pytest.raises(FrontendError, match="the frontend is not an image reference"):
        pin_frontend(bad, nowhere)
