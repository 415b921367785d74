"""docker save's OCI layout read as a registry: each platform of an index, every byte
checked, a platform the engine does not hold left out, a bad archive one error."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from relock.blobs import BlobCache
from relock.errors import LayerError, RegistryError
from relock.image import ociarchive
from relock.image.registrysource import RegistrySource
from relock.upstream.registry import BlobUnknown, ManifestUnknown
from tests.fakes import FakeRegistry, oci_layout
from tests.image.test_registrysource import two_platforms


def saved(**kw: object) -> tuple[FakeRegistry, bytes]:
    r = FakeRegistry()
    two_platforms(r)
    return r, oci_layout(r, "team/app", "1", **kw)  # type: ignore[arg-type]


def test_each_platform_of_a_saved_index_is_the_registry_s_image(tmp_path: Path) -> None:
    r, data = saved()
    with ociarchive.reading(io.BytesIO(data), "app:1") as archive:
        assert archive.platforms() == ["linux/amd64", "linux/arm64"]
        assert archive.top[1] == r.manifests[("team/app", "1")].digest
        ref = f"oci://{archive.host}/saved@{archive.top[1]}"
        for platform in archive.platforms():
            got = RegistrySource(platform=platform, cache=BlobCache(tmp_path / "a"),
                                 registry_for=lambda host: archive).image(ref)
            want = RegistrySource(platform=platform, cache=BlobCache(tmp_path / "r"),
                                  registry_for=lambda host: r).image(
                f"oci://{r.host}/team/app:1")
            assert (got.id, got.layers, str(got.platform)) == (
                want.id, want.layers, platform)
        # A tag names the image the archive holds, as the engine's name does.
        assert archive.manifest("saved", "latest").digest == archive.top[1]


def test_a_platform_the_engine_does_not_hold_is_left_out() -> None:
    r = FakeRegistry()
    two_platforms(r)
    arm64 = r.manifests[("team/app", "app-arm64")].digest
    data = oci_layout(r, "team/app", "1", leave_out=[arm64])
    with ociarchive.reading(io.BytesIO(data), "app:1") as archive:
        assert archive.platforms() == ["linux/amd64"]
        with pytest.raises(ManifestUnknown, match="the engine holds no such image"):
            archive.manifest("saved", arm64)
        with pytest.raises(BlobUnknown, match="no blob"):
            archive.blob("saved", "sha256:" + "0" * 64)


def test_one_image_has_no_platforms_to_choose() -> None:
    r = FakeRegistry()
    two_platforms(r)
    data = oci_layout(r, "team/app", "app-amd64")
    with ociarchive.reading(io.BytesIO(data), "app:1") as archive:
        assert archive.platforms() == []


def rewrite(data: bytes, change: dict[str, bytes]) -> bytes:
    """The archive ``data`` with the members ``change`` names replaced."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(fileobj=out, mode="w") as tar:
        for member in src:
            body = change.get(member.name)
            if body is None:
                handle = src.extractfile(member)
                body = handle.read() if handle else b""
            member.size = len(body)
            tar.addfile(member, io.BytesIO(body))
    return out.getvalue()


def test_a_changed_byte_is_refused_where_it_is_read(tmp_path: Path) -> None:
    r, data = saved()
    arm64 = r.manifests[("team/app", "app-arm64")]
    layer = str(arm64.objects("layers")[-1]["digest"])
    bad = rewrite(data, {f"blobs/sha256/{layer[7:]}": b"not the layer"})
    with ociarchive.reading(io.BytesIO(bad), "app:1") as archive:
        src = RegistrySource(platform="linux/arm64", cache=BlobCache(tmp_path),
                             registry_for=lambda host: archive)
        image = src.image(f"oci://{archive.host}/saved@{archive.top[1]}")
        with pytest.raises(RegistryError, match="content has digest"), src.open_rootfs(image):
            pass
    manifest = rewrite(data, {f"blobs/sha256/{arm64.digest[7:]}": b"{}"})
    with ociarchive.reading(io.BytesIO(manifest), "app:1") as archive, \
            pytest.raises(RegistryError, match="has another digest"):
        archive.manifest("saved", arm64.digest)


@pytest.mark.parametrize(("index", "message"), [
    (b"[]", "is not a JSON object"),
    (json.dumps({"manifests": []}).encode(), "must name exactly one image"),
    (json.dumps({"manifests": [{"digest": "sha256:12"}]}).encode(), "not a sha256 digest"),
])
def test_an_index_json_that_names_no_one_image_is_one_error(index: bytes, message: str) -> None:
    _, data = saved()
    with pytest.raises(RegistryError if "JSON" in message or "sha256" in message
                       else LayerError, match=message):
        ociarchive.OciArchive(io.BytesIO(rewrite(data, {"index.json": index})), "app:1")


def test_what_is_not_an_archive_is_one_error() -> None:
    with pytest.raises(LayerError, match="app:1: not a readable image archive"):
        ociarchive.OciArchive(io.BytesIO(b"\x00" * 10), "app:1")
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w").close()
    with pytest.raises(LayerError, match=r"the archive has no index\.json"):
        ociarchive.OciArchive(io.BytesIO(empty.getvalue()), "app:1")


class Writer:
    """A registry that keeps what is pushed to it, in order."""

    host = "127.0.0.1:5998"

    def __init__(self) -> None:
        self.pushed: list[tuple[str, str]] = []
        self.blobs: dict[str, bytes] = {}

    def push_blob(self, repo: str, digest: str, source: io.BufferedIOBase, size: int) -> str:
        data = source.read()
        assert len(data) == size
        self.blobs[digest] = data
        self.pushed.append(("blob", digest))
        return "uploaded"

    def push_manifest(self, repo: str, ref: str, media_type: str, data: bytes) -> str:
        from relock.upstream.registry import sha256_digest

        self.pushed.append(("manifest", ref))
        return sha256_digest(data)


def test_an_archive_is_pushed_blobs_first_the_index_last() -> None:
    r, data = saved()
    top = r.manifests[("team/app", "1")]
    w = Writer()
    with ociarchive.reading(io.BytesIO(data), "app:1") as archive:
        assert ociarchive.push(archive, w, "team/app", "pinned") == top.digest
    manifests = [ref for kind, ref in w.pushed if kind == "manifest"]
    assert manifests[-2:] == [top.digest, "pinned"]
    for platform in ("amd64", "arm64"):
        m = r.manifests[("team/app", f"app-{platform}")]
        at = w.pushed.index(("manifest", m.digest))
        # Every blob the manifest names went before it, with the archive's bytes.
        for blob in [m.json()["config"], *m.objects("layers")]:
            assert isinstance(blob, dict)
            assert w.pushed.index(("blob", str(blob["digest"]))) < at
            assert w.blobs[str(blob["digest"])] == r.blobs[str(blob["digest"])]
