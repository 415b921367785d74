"""The registry as an image source, on an in-memory registry: index platforms, layers
applied with whiteouts, blobs cached, and freezing every platform of an index.

The evidence against a real registry and the engine's own freeze is
tests/e2e/test_platforms_e2e.py::test_freeze_of_an_index_in_a_registry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relock.blobs import BlobCache
from relock.errors import BaseImageError, ImageNotFoundError, ImagePlatformError
from relock.freeze.freeze import FreezeOptions, freeze_index
from relock.image.registrysource import RegistryReader, RegistrySource
from relock.template.dockerfile import parse
from tests.fakes import FakeRegistry

OS_RELEASE = b'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'


def status(*packages: tuple[str, str, str]) -> bytes:
    return b"\n".join(f"Package: {n}\nStatus: install ok installed\nVersion: {v}\n"
                      f"Architecture: {a}\n".encode() for n, v, a in packages)


def source(*registries: FakeRegistry, tmp_path: Path, mirrors: tuple[str, ...] = ()
           ) -> RegistrySource:
    by_host: dict[str, RegistryReader] = {r.host: r for r in registries}

    def registry_for(host: str) -> RegistryReader:
        if host not in by_host:
            by_host[host] = FakeRegistry(host)
        return by_host[host]

    return RegistrySource(mirrors=mirrors, cache=BlobCache(tmp_path / "blobs"),
                          registry_for=registry_for)


def base_layer(arch: str) -> dict[str, bytes | str | None]:
    return {"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": status(
        ("base-files", "13.8", arch), ("netbase", "6.5", "all"))}


def two_platforms(r: FakeRegistry) -> tuple[str, dict[str, str]]:
    """debian:trixie-slim for amd64 and arm64 under ``base``, and ``app`` built on it."""
    manifests = {}
    for arch in ("amd64", "arm64"):
        base = base_layer(arch)
        manifests[f"linux/{arch}"] = r.put_image("library/debian", [base], arch=arch)
        app = {"var/lib/dpkg/status": status(
            ("base-files", "13.8", arch), ("netbase", "6.5", "all"),
            ("hello", "2.10-5" if arch == "amd64" else "2.10-5+b1", arch))}
        r.put_image("team/app", [base, app], f"app-{arch}", arch=arch)
    index = r.put_index("library/debian", manifests, "trixie-slim")
    r.put_index("team/app", {p: r.manifests[("team/app", f"app-{p[6:]}")].digest
                             for p in manifests}, "1")
    return index, manifests


def test_layers_are_applied_with_whiteouts_and_opaque_folders(tmp_path: Path) -> None:
    r = FakeRegistry()
    r.put_image("x", [
        {"etc/apt/sources.list.d/a.list": b"a", "etc/apt/sources.list.d/b.list": b"b",
         "etc/apt/keep": b"k", "var/lib/dpkg/info/gone/": "/",
         "var/lib/dpkg/info/gone/x.list": b"x", "etc/os-release": b"ID=one\n"},
        {"etc/apt/sources.list.d/.wh..wh..opq": b"", "etc/apt/sources.list.d/c.list": b"c",
         "var/lib/dpkg/info/.wh.gone": b"", "etc/os-release": "->../usr/lib/os-release",
         "usr/lib/os-release": b"ID=two\n"},
    ], "1")
    src = source(r, tmp_path=tmp_path)
    with src.open_rootfs(src.image("oci://127.0.0.1:5999/x:1")) as fs:
        assert fs.listdir("/etc/apt/sources.list.d") == ["c.list"]
        assert fs.read_bytes("/etc/apt/sources.list.d/c.list") == b"c"
        assert fs.read_bytes("/etc/apt/keep") == b"k"
        assert fs.listdir("/var/lib/dpkg/info") == []
        assert fs.read_bytes("/etc/os-release") == b"ID=two\n"
        assert fs.is_symlink("/etc/os-release")


def test_layer_blobs_are_cached_by_digest(tmp_path: Path) -> None:
    r = FakeRegistry()
    r.put_image("x", [{"etc/os-release": OS_RELEASE}, {"etc/apt/x": b"x"}], "1")
    for _ in range(2):
        src = source(r, tmp_path=tmp_path)
        with src.open_rootfs(src.image("127.0.0.1:5999/x:1")):
            pass
    layer_reads = [d for d in r.blob_reads if r.blobs[d][:2] == b"\x1f\x8b"]
    assert len(layer_reads) == 2  # each layer once: the second source reads the cache


def test_an_index_names_its_platforms(tmp_path: Path) -> None:
    r = FakeRegistry()
    index, manifests = two_platforms(r)
    # An attestation entry (as buildx writes) is no platform.
    doc = r.manifests[("library/debian", index)].json()
    doc["manifests"].append({**doc["manifests"][0], "platform": {"os": "unknown",
                                                                  "architecture": "unknown"}})
    r.put_manifest("library/debian", doc, "with-attestation")
    src = source(r, tmp_path=tmp_path)
    ref = "127.0.0.1:5999/library/debian:with-attestation"
    assert src.platforms(ref) == ["linux/amd64", "linux/arm64"]
    arm = src.resolve(ref, "linux/arm64")
    assert (arm.manifest, str(arm.info.platform)) == (manifests["linux/arm64"], "linux/arm64")
    assert arm.digest != arm.manifest
    with pytest.raises(ImagePlatformError, match="image index of linux/amd64, linux/arm64: "
                                                 "choose one with --platform"):
        src.image(ref)
    with pytest.raises(ImagePlatformError, match=r"has no linux/s390x image \(it has "
                                                 r"linux/amd64, linux/arm64\)"):
        src.resolve(ref, "linux/s390x")
    single = src.resolve(f"127.0.0.1:5999/library/debian@{manifests['linux/amd64']}")
    assert (single.digest, single.manifest) == (manifests["linux/amd64"], "")
    with pytest.raises(ImageNotFoundError, match="not in the registry"):
        src.image("127.0.0.1:5999/library/debian:nope")


def test_freeze_of_an_index_gives_every_platform_s_part(tmp_path: Path) -> None:
    r = FakeRegistry()
    index, manifests = two_platforms(r)
    df = parse("FROM 127.0.0.1:5999/library/debian:trixie-slim\nRUN true\n")
    result = freeze_index(source(r, tmp_path=tmp_path), "oci://127.0.0.1:5999/team/app:1", df,
                          FreezeOptions())
    lock = result.lock
    assert lock.platforms == ("linux/amd64", "linux/arm64")
    for platform, hello in (("linux/amd64", "2.10-5"), ("linux/arm64", "2.10-5+b1")):
        part = lock.for_platform(platform)
        assert [(p.name, p.version) for p in part.apt] == [
            ("base-files", "13.8"), ("hello", hello), ("netbase", "6.5")]
        assert [(b.digest, b.manifest) for b in part.base] == [(index, manifests[platform])]
    only = freeze_index(source(r, tmp_path=tmp_path), "oci://127.0.0.1:5999/team/app:1", df,
                        FreezeOptions(), platforms=["linux/arm64"]).lock
    assert (only.platform, only.platforms) == ("linux/arm64", ())
    assert only == lock.for_platform("linux/arm64")
    with pytest.raises(ImagePlatformError, match="has no linux/riscv64 image"):
        freeze_index(source(r, tmp_path=tmp_path), "127.0.0.1:5999/team/app:1", df,
                     FreezeOptions(), platforms=["linux/riscv64"])


def test_one_platform_frozen_into_an_existing_lock_keeps_the_others(tmp_path: Path) -> None:
    r = FakeRegistry()
    two_platforms(r)
    df = parse("FROM 127.0.0.1:5999/library/debian:trixie-slim\n")
    ref = "127.0.0.1:5999/team/app:1"
    amd = freeze_index(source(r, tmp_path=tmp_path), ref, df, FreezeOptions(),
                       platforms=["linux/amd64"]).lock
    both = freeze_index(source(r, tmp_path=tmp_path), ref, df, FreezeOptions(),
                        platforms=["linux/arm64"], existing=amd).lock
    assert both.platforms == ("linux/amd64", "linux/arm64")
    assert both.for_platform("linux/amd64") == amd


def test_a_moved_base_tag_is_an_error(tmp_path: Path) -> None:
    r = FakeRegistry()
    two_platforms(r)
    r.put_image("library/debian", [base_layer("amd64"), {"etc/apt/new": b"n"}],
                "trixie-slim")
    df = parse("FROM 127.0.0.1:5999/library/debian:trixie-slim\n")
    with pytest.raises(BaseImageError, match="the tag has moved since the build"):
        freeze_index(source(r, tmp_path=tmp_path), "127.0.0.1:5999/team/app:1", df,
                     FreezeOptions(), platforms=["linux/amd64"])


def test_docker_hub_bases_are_asked_of_the_mirror_first(tmp_path: Path) -> None:
    mirror = FakeRegistry("127.0.0.1:5999")
    index, manifests = two_platforms(mirror)
    df = parse("FROM debian:trixie-slim\n")
    src = source(mirror, tmp_path=tmp_path, mirrors=("http://127.0.0.1:5999/",))
    lock = freeze_index(src, "127.0.0.1:5999/team/app:1", df, FreezeOptions()).lock
    bases = lock.for_platform("linux/arm64").base
    assert [(b.ref, b.digest, b.manifest) for b in bases] == [
        ("debian:trixie-slim", index, manifests["linux/arm64"])]


def test_several_platforms_are_for_a_registry_image_only(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from relock.cli import cli

    r = CliRunner().invoke(cli, ["freeze", "app:1", "--platform", "linux/amd64,linux/arm64",
                                 "-o", str(tmp_path / "x.lock")], catch_exceptions=False)
    assert r.exit_code == 2
    assert "an image in the engine is of one platform" in r.output


def test_an_images_layers_are_read_from_the_registry_for_a_file_diff(tmp_path: Path) -> None:
    from relock.image import filediff
    from relock.image.layers import read_image

    reg = FakeRegistry()
    reg.put_image("app", [base_layer("amd64"), {"etc/build-date": b"1", "etc/os-release": None}],
                  "v1")
    reg.put_image("app", [base_layer("amd64"), {"etc/build-date": b"2",
                                                "etc/.wh.os-release": None}], "v2")
    src = source(reg, tmp_path=tmp_path)
    with src.image_layers(f"oci://{reg.host}/app:v1") as one:
        a = read_image(one)
    with src.image_layers(f"oci://{reg.host}/app:v2") as two:
        b = read_image(two)
    assert a.id == src.image(f"oci://{reg.host}/app:v1").id
    assert [x.digest for x in a.layers] == [d for _, d in src.resolve(
        f"oci://{reg.host}/app:v1").layers]
    found = {d.path: (d.status, d.what, d.b.layer.index if d.b.layer else None)
             for d in filediff.compare(a, b)}
    assert found == {"/etc/build-date": ("changed", ("content",), 1),
                     "/etc/os-release": ("removed", ("presence",), 1)}
    with pytest.raises(ImageNotFoundError):
        src.image_layers(f"oci://{reg.host}/app:v3")
