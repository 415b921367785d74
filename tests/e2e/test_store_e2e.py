"""The store against the test bed's real registry and engine.

The trixie base of the test bed is copied by digest from the local registry
into a folder store, checked there with nothing but hashlib and the
registry's own answers, pushed as ``oci://`` to the registry and read back,
published into a fresh repository, and pulled by the engine with the same
digest. A second registry on another loopback port proves a copy between two
registries. Every repository used is under a fresh ``relock-test-<uuid>/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relock.errors import BaseImageError
from relock.store import baseimage, store
from relock.upstream import registry
from tests.conftest import skip_or_fail
from tests.support.dockerregistry import serve

pytestmark = pytest.mark.engine

REGISTRY = "127.0.0.1:5000"
ACCEPT = ("application/vnd.oci.image.index.v1+json, "
          "application/vnd.docker.distribution.manifest.list.v2+json, "
          "application/vnd.oci.image.manifest.v1+json, "
          "application/vnd.docker.distribution.manifest.v2+json")


def get(url: str, method: str = "GET", accept: str = ACCEPT) -> tuple[bytes, dict[str, str]]:
    req = urllib.request.Request(url, method=method, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read(), dict(resp.headers)


@pytest.fixture(scope="module")
def trixie() -> str:
    """The local registry's digest of one image manifest of library/debian:trixie-slim.

    Where the tag names an image index (a multi-platform base, as the official
    images are), its linux/amd64 manifest: these tests copy one image.
    """
    try:
        data, headers = get(f"http://{REGISTRY}/v2/library/debian/manifests/trixie-slim")
    except OSError as e:
        pytest.fail(f"the test bed's registry does not answer: {e}", pytrace=False)
    doc = json.loads(data)
    for entry in doc.get("manifests") or []:
        if entry.get("platform", {}).get("architecture") == "amd64":
            return str(entry["digest"])
    return headers["Docker-Content-Digest"]


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh repository prefix; its manifests are deleted afterwards (best effort)."""
    name = f"relock-test-{uuid.uuid4().hex[:12]}"
    yield name
    for repo in (f"{name}/store", f"{name}/debian", f"{name}/a", f"{name}/b"):
        _delete_repo(REGISTRY, repo)


def _delete_repo(host: str, repo: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        body, _ = get(f"http://{host}/v2/{repo}/tags/list")
        for tag in json.loads(body).get("tags") or []:
            _, headers = get(f"http://{host}/v2/{repo}/manifests/{tag}", "HEAD")
            req = urllib.request.Request(
                f"http://{host}/v2/{repo}/manifests/{headers['Docker-Content-Digest']}",
                method="DELETE")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(req, timeout=10).close()


def layout_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted((root / "blobs").rglob("*")) if p.is_file()}


def check_layout(root: Path) -> None:
    """Every blob's name is the sha256 of its bytes: checked with hashlib alone."""
    for path in (root / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path


def test_vendor_the_trixie_base_byte_for_byte(tmp_path: Path, trixie: str) -> None:
    s = store.open_store(tmp_path / "s", create=True)
    started = time.monotonic()
    desc, stats = baseimage.vendor_base(f"{REGISTRY}/library/debian@{trixie}", s)
    took = time.monotonic() - started
    print(f"vendor trixie base: {stats.bytes} bytes, {stats.blobs} blobs, {took:.2f}s")

    check_layout(tmp_path / "s")
    # The manifest is the registry's bytes, under the registry's digest.
    data, _ = get(f"http://{REGISTRY}/v2/library/debian/manifests/{trixie}")
    hexd = trixie.split(":")[1]
    assert (tmp_path / "s" / "blobs" / "sha256" / hexd).read_bytes() == data
    doc = json.loads(data)
    for blob in [doc["config"], *doc["layers"]]:
        path = tmp_path / "s" / "blobs" / "sha256" / blob["digest"].split(":")[1]
        assert path.stat().st_size == blob["size"]
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["digest"] == trixie and entry["size"] == len(data)
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == f"base-{hexd}"
    assert desc.digest == trixie
    assert stats.bytes == len(data) + sum(b["size"] for b in [doc["config"], *doc["layers"]])
    # A second vendor finds everything there and writes nothing.
    again = baseimage.vendor_base(f"{REGISTRY}/library/debian@{trixie}", s)[1]
    assert (again.blobs, again.manifests) == (0, 0)


def test_a_docker_hub_name_comes_through_the_engines_mirror(tmp_path: Path, trixie: str,
                                                             client: Any) -> None:
    from relock.image.engine import DockerEngine

    mirrors = DockerEngine(client).registry_mirrors()
    assert registry.mirror_hosts(mirrors) == [REGISTRY]
    s = store.open_store(tmp_path / "s", create=True)
    desc, _ = baseimage.vendor_base(f"debian:trixie-slim@{trixie}", s, mirrors=mirrors)
    assert desc.annotations["org.opencontainers.image.base.name"] == (
        f"docker.io/library/debian:trixie-slim@{trixie}")
    assert list(s.tags()) == [f"base-{trixie[7:]}"]


def test_a_base_no_registry_has_is_an_error_not_a_new_digest(tmp_path: Path) -> None:
    s = store.open_store(tmp_path / "s", create=True)
    ghost = "sha256:" + hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    down = registry.Registry("127.0.0.1:9", timeout=(2, 2))
    with pytest.raises(BaseImageError, match=rf"no registry answers for this digest \({REGISTRY}: "
                                             r"no such manifest; 127\.0\.0\.1:9: unreachable\)"
                                             r".*relock cannot keep its digest"):
        baseimage.vendor_base(f"debian@{ghost}", s,
                              registries=[registry.Registry(REGISTRY), down])
    with pytest.raises(BaseImageError, match="vendored by digest"):
        baseimage.vendor_base(f"{REGISTRY}/library/debian:trixie-slim", s)
    assert s.tags() == {}


def lock_content(s: store.Store) -> tuple[bytes, list[store.StoredFile]]:
    files = []
    for i, (kind, name) in enumerate([("deb", "hello"), ("wheel", "six"), ("sdist", "pkg")]):
        data = os.urandom(1000 + i)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        s.put(digest, data)
        files.append(store.StoredFile(kind, name, "1.0", f"{name}-1.0.{kind}", digest, len(data)))
    return f"version = 1\n# {uuid.uuid4()}\n".encode(), files


def test_a_store_pushed_to_the_registry_and_read_back(tmp_path: Path, trixie: str,
                                                      prefix: str) -> None:
    src = store.open_store(tmp_path / "src", create=True)
    baseimage.vendor_base(f"{REGISTRY}/library/debian@{trixie}", src)
    lock, files = lock_content(src)
    lock_desc = store.put_lock(src, lock, files, bases=[f"debian:trixie-slim@{trixie}"])

    remote = store.open_store(f"oci://{REGISTRY}/{prefix}/store")
    started = time.monotonic()
    stats = store.copy_store(src, remote)
    took = time.monotonic() - started
    print(f"push store to oci://: {stats.bytes} bytes, {stats.blobs} blobs, {took:.2f}s")

    # What the registry says, asked without relock.
    body, _ = get(f"http://{REGISTRY}/v2/{prefix}/store/tags/list")
    assert sorted(json.loads(body)["tags"]) == sorted(src.tags())
    _, headers = get(f"http://{REGISTRY}/v2/{prefix}/store/manifests/{store.lock_tag(lock)}",
                     "HEAD")
    assert headers["Docker-Content-Digest"] == lock_desc.digest
    _, headers = get(f"http://{REGISTRY}/v2/{prefix}/store/manifests/base-{trixie[7:]}", "HEAD")
    assert headers["Docker-Content-Digest"] == trixie
    assert store.verify(remote)[1] == []
    got_lock, got_files = store.read_lock(remote, store.lock_tag(lock))
    assert got_lock == lock
    assert sorted(got_files, key=lambda f: f.name) == sorted(files, key=lambda f: f.name)

    back = store.open_store(tmp_path / "back", create=True)
    stats = store.copy_store(remote, back)
    assert layout_files(tmp_path / "back") == layout_files(tmp_path / "src")
    assert {k: v.digest for k, v in back.tags().items()} == {
        k: v.digest for k, v in src.tags().items()}
    check_layout(tmp_path / "back")
    # Pushing again moves nothing.
    assert store.copy_store(src, remote).blobs == 0


def test_publish_the_base_and_the_engine_pulls_the_same_digest(
        tmp_path: Path, trixie: str, prefix: str, client: Any) -> None:
    s = store.open_store(tmp_path / "s", create=True)
    baseimage.vendor_base(f"{REGISTRY}/library/debian@{trixie}", s)
    # An OCI index over the platform manifest: published children first.
    platform = s.manifest(trixie)
    index_doc = {"schemaVersion": 2, "mediaType": registry.OCI_INDEX, "manifests": [
        {"mediaType": platform.media_type, "digest": trixie, "size": len(platform.data),
         "platform": {"architecture": "amd64", "os": "linux"}}]}
    data = json.dumps(index_doc).encode()
    index = registry.Manifest(registry.OCI_INDEX, data, registry.sha256_digest(data))
    s.tag("multi", s.put_manifest(index))

    repo = f"{prefix}/debian"
    stats = baseimage.publish_base(s, index.digest, REGISTRY, repo)
    assert stats.manifests == 2
    pulled = []
    try:
        for digest in (trixie, index.digest):
            ref = f"{REGISTRY}/{repo}@{digest}"
            image = client.images.pull(ref)
            pulled.append(ref)
            assert ref in image.attrs["RepoDigests"]
            # The same image: its layers and config (an image ID is the config's digest
            # in the overlay2 store, the digest pulled in the containerd store).
            base = client.images.get("debian:trixie-slim").attrs
            assert [image.attrs[k] for k in ("RootFS", "Created", "Config")] == [
                base[k] for k in ("RootFS", "Created", "Config")]
    finally:
        for ref in pulled:
            with contextlib.suppress(Exception):
                client.images.remove(ref)
    with pytest.raises(BaseImageError, match="is not in the store"):
        baseimage.publish_base(s, "sha256:" + "0" * 64, REGISTRY, repo)


def test_chunked_upload_and_cross_repository_mount(prefix: str) -> None:
    client = registry.Registry(REGISTRY)
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = registry.sha256_digest(data)
    how = client.push_blob(f"{prefix}/a", digest, io.BytesIO(data), len(data), chunk=1 << 20)
    assert how == "uploaded"
    assert client.blob(f"{prefix}/a", digest).read() == data
    assert client.push_blob(f"{prefix}/a", digest, io.BytesIO(data), len(data)) == "exists"
    assert client.push_blob(f"{prefix}/b", digest, io.BytesIO(b""), len(data),
                            mount_from=f"{prefix}/a") == "mounted"
    assert client.blob(f"{prefix}/b", digest).read() == data
    # A wrong digest for the bytes is refused by the registry, and said in one line.
    other = registry.sha256_digest(b"other")
    with pytest.raises(registry.RegistryError, match=r"finish upload answered HTTP 400"):
        client.push_blob(f"{prefix}/a", other, io.BytesIO(data[:100]), 100)


@pytest.fixture
def second_registry(tmp_path: Path) -> Iterator[str]:
    """Another docker-registry on a loopback port, with its own storage; stopped by pid."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(binary).exists():
        pytest.fail("docker-registry is not installed (scripts/testbed installs it)")
    with serve(binary, tmp_path) as host:
        yield host


def test_copy_between_two_registries(tmp_path: Path, trixie: str, prefix: str,
                                     second_registry: str) -> None:
    s = store.open_store(tmp_path / "s", create=True)
    baseimage.vendor_base(f"{REGISTRY}/library/debian@{trixie}", s)
    lock, files = lock_content(s)
    store.put_lock(s, lock, files)
    first = store.open_store(f"oci://{REGISTRY}/{prefix}/store")
    store.copy_store(s, first)
    second = store.open_store(f"oci://{second_registry}/team/store")
    stats = store.copy_store(first, second)
    assert stats.blobs == 6 and stats.manifests == 2
    _, headers = get(f"http://{second_registry}/v2/team/store/manifests/base-{trixie[7:]}",
                     "HEAD")
    assert headers["Docker-Content-Digest"] == trixie
    assert store.verify(second)[1] == []
    back = store.open_store(tmp_path / "back", create=True)
    store.copy_store(second, back)
    assert layout_files(tmp_path / "back") == layout_files(tmp_path / "s")


def test_an_independent_oci_tool_agrees(tmp_path: Path, trixie: str, prefix: str) -> None:
    """skopeo writes the same layout from the registry, and copies relock's lock manifest."""
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        skip_or_fail("skopeo is not installed (scripts/testbed installs it)")
    s = store.open_store(tmp_path / "s", create=True)
    baseimage.vendor_base(f"{REGISTRY}/library/debian@{trixie}", s)
    subprocess.run([skopeo, "copy", "--quiet", "--src-tls-verify=false", "--preserve-digests",
                    f"docker://{REGISTRY}/library/debian@{trixie}", f"oci:{tmp_path / 'sk'}:t"],
                   check=True)
    assert layout_files(tmp_path / "sk") == layout_files(tmp_path / "s")
    assert store.verify(store.open_store(tmp_path / "sk")) == (3, [])

    lock, files = lock_content(s)
    desc = store.put_lock(s, lock, files, tag="mylock")
    subprocess.run([skopeo, "copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests",
                    f"oci:{tmp_path / 's'}:mylock", f"docker://{REGISTRY}/{prefix}/store:mylock"],
                   check=True)
    _, headers = get(f"http://{REGISTRY}/v2/{prefix}/store/manifests/mylock", "HEAD")
    assert headers["Docker-Content-Digest"] == desc.digest
    remote = store.open_store(f"oci://{REGISTRY}/{prefix}/store")
    assert store.read_lock(remote, "mylock")[0] == lock


def test_one_platform_of_a_multi_platform_base(tmp_path: Path, trixie: str, prefix: str) -> None:
    # A two-platform index in the registry: trixie for amd64, a small stand-in for arm64.
    full = store.open_store(tmp_path / "full", create=True)
    baseimage.vendor_base(f"{REGISTRY}/library/debian@{trixie}", full)
    config, layer = b'{"architecture":"arm64","os":"linux"}', os.urandom(2000)
    for data in (config, layer):
        full.put(registry.sha256_digest(data), data)
    arm = json.dumps({"schemaVersion": 2, "mediaType": registry.OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": registry.sha256_digest(config), "size": len(config)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                  "digest": registry.sha256_digest(layer),
                                  "size": len(layer)}]}).encode()
    arm_m = registry.Manifest(registry.OCI_MANIFEST, arm, registry.sha256_digest(arm))
    full.put_manifest(arm_m)
    amd = full.manifest(trixie)
    index = json.dumps({"schemaVersion": 2, "mediaType": registry.OCI_INDEX, "manifests": [
        {"mediaType": amd.media_type, "digest": trixie, "size": len(amd.data),
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": registry.OCI_MANIFEST, "digest": arm_m.digest, "size": len(arm),
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]}).encode()
    index_m = registry.Manifest(registry.OCI_INDEX, index, registry.sha256_digest(index))
    full.tag("multi", full.put_manifest(index_m))
    store.copy_store(full, store.open_store(f"oci://{REGISTRY}/{prefix}/store"))

    ref = f"{REGISTRY}/{prefix}/store@{index_m.digest}"
    one = store.open_store(tmp_path / "one", create=True)
    desc, stats = baseimage.vendor_base(ref, one, platforms={"linux/amd64"})
    assert (stats.manifests, stats.blobs) == (2, 2)
    assert desc.annotations[store.PLATFORMS] == "linux/amd64"
    assert one.manifest(index_m.digest).data == index  # the index, byte for byte
    assert not one.has(arm_m.digest) and not one.has(registry.sha256_digest(layer))
    assert store.verify(one) == (4, [])
    # A registry that wants every entry of an index refuses the partial copy, and says why.
    with pytest.raises(BaseImageError, match=r"answered HTTP 400 .*the store keeps only "
                                             r"linux/amd64 of this index"):
        baseimage.publish_base(one, index_m.digest, REGISTRY, f"{prefix}/debian")
    # Vendoring all platforms later fetches only the missing one.
    _, stats = baseimage.vendor_base(ref, one)
    assert (stats.manifests, stats.blobs) == (1, 2)
    assert store.PLATFORMS not in one.tags()[f"base-{index_m.digest[7:]}"].annotations
    assert store.verify(one) == (7, [])
    baseimage.publish_base(one, index_m.digest, REGISTRY, f"{prefix}/debian")
