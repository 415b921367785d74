"""Base.pinned and Base.by_manifest: the one way a locked base image is named."""

from __future__ import annotations

from relock.lock.lockfile import Base

INDEX, OWN, OLD = "sha256:" + "1" * 64, "sha256:" + "2" * 64, "sha256:" + "3" * 64


def test_a_base_is_pinned_by_its_reference_and_digest() -> None:
    assert Base(0, "debian:trixie-slim", INDEX).pinned == f"debian:trixie-slim@{INDEX}"
    assert Base(0, "debian", INDEX).pinned == f"debian@{INDEX}"
    assert Base(0, "127.0.0.1:5000/team/base:1", INDEX).pinned == \
        f"127.0.0.1:5000/team/base:1@{INDEX}"
    # A reference that had a digest already is pinned to the lock's.
    assert Base(0, f"debian:trixie@{OLD}", INDEX).pinned == f"debian:trixie@{INDEX}"


def test_a_base_without_a_digest_is_its_image_id() -> None:
    assert Base(0, "local-only", image_id="sha256:" + "a" * 64).pinned == "sha256:" + "a" * 64


def test_by_manifest_pins_a_platform_s_own_manifest() -> None:
    base = Base(0, "debian:trixie", INDEX, platform="linux/arm64", manifest=OWN)
    assert base.by_manifest().pinned == f"debian:trixie@{OWN}"
    plain = Base(0, "debian:trixie", INDEX)
    assert plain.by_manifest() is plain
