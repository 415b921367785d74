"""Multi-platform locks: one lock, a part per platform; version-1 locks still read."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from relock.errors import LockfileError, PlatformMissingError
from relock.lock import lockfile
from relock.lock.lockfile import AptPackage, Base, Lock, PipPackage, PythonEnv
from tests.factories import make_lock

INDEX = "sha256:" + "1" * 64


def part(platform: str, arch: str, *, bash: str = "5.2.37-2+b5", extra: tuple[AptPackage, ...] = ()
         ) -> Lock:
    return make_lock(
        platform=platform, snapshot="20261101T000000Z", snapshot_from="release-date",
        base=(Base(0, "debian:trixie-slim", INDEX),),
        python=(PythonEnv("/opt/venv", "3.13", "/opt/venv/lib/python3.13/site-packages", True),),
        apt=(AptPackage("bash", bash, arch), AptPackage("tzdata", "2025b-4", "all"), *extra),
        pip=(PipPackage("six", "1.16.0", "/opt/venv", True, ("sha256:" + "a" * 64,)),),
    )


AMD = part("linux/amd64", "amd64", extra=(AptPackage("libquadmath0", "14.2.0-19", "amd64"),))
ARM = part("linux/arm64", "arm64", bash="5.2.37-2+b4")


def two() -> Lock:
    return AMD.with_part(ARM)


def test_two_platforms_round_trip_and_each_part_comes_back() -> None:
    lock = two()
    assert lock.platforms == ("linux/amd64", "linux/arm64") and lock.version == 2
    text = lockfile.dumps(lock)
    assert 'platforms = [\n  "linux/amd64",\n  "linux/arm64",\n]' in text
    assert "\nplatform = " not in text.split("[input]")[0]
    back = lockfile.loads(text)
    assert back == lock.sorted()
    assert back.for_platform("linux/amd64") == AMD.sorted()
    assert back.for_platform("linux/arm64") == ARM.sorted()
    # Architecture: all packages are listed for each platform, as each has them.
    tz = [(p.platform, p.arch) for p in back.apt if p.name == "tzdata"]
    assert tz == [("linux/amd64", "all"), ("linux/arm64", "all")]


def test_adding_a_platform_again_replaces_only_that_part() -> None:
    newer = part("linux/arm64", "arm64", bash="5.2.37-2+b6")
    lock = two().with_part(newer)
    assert lock.for_platform("linux/arm64") == newer
    assert lock.for_platform("linux/amd64") == AMD
    assert lockfile.dumps(two().with_part(ARM)) == lockfile.dumps(two())


def test_a_platform_the_lock_lacks_is_named() -> None:
    with pytest.raises(PlatformMissingError, match=r"no linux/arm64 part \(it holds linux/amd64\)"):
        AMD.for_platform("linux/arm64")
    assert AMD.for_platform("linux/amd64") is AMD


def test_parts_of_another_template_or_distro_are_refused() -> None:
    other = dataclasses.replace(ARM, input=dataclasses.replace(ARM.input, sha256="e" * 64))
    with pytest.raises(LockfileError, match="another template"):
        AMD.with_part(other)
    with pytest.raises(LockfileError, match="one lock holds one distro"):
        AMD.with_part(dataclasses.replace(ARM, distro=dataclasses.replace(ARM.distro, id="ubuntu")))


V1 = lockfile.dumps(AMD).replace("version = 2", "version = 1")


def test_a_version_1_lock_reads_as_one_platform_and_writes_back_as_version_1() -> None:
    lock = lockfile.loads(V1)
    assert lock.version == 1 and lock.all_platforms == ("linux/amd64",) and not lock.multi
    assert lockfile.dumps(lock) == V1
    assert lock.with_part(ARM).version == 2


@pytest.mark.parametrize(("text", "message"), [
    (V1.replace('name = "bash"', 'name = "bash"\nplatform = "linux/amd64"'),
     "apt[0]: unknown key 'platform'"),
    (V1.replace("version = 1", 'version = 1\nplatforms = ["linux/amd64"]'),
     "unknown key 'platforms' at top level"),
    (lockfile.dumps(two()).replace('platform = "linux/arm64"', 'platform = "linux/s390x"', 1),
     "is not one of the lock's platforms"),
    (lockfile.dumps(AMD).replace('name = "bash"', 'name = "bash"\nplatform = "linux/amd64"'),
     "given in a lock without 'platforms'"),
    (lockfile.dumps(two()).replace("platforms =", 'platform = "linux/amd64"\nplatforms ='),
     "'platform' and 'platforms' both given"),
    (lockfile.dumps(two()).replace('  "linux/arm64",\n]', '  "linux/amd64",\n]', 1),
     "names a platform twice"),
    (lockfile.dumps(two()).replace('platforms = [\n  "linux/amd64"', 'platforms = [\n  "Linux"'),
     "platforms'[0]"),
])
def test_the_reader_checks_platforms(text: str, message: str) -> None:
    with pytest.raises(LockfileError, match=message.replace("(", r"\(").replace("[", r"\[")):
        lockfile.loads(text)


def test_freezing_one_platform_into_a_lock_adds_or_replaces_only_it() -> None:
    from relock.errors import ImagePlatformError
    from relock.freeze.freeze import add_platform

    assert add_platform(ARM, None, AMD) is ARM  # no --platform: the image's lock, as before
    assert add_platform(ARM, "linux/arm64", None) is ARM
    assert add_platform(ARM, "linux/arm64", AMD) == two()
    newer = part("linux/amd64", "amd64", bash="9.9-1")
    assert add_platform(newer, "linux/amd64", two()).for_platform("linux/amd64") == newer
    with pytest.raises(ImagePlatformError, match="the image is linux/arm64, not linux/amd64"):
        add_platform(ARM, "linux/amd64", AMD)


def test_build_for_a_platform_the_lock_lacks_stops_before_any_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from relock.cli import cli
    from relock.image import engine

    template = tmp_path / "Dockerfile.in"
    template.write_text("FROM debian:trixie-slim\nRUN true\n")
    lock = dataclasses.replace(AMD, input=dataclasses.replace(
        AMD.input, dockerfile=str(template),
        sha256=hashlib.sha256(template.read_bytes()).hexdigest()))
    path = tmp_path / "x.lock"
    lockfile.write(lock, path)

    def no_engine() -> None:
        raise AssertionError("the engine was reached")

    monkeypatch.setattr(engine, "connect", no_engine)
    r = CliRunner().invoke(cli, ["build", "-f", str(template), "--lock", str(path),
                                 "--platform", "linux/arm64"], catch_exceptions=False)
    assert r.exit_code == 2
    assert r.stderr == ("relock: error: the lock has no linux/arm64 part (it holds "
                        "linux/amd64); build an image for linux/arm64, then: relock freeze "
                        "IMAGE --platform linux/arm64 -o LOCK\n")


def test_diff_shows_a_change_the_same_on_every_platform_once() -> None:
    from relock.lock.diff import diff_platforms
    from relock.lock.diffformat import format_text

    # bash is the same version on both before and after (libquadmath0 is amd64's only).
    old = AMD.with_part(part("linux/arm64", "arm64"))
    new = part("linux/amd64", "amd64", bash="5.3-1",
               extra=(AptPackage("libquadmath0", "14.2.0-20", "amd64"),)).with_part(
        part("linux/arm64", "arm64", bash="5.3-1"))
    d = diff_platforms(old, new)
    assert d.platforms == ("linux/amd64", "linux/arm64")
    rows = [(r.name, r.where, r.change, r.platforms) for r in d.apt or ()]
    assert rows == [
        ("bash", "amd64,arm64", "upgraded", ("linux/amd64", "linux/arm64")),
        ("libquadmath0", "amd64", "upgraded", ("linux/amd64",)),
    ]
    text = format_text(d)
    assert "libquadmath0 [linux/amd64]" in text and "bash  " in text
    narrowed = diff_platforms(old, new, platforms=["linux/arm64"])
    assert [(r.name, r.where, r.platforms) for r in narrowed.apt or ()] == [
        ("bash", "arm64", ("linux/arm64",))]
    with pytest.raises(PlatformMissingError, match="no linux/s390x part"):
        diff_platforms(old, new, platforms=["linux/s390x"])


def test_diff_of_locks_holding_other_platforms_says_so() -> None:
    from relock.lock.diff import ValueChange, diff_platforms

    d = diff_platforms(AMD, two())
    assert d.platform == ValueChange("linux/amd64", "linux/amd64 linux/arm64")
    assert d.apt == () and d.platforms == ("linux/amd64",)
    # Two one-platform locks: as before, the platforms' packages side by side.
    single = diff_platforms(AMD, ARM)
    assert single.platform == ValueChange("linux/amd64", "linux/arm64") and not single.platforms
    assert {r.name for r in single.apt or ()} == {"bash", "libquadmath0"}


def test_diff_json_names_the_platforms(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from relock.cli import cli

    a, b = tmp_path / "a.lock", tmp_path / "b.lock"
    lockfile.write(two(), a)
    lockfile.write(two().with_part(part("linux/arm64", "arm64", bash="5.3-1")), b)
    r = CliRunner().invoke(cli, ["diff", str(a), str(b), "--format", "json"],
                           catch_exceptions=False)
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["platforms"] == ["linux/amd64", "linux/arm64"]
    assert [(p["name"], p["arch"], p["platforms"]) for p in doc["apt"]] == [
        ("bash", "arm64", ["linux/arm64"])]
    r = CliRunner().invoke(cli, ["diff", str(a), str(b), "--platform", "linux/amd64"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output


def test_index_entries_name_their_platform() -> None:
    from relock.lock.platform import descriptor_text as platform_text

    assert platform_text({"os": "linux", "architecture": "arm64", "variant": "v8"}) == "linux/arm64"
    assert platform_text({"os": "linux", "architecture": "arm", "variant": "v7"}) == "linux/arm/v7"
    assert platform_text({"os": "linux", "architecture": "amd64"}) == "linux/amd64"


def test_each_platform_s_base_gets_its_manifest_and_builds_pull_it() -> None:
    from relock.errors import RegistryError
    from relock.image.platforms import by_manifest, with_manifests

    asked: list[tuple[str, str, str]] = []

    def lookup(ref: str, digest: str, platform: str) -> str:
        asked.append((ref, digest, platform))
        return "sha256:" + "9" * 64

    got, warnings = with_manifests(ARM, "linux/arm64", lookup)
    assert asked == [("debian:trixie-slim", INDEX, "linux/arm64")] and not warnings
    assert got.base[0].manifest == "sha256:" + "9" * 64 and got.base[0].digest == INDEX
    # The lock keeps both; a build or check for the platform pulls its own manifest.
    both = AMD.with_part(got)
    assert both.for_platform("linux/arm64").base == got.base
    assert by_manifest(both.for_platform("linux/arm64")).base[0].digest == "sha256:" + "9" * 64
    assert by_manifest(AMD) == AMD

    def offline(ref: str, digest: str, platform: str) -> str:
        raise RegistryError("no route to the registry")

    kept, warnings = with_manifests(ARM, "linux/arm64", offline)
    assert kept == ARM
    assert warnings == ["could not ask the registry for the linux/arm64 manifest of "
                        "debian:trixie-slim (no route to the registry); a build for "
                        "linux/arm64 will name the index"]


def test_a_base_locked_by_its_platform_manifest_is_lifted_to_the_tag_s_index() -> None:
    from relock.image.platforms import with_manifests

    arm_manifest = "sha256:" + "8" * 64
    by_manifest_only = dataclasses.replace(
        ARM, base=tuple(dataclasses.replace(b, digest=arm_manifest, manifest="")
                        for b in ARM.base))

    def single(ref: str, digest: str, platform: str) -> str:
        return ""  # the digest names one image's manifest

    def lift(ref: str, digest: str, platform: str) -> str:
        assert (ref, digest, platform) == ("debian:trixie-slim", arm_manifest, "linux/arm64")
        return INDEX

    got, warnings = with_manifests(by_manifest_only, "linux/arm64", single, lift)
    assert not warnings
    assert (got.base[0].digest, got.base[0].manifest) == (INDEX, arm_manifest)
    # The tag's index does not list it (the tag moved on): the lock keeps what it had.
    kept, _ = with_manifests(by_manifest_only, "linux/arm64", single, lambda *a: "")
    assert kept == by_manifest_only


def test_diff_of_a_moved_base_on_several_platforms_is_one_base_row() -> None:
    """Base rows have no ``where``: a base that moved on every platform is one row."""
    from relock.lock.diff import diff_platforms

    moved = "sha256:" + "2" * 64

    def rebased(lock: Lock) -> Lock:
        return dataclasses.replace(lock, base=(Base(0, "debian:trixie-slim", moved),))

    d = diff_platforms(two(), rebased(AMD).with_part(rebased(ARM)))
    assert [(r.ref, r.old, r.new, r.platforms) for r in d.base or ()] == [
        ("debian:trixie-slim", INDEX, moved, ("linux/amd64", "linux/arm64"))]


def test_the_header_of_a_lock_of_several_platforms_says_how_to_remake_each() -> None:
    from relock.lock.lockfile import dumps

    text = dumps(two(), image="app:arm64", path="locks/app.lock", platform="linux/arm64")
    head = text.splitlines()[1:3]
    assert head == [
        "# Remake it with: relock freeze app:arm64 --platform linux/arm64 -f Dockerfile.in "
        "-o locks/app.lock "
        "(and likewise for linux/amd64)",
        "# Rebuild from it with: relock build -f Dockerfile.in --lock locks/app.lock --platform P "
        "(P: linux/amd64, linux/arm64)",
    ]
    # One registry image holds every platform: one command remakes the lock.
    whole = dumps(two(), image="oci://127.0.0.1:5000/app:1", path="app.lock").splitlines()[1]
    assert whole == ("# Remake it with: relock freeze oci://127.0.0.1:5000/app:1 "
                     "-f Dockerfile.in -o app.lock")
    # A lock of one platform keeps the header it always had.
    assert dumps(AMD, image="app", path="app.lock").splitlines()[1:3] == [
        "# Remake it with: relock freeze app -f Dockerfile.in -o app.lock",
        "# Rebuild from it with: relock build -f Dockerfile.in --lock app.lock"]
