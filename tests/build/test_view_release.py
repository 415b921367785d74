"""The locked view's Release file, as a template that keeps APT's lists leaves it in
the pinned image: dated as the lock's snapshot, so that the pinned image says the
raw image's snapshot and ``relock diff RAW PINNED`` finds nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from relock.build.view import LockedView
from relock.freeze.command import DiffRequest, FreezeRequest, run_diff, run_freeze
from relock.image.engine import ImageInfo
from relock.inventory import apt
from tests.factories import make_lock
from tests.fakes import FakeSource, MemFS, digest, layers, repo_digest

STATUS = (b"Package: tini\nStatus: install ok installed\nVersion: 0.19.0-3\n"
          b"Architecture: amd64\n\n")
OS_RELEASE = b'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'
LISTS = "var/lib/apt/lists/"


def test_the_release_file_is_dated_as_the_locks_snapshot() -> None:
    view = LockedView([], make_lock(snapshot="20261130T022141Z"), None)
    release = view.apt_meta["Release"].decode()
    assert "\nDate: Mon, 30 Nov 2026 02:21:41 GMT\n" in release
    # The same in every build: the pinned image's list files do not change with the day.
    assert LockedView([], make_lock(snapshot="20261130T022141Z"), None).apt_meta == view.apt_meta
    # What a freeze of the pinned image reads back from it.
    fs = MemFS({LISTS + "127.0.0.1:7780_apt_._Release": release.encode()})
    assert apt.release_date(fs) == datetime(2026, 11, 30, 2, 21, 41, tzinfo=UTC)


def test_a_lock_without_a_snapshot_dates_it_now() -> None:
    release = LockedView([], make_lock(snapshot=""), None).apt_meta["Release"].decode()
    fs = MemFS({LISTS + "v_Release": release.encode()})
    when = apt.release_date(fs)
    assert when is not None and abs((datetime.now(UTC) - when).total_seconds()) < 60


def test_diff_of_a_raw_and_a_pinned_image_that_keep_their_lists_finds_nothing(
        tmp_path: Path) -> None:
    """apt-get upgrade with the lists kept: the raw image's lists are the mirror's,
    the pinned image's the view's; the same packages, so the same contents."""
    source = FakeSource()
    base = source.add(ImageInfo("sha256:" + "2" * 64, layers("b"),
                                (repo_digest("debian", digest("d")),)), "debian:trixie-slim")
    common = {"var/lib/dpkg/status": STATUS, "etc/os-release": OS_RELEASE}
    source.add(ImageInfo("sha256:" + "7" * 64, (*base.layers, *layers("raw"))), "raw", files={
        **common,
        LISTS + "m_debian_dists_trixie_InRelease": b"Date: Sat, 08 Nov 2026 09:24:33 UTC\n",
        LISTS + "m_debian_dists_trixie-updates_InRelease":
            b"Date: Mon, 30 Nov 2026 02:21:41 UTC\n",
    })
    template = tmp_path / "Dockerfile.in"
    template.write_text("FROM debian:trixie-slim\nRUN apt-get update && apt-get upgrade -y\n")
    lock = run_freeze(FreezeRequest(image="raw", dockerfile=template, output=tmp_path / "x.lock",
                                    no_index=True, no_archive=True), images=source).lock
    assert (lock.snapshot, lock.snapshot_from) == ("20261130T022141Z", "release-date")
    # The pinned build: apt-get update read the view's Release file, a day later.
    release = LockedView([], lock, None).apt_meta["Release"]
    source.add(ImageInfo("sha256:" + "8" * 64, (*base.layers, *layers("pinned"))), "pinned",
               files={**common, LISTS + "127.0.0.1:7780_apt_._Release": release})
    outcome = run_diff(DiffRequest("raw", "pinned", dockerfile=template),
                       connect=lambda: source)
    assert outcome.result.identical, outcome.result
    assert outcome.new.lock.snapshot == lock.snapshot
