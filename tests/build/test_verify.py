"""What counts as drift between a lock and the image frozen again."""

from __future__ import annotations

import dataclasses

from relock.build.verify import check_base, compare, verify_image
from relock.image.engine import ImageInfo
from relock.lock.lockfile import AptPackage, Base, Distro, Lock, PipPackage
from tests.factories import make_lock
from tests.fakes import FakeSource, digest, layers, repo_digest

LOCKED = make_lock(
    snapshot="20261101T000000Z",
    apt=(AptPackage("tini", "0.19.0-3+b8", "amd64", sha256="1" * 64),
         AptPackage("less", "668-1", "amd64")),
    pip=(PipPackage("numpy", "2.3.5", "/opt/venv", hashes=("sha256:aa",)),),
)


def test_a_faithful_rebuild_has_no_drift() -> None:
    # Younger, and frozen without the index: neither is drift.
    found = dataclasses.replace(LOCKED, snapshot="20261201T000000Z",
                                pip=(PipPackage("numpy", "2.3.5", "/opt/venv"),))
    assert compare(LOCKED, found) == []


def test_every_kind_of_drift_is_one_line() -> None:
    found = dataclasses.replace(
        LOCKED,
        distro=Distro("debian", "12", "bookworm"),
        platform="linux/arm64",
        apt=(AptPackage("tini", "0.19.0-3+b8", "amd64", sha256="2" * 64),
             AptPackage("curl", "8.14.1-2", "amd64")),
        pip=(PipPackage("numpy", "2.3.4", "/opt/venv"),),
    )
    assert [d.describe() for d in compare(LOCKED, found)] == [
        "distro os-release: locked debian 13 (trixie), image has debian 12 (bookworm)",
        "platform image: locked linux/amd64, image has linux/arm64",
        "apt curl:amd64: 8.14.1-2 in the image, not in the lock",
        "apt less:amd64: locked 668-1, not in the image",
        "apt tini:amd64: 0.19.0-3+b8, but other bytes than locked",
        "pip numpy (/opt/venv): locked 2.3.5, image has 2.3.4",
    ]


# -- the base check, on an in-memory image source ---------------------------------

def _base_lock(*bases: Base) -> Lock:
    return dataclasses.replace(LOCKED, base=bases)


def test_an_image_on_the_locked_base_has_no_base_drift() -> None:
    source = FakeSource()
    base = source.add(ImageInfo("sha256:" + "1" * 64, layers("a"),
                                (repo_digest("debian", digest("d")),)))
    image = source.add(ImageInfo("sha256:" + "2" * 64, (*base.layers, *layers("x"))), "app")
    lock = _base_lock(Base(0, "debian:trixie-slim", digest("d")))
    assert check_base(source, image, lock) == []
    assert source.pulled == []


def test_a_locked_base_the_source_lacks_is_pulled_by_digest() -> None:
    source = FakeSource()
    base = ImageInfo("sha256:" + "1" * 64, layers("a"), (repo_digest("debian", digest("d")),))
    source.pullable[f"debian:trixie-slim@{digest('d')}"] = base
    image = source.add(ImageInfo("sha256:" + "2" * 64, (*base.layers, *layers("x"))), "app")
    lock = _base_lock(Base(0, "debian:trixie-slim", digest("d")))
    assert check_base(source, image, lock) == []
    assert source.pulled == [f"debian:trixie-slim@{digest('d')}"]


def test_an_image_on_another_base_drifts() -> None:
    source = FakeSource()
    source.add(ImageInfo("sha256:" + "1" * 64, layers("a"), (repo_digest("debian", digest("d")),)))
    source.add(ImageInfo("sha256:" + "3" * 64, layers("c")))
    image = source.add(ImageInfo("sha256:" + "2" * 64, layers("b", "x")), "app")
    lock = _base_lock(Base(0, "python:3", image_id="sha256:" + "3" * 64),
                      Base(1, "debian:trixie-slim", digest("d")))
    drift = check_base(source, image, lock)
    assert [d.describe() for d in drift] == [
        f"base python:3 / debian:trixie-slim: locked debian:trixie-slim@{digest('d')}, "
        f"sha256:{'3' * 64}, but the image is built on none of them"]


def test_a_local_base_that_is_gone_is_skipped_not_pulled() -> None:
    source = FakeSource()
    image = source.add(ImageInfo("sha256:" + "2" * 64, layers("b", "x")), "app")
    lock = _base_lock(Base(0, "mine:dev", image_id="sha256:" + "9" * 64))
    assert [d.kind for d in check_base(source, image, lock)] == ["base"]
    assert source.pulled == []


def test_verify_image_freezes_again_and_compares() -> None:
    source = FakeSource()
    base = source.add(ImageInfo("sha256:" + "1" * 64, layers("a"),
                                (repo_digest("debian", digest("d")),)))
    status = (b"Package: tini\nStatus: install ok installed\nVersion: 0.19.0-3+b8\n"
              b"Architecture: amd64\n\n")
    source.add(ImageInfo("sha256:" + "2" * 64, (*base.layers, *layers("x"))), "app",
               files={"var/lib/dpkg/status": status, "etc/os-release":
                      b"ID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n"})
    lock = dataclasses.replace(_base_lock(Base(0, "debian:trixie-slim", digest("d"))), pip=())
    assert [d.describe() for d in verify_image(source, "app", lock)] == [
        "apt less:amd64: locked 668-1, not in the image"]

def test_a_changed_apt_source_is_drift() -> None:
    """Every field of a source reaches the build: a new trusted=yes is drift (issue 12 S2)."""
    from relock.lock.lockfile import AptSource

    src = AptSource("/etc/apt/sources.list.d/debian.sources", ("deb",),
                    ("http://127.0.0.1:8/debian",), ("trixie",), ("main",))
    locked = dataclasses.replace(LOCKED, apt_sources=(src,))
    found = dataclasses.replace(locked, apt_sources=(
        dataclasses.replace(src, options={"trusted": "yes"}),))
    assert compare(locked, locked) == []
    assert [d.describe() for d in compare(locked, found)] == [
        "apt-source /etc/apt/sources.list.d/debian.sources: deb [trusted=yes] "
        "http://127.0.0.1:8/debian trixie main in the image, not in the lock",
        "apt-source /etc/apt/sources.list.d/debian.sources: locked "
        "deb http://127.0.0.1:8/debian trixie main, not in the image",
    ]


def test_drift_lines_escape_what_the_image_says() -> None:
    found = dataclasses.replace(LOCKED, apt=(
        *LOCKED.apt, AptPackage("evil\x1b[2J", "1.0\nRUN id", "amd64")))
    [line] = [d.describe() for d in compare(LOCKED, found)]
    assert "\x1b" not in line and "\n" not in line and "\\x1b[2J" in line


def test_build_requirements_are_not_looked_for_in_the_image() -> None:
    """pip threw its build environment away: a lock's ``kind = "build"`` entries are not
    drift; the project's own package (``kind = "context"``) is compared by version."""
    own = PipPackage("myapp", "3.1.1", "/opt/venv", kind="context")
    locked = dataclasses.replace(LOCKED, pip=(
        *LOCKED.pip, own,
        PipPackage("setuptools", "80.9.0", "/opt/venv", kind="build")))
    found = dataclasses.replace(LOCKED, pip=(*LOCKED.pip, own))
    assert compare(locked, found) == []
    older = dataclasses.replace(found, pip=(*LOCKED.pip, dataclasses.replace(own, version="3.1.0")))
    assert [d.describe() for d in compare(locked, older)] == [
        "pip myapp (/opt/venv): locked 3.1.1, image has 3.1.0"]
