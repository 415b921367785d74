"""relock.upstream.archive against a real APT archive served on loopback.

The archive (tests/support/aptarchive.py) is built with dpkg-deb and
apt-ftparchive and served over HTTP on 127.0.0.1, with dated snapshots and
injected faults (429 with Retry-After, 503, a port nothing listens on).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relock.blobs import BlobCache
from relock.errors import ArchiveError, DebNotFoundError, HashMismatchError
from relock.lock.lockfile import AptPackage, AptSource
from relock.upstream.archive import Archive, DebEntry
from tests.support.aptarchive import AptArchive, Deb, closed_url, make_key, serve

OLD = "20260101T000000Z"
NEW = "20260201T000000Z"
FOO1, FOO2, BAR = Deb("foo", "1.0-1"), Deb("foo", "2.0-1"), Deb("bar", "0.5")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptArchive]:
    """foo 1.0 and bar at OLD; foo 2.0 and bar at NEW, which is also live."""
    with serve(tmp_path_factory.mktemp("apt")) as served:
        served.publish(OLD, [FOO1, BAR])
        served.publish(NEW, [FOO2, BAR])
        yield served


@pytest.fixture(autouse=True)
def no_faults(archive: AptArchive) -> Iterator[None]:
    archive.faults.clear()
    archive.requests.clear()
    yield
    archive.faults.clear()


def source(*uris: str, suite: str = "stable") -> AptSource:
    return AptSource(file="/etc/apt/sources.list", types=("deb",), uris=uris,
                     suites=(suite,), components=("main",))


def entry_of(archive: AptArchive, deb: Deb) -> DebEntry:
    data = (archive.debs / deb.filename).read_bytes()
    return DebEntry(f"pool/main/{deb.name[0]}/{deb.name}/{deb.filename}",
                    hashlib.sha256(data).hexdigest(), len(data))


def locked(archive: AptArchive, deb: Deb, sha256: str | None = None) -> AptPackage:
    e = entry_of(archive, deb)
    return AptPackage(name=deb.name, version=deb.version, arch="all",
                      sha256=sha256 or e.sha256, filename=e.filename)


def key(deb: Deb) -> tuple[str, str, str]:
    return (deb.name, deb.version, "all")


# -- deb_entries ---------------------------------------------------------------

def test_entries_from_the_live_index(archive: AptArchive, tmp_path: Path) -> None:
    client = Archive(tmp_path)
    found = client.deb_entries([source(archive.live_url)], archive.arch,
                               [key(FOO2), key(BAR), key(FOO1)])
    assert found == {key(FOO2): entry_of(archive, FOO2), key(BAR): entry_of(archive, BAR)}
    assert client.warnings == []


def test_the_snapshot_answers_first(archive: AptArchive, tmp_path: Path) -> None:
    client = Archive(tmp_path, snapshot_url=archive.snapshot_url)
    found = client.deb_entries([source(archive.live_url)], archive.arch,
                               [key(FOO1), key(FOO2)], snapshot="20260115T000000Z")
    # foo 1.0 is only in the snapshot; foo 2.0 only live: both are found.
    assert found == {key(FOO1): entry_of(archive, FOO1), key(FOO2): entry_of(archive, FOO2)}
    assert any(p.startswith(f"/archive/{archive.name}/20260115T000000Z/dists/")
               for p in archive.requests)


def test_found_entries_are_remembered(archive: AptArchive, tmp_path: Path) -> None:
    wanted = [key(FOO2)]
    Archive(tmp_path).deb_entries([source(archive.live_url)], archive.arch, wanted)
    assert any("/Packages" in p for p in archive.requests)
    archive.requests.clear()
    again = Archive(tmp_path)
    found = again.deb_entries([source(archive.live_url)], archive.arch, wanted)
    assert found == {key(FOO2): entry_of(archive, FOO2)}
    assert archive.requests == [] and again.requests_made == 0
    # A name not asked before is looked up in the index again.
    assert Archive(tmp_path).deb_entries([source(archive.live_url)], archive.arch,
                                         [key(BAR)]) == {key(BAR): entry_of(archive, BAR)}
    assert [p for p in archive.requests if "/Packages" in p]


def test_a_miss_is_cached_by_the_index_hash(archive: AptArchive, tmp_path: Path) -> None:
    local = ("local", "1", "all")  # installed from a file: in no index
    assert Archive(tmp_path).deb_entries([source(archive.live_url)], archive.arch,
                                         [local]) == {}
    assert [p for p in archive.requests if "/Packages" in p]
    archive.requests.clear()
    again = Archive(tmp_path)
    assert again.deb_entries([source(archive.live_url)], archive.arch, [local]) == {}
    # Only the Release is asked again (it may have moved); the index is not read.
    assert archive.requests and not [p for p in archive.requests if "/Packages" in p]
    assert again.cache_hits >= 1


def test_an_unreachable_source_is_a_warning(archive: AptArchive, tmp_path: Path) -> None:
    down = closed_url()
    client = Archive(tmp_path, snapshot_url=f"{down}/archive")
    start = time.monotonic()
    found = client.deb_entries([source(f"{down}/debian"), source(archive.live_url)],
                               archive.arch, [key(FOO2)], snapshot=OLD)
    assert time.monotonic() - start < 2
    assert found == {key(FOO2): entry_of(archive, FOO2)}
    assert len(client.warnings) == 1, client.warnings  # one line per host, not per file
    assert down in client.warnings[0] and "unreachable" in client.warnings[0]


def test_a_busy_index_is_retried(archive: AptArchive, tmp_path: Path) -> None:
    fault = archive.fault(f"/live/{archive.name}/dists/", 429, times=2, retry_after="1")
    client = Archive(tmp_path)
    found = client.deb_entries([source(archive.live_url)], archive.arch, [key(BAR)])
    assert found == {key(BAR): entry_of(archive, BAR)}
    assert fault.hits == 2 and client.retries == 2


# -- fetch_deb -------------------------------------------------------------------

def test_fetch_from_the_snapshot_then_the_cache(archive: AptArchive, tmp_path: Path) -> None:
    client = Archive(snapshot_url=archive.snapshot_url)
    cache = BlobCache(tmp_path)
    got: list[int] = []
    path, where = client.fetch_deb(locked(archive, FOO1), [source(archive.live_url)], OLD,
                                   cache, progress=got.append)
    assert where == "snapshot"
    assert path.read_bytes() == (archive.debs / FOO1.filename).read_bytes()
    assert sum(got) == path.stat().st_size
    assert client.fetch_deb(locked(archive, FOO1), [source(archive.live_url)], OLD,
                            cache) == (path, "cache")


def test_retry_after_is_honoured(archive: AptArchive, tmp_path: Path) -> None:
    fault = archive.fault(f"/archive/{archive.name}/", 429, times=2, retry_after="1")
    client = Archive(snapshot_url=archive.snapshot_url)
    start = time.monotonic()
    _, where = client.fetch_deb(locked(archive, FOO1), [source(archive.live_url)], OLD,
                                BlobCache(tmp_path))
    assert where == "snapshot"
    assert fault.hits == 2 and client.retries == 2
    assert time.monotonic() - start >= 2


def test_a_source_that_stays_busy_gives_way(archive: AptArchive, tmp_path: Path) -> None:
    fault = archive.fault(f"/archive/{archive.name}/", 503, times=10, retry_after="0")
    client = Archive(snapshot_url=archive.snapshot_url)
    _, where = client.fetch_deb(locked(archive, BAR), [source(archive.live_url)], OLD,
                                BlobCache(tmp_path))
    assert (where, fault.hits) == ("live", 3)


def test_a_down_snapshot_costs_one_connection(archive: AptArchive, tmp_path: Path) -> None:
    client = Archive(snapshot_url=f"{closed_url()}/archive")
    cache = BlobCache(tmp_path)
    start = time.monotonic()
    assert client.fetch_deb(locked(archive, FOO2), [source(archive.live_url)], NEW,
                            cache)[1] == "live"
    assert client.fetch_deb(locked(archive, BAR), [source(archive.live_url)], NEW,
                            cache)[1] == "live"
    assert time.monotonic() - start < 2
    assert len(client._down) == 1


def test_mirrors_come_last(archive: AptArchive, tmp_path: Path) -> None:
    client = Archive(mirrors=[archive.mirror_url])
    _, where = client.fetch_deb(locked(archive, FOO2), [source(f"{closed_url()}/debian")], "",
                                BlobCache(tmp_path))
    assert where == archive.mirror_url


def test_wrong_bytes_never_enter_the_cache(archive: AptArchive, tmp_path: Path) -> None:
    pkg = locked(archive, FOO2, sha256="e" * 64)
    with pytest.raises(HashMismatchError) as e:
        Archive().fetch_deb(pkg, [source(archive.live_url)], "", BlobCache(tmp_path))
    assert "foo 2.0-1 (all)" in str(e.value) and "live" in str(e.value)
    assert "\n" not in str(e.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_version_in_no_source(archive: AptArchive, tmp_path: Path) -> None:
    pkg = locked(archive, FOO1)  # gone from live; no snapshot asked
    with pytest.raises(DebNotFoundError, match=r"foo 1\.0-1 \(all\) is in no source"):
        Archive().fetch_deb(pkg, [source(archive.live_url)], "", BlobCache(tmp_path))


def test_every_source_down_names_each(archive: AptArchive, tmp_path: Path) -> None:
    a, b = closed_url(), closed_url()
    with pytest.raises(ArchiveError) as e:
        Archive(mirrors=[f"{b}/debian"]).fetch_deb(
            locked(archive, FOO2), [source(f"{a}/debian")], "", BlobCache(tmp_path))
    message = str(e.value)
    assert "every source failed" in message and a in message and b in message


def test_an_entry_without_hash_is_named(archive: AptArchive, tmp_path: Path) -> None:
    pkg = AptPackage(name="local", version="1", arch="amd64")
    with pytest.raises(ArchiveError, match=r"local 1 \(amd64\) has no \.deb sha256"):
        Archive().fetch_deb(pkg, [source(archive.live_url)], "", BlobCache(tmp_path))


def test_a_damaged_index_form_falls_back_to_the_next(archive: AptArchive,
                                                     tmp_path: Path) -> None:
    # An empty 200 for Packages.gz, like a mirror caught mid-sync.
    archive.fault(f"/live/{archive.name}/dists/stable/main/binary-{archive.arch}/Packages.gz",
                  200, times=1)
    client = Archive(tmp_path)
    found = client.deb_entries([source(archive.live_url)], archive.arch, [key(BAR)])
    assert found == {key(BAR): entry_of(archive, BAR)}
    assert [p for p in archive.requests if p.endswith("/Packages")]


def test_release_fields() -> None:
    from relock.upstream.archive import _parse_release

    release = _parse_release(
        "Origin: Debian\nAcquire-By-Hash: yes\nNo-Support-for-Architecture-all: Packages\n"
        "Architectures: all amd64\nMD5Sum:\n 0123 10 main/binary-amd64/Packages.xz\n"
        f"SHA256:\n {'a' * 64} 10 main/binary-amd64/Packages.xz\n"
        f" {'b' * 64}   200 main/binary-amd64/Packages\n")
    assert release.files == {"main/binary-amd64/Packages.xz": "a" * 64,
                             "main/binary-amd64/Packages": "b" * 64}
    assert release.architectures == {"all", "amd64"}
    assert release.by_hash and release.all_in_arch


def test_an_entry_outlives_its_removal_from_live(tmp_path: Path) -> None:
    with serve(tmp_path / "apt") as moving:
        moving.publish(OLD, [FOO1])
        src = [source(moving.live_url)]
        first = Archive(tmp_path / "cache").deb_entries(src, moving.arch, [key(FOO1)])
        moving.publish(NEW, [FOO2])  # a point release: live has only foo 2.0 now
        assert Archive().deb_entries(src, moving.arch, [key(FOO1)]) == {}
        assert Archive(tmp_path / "cache").deb_entries(src, moving.arch, [key(FOO1)]) == first
        assert first == {key(FOO1): entry_of(moving, FOO1)}


# -- Release signatures (the image's keys, as apt in it would check) ------------

@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AptArchive, bytes]]:
    home = tmp_path_factory.mktemp("gnupg")
    key = make_key(home)
    with serve(tmp_path_factory.mktemp("signed"), gnupghome=home) as served:
        served.publish(OLD, [FOO1, BAR])
        yield served, key


def unsigned_source(uri: str, signed_by: str = "") -> AptSource:
    options = {"signed-by": signed_by} if signed_by else {}
    return AptSource(file="/etc/apt/sources.list.d/t.sources", types=("deb",), uris=(uri,),
                     suites=("stable",), components=("main",), options=options)


def test_a_release_signed_by_an_image_key(signed: tuple[AptArchive, bytes],
                                         tmp_path: Path) -> None:
    archive, key = signed
    trusted = {"/etc/apt/trusted.gpg.d/test.gpg": key}
    client = Archive(tmp_path)
    assert client.deb_entries([unsigned_source(archive.live_url)], archive.arch,
                              [("bar", "0.5", "all")],
                              keyrings=trusted) == {("bar", "0.5", "all"): entry_of(archive, BAR)}
    assert client.warnings == []
    # Signed-By names the keyring to use; one the image lacks fails closed.
    ring = {"/usr/share/keyrings/t.gpg": key}
    assert Archive().deb_entries([unsigned_source(archive.live_url, "/usr/share/keyrings/t.gpg")],
                                 archive.arch, [("bar", "0.5", "all")], keyrings=ring)
    lacking = Archive()
    assert lacking.deb_entries([unsigned_source(archive.live_url, "/usr/share/keyrings/x.gpg")],
                               archive.arch, [("bar", "0.5", "all")], keyrings=ring) == {}
    assert "none of the keyrings" in lacking.warnings[0]


def test_a_release_signed_by_another_key_is_not_read(signed: tuple[AptArchive, bytes],
                                                    tmp_path: Path) -> None:
    archive, _ = signed
    other = make_key(tmp_path / "other", "someone else")
    client = Archive()
    found = client.deb_entries([unsigned_source(archive.live_url)], archive.arch,
                               [("bar", "0.5", "all")],
                               keyrings={"/etc/apt/trusted.gpg.d/o.gpg": other})
    assert found == {}
    assert len(client.warnings) == 1
    assert "no key of the image's keyrings signed it" in client.warnings[0]


def test_a_changed_release_is_not_read(signed: tuple[AptArchive, bytes], tmp_path: Path) -> None:
    archive, key = signed
    inrelease = archive.live_dir / "dists" / "stable" / "InRelease"
    original = inrelease.read_text()
    try:
        inrelease.write_text(original.replace("Suite: stable", "Suite: stab1e"))
        client = Archive()
        assert client.deb_entries([unsigned_source(archive.live_url)], archive.arch,
                                  [("bar", "0.5", "all")],
                                  keyrings={"/etc/apt/trusted.gpg": key}) == {}
        assert "bad signature" in client.warnings[0]
    finally:
        inrelease.write_text(original)
