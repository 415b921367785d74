"""Registries, stores and images past relock's limits (relock/bounds.py, docs/limits.md).

Each case is a loopback registry (``tests/support/ociregistry``) or a folder
store of the test's own; each ends in one line naming the limit and the
source, exit 2, in bounded time, and nothing kept in the blob cache or the
store.
"""

from __future__ import annotations

import gzip
import http.server
import json
import time
from pathlib import Path

import pytest

from relock import bounds
from relock.blobs import BlobCache
from relock.errors import LimitError, RegistryError
from relock.image.registrysource import RegistrySource
from relock.store import store as st
from relock.upstream.registry import Registry
from tests.hostile.contract import invoke, one_line_error
from tests.support import ociregistry as oc
from tests.support.scripted import endless

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DEEP = b"[" * 100_000 + b"]" * 100_000


def blobs_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def image_of(reg: oc.Registry, repo: str, config: bytes, layers: list[bytes] | None = None,
             sizes: list[int] | None = None) -> str:
    """An image whose config and layer blobs are these bytes (sizes as given, or theirs)."""
    reg.blobs[oc.digest(config)] = config
    descs = []
    for i, data in enumerate(layers or []):
        reg.blobs[oc.digest(data)] = data
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": oc.digest(data),
                      "size": sizes[i] if sizes else len(data)})
    return reg.put_manifest(repo, {
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": oc.digest(config), "size": len(config)},
        "layers": descs}, "1")


# -- tag lists -----------------------------------------------------------------------

def test_a_tag_list_whose_link_points_back_at_itself_ends() -> None:
    with oc.serve() as reg:
        oc.base_and_app(reg)
        path = "/v2/team/app/tags/list"
        reg.routes[path] = lambda h: oc.send(h, 200, b'{"name": "team/app", "tags": ["1"]}',
                                             Link=f'<{path}?n=1000>; rel="next"')
        start = time.monotonic()
        one_line_error(invoke("store", "ls", f"oci://{reg.host}/team/app"),
                       f"{reg.host}/team/app: tag list", "one already read (a loop)")
        assert time.monotonic() - start < 5
        assert reg.log.count(f"GET {path}") == 1


def test_a_tag_list_of_endless_new_pages_stops_at_the_page_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "TAG_PAGES", 5)
    with oc.serve() as reg:
        path = "/v2/team/app/tags/list"
        n = [0]

        def onward(h: http.server.BaseHTTPRequestHandler) -> None:
            n[0] += 1
            oc.send(h, 200, json.dumps({"tags": [f"t{n[0]}"]}).encode(),
                    Link=f'<{path}?last=t{n[0]}>; rel="next"')

        reg.routes[path] = onward
        with pytest.raises(LimitError, match=r"tag list: the number of pages is over 5 pages"):
            Registry(reg.host).tags("team/app")
        assert n[0] == 5


def test_a_tag_list_page_elsewhere_or_not_a_list_is_refused() -> None:
    with oc.serve() as reg:
        path = "/v2/team/app/tags/list"
        reg.routes[path] = lambda h: oc.send(h, 200, b'{"tags": ["a"]}',
                                             Link='<http://192.0.2.1/v2/x/tags/list>; rel="next"')
        with pytest.raises(RegistryError, match="next page is on another host"):
            Registry(reg.host).tags("team/app")
        reg.routes[path] = lambda h: oc.send(h, 200, b'{"tags": "a"}')
        with pytest.raises(RegistryError, match="'tags' is not a list of names"):
            Registry(reg.host).tags("team/app")
        reg.routes[path] = lambda h: oc.send(h, 200, b'{"tags": ' + DEEP + b"}")
        with pytest.raises(LimitError, match="nested deeper than 64 levels"):
            Registry(reg.host).tags("team/app")
        reg.routes[path] = endless()
        start = time.monotonic()
        with pytest.raises(LimitError, match=r"tag list: the tag list page is over 16 MiB"):
            Registry(reg.host).tags("team/app")
        assert time.monotonic() - start < 10


def test_a_tag_list_that_pages_properly_is_read_whole() -> None:
    with oc.serve() as reg:
        path = "/v2/team/app/tags/list"
        pages = {"": (["a", "b"], f'<{path}?last=b&n=2>; rel="next"'),
                 "b": (["c"], "")}

        def paged(h: http.server.BaseHTTPRequestHandler) -> None:
            last = h.path.partition("last=")[2].partition("&")[0]
            tags, link = pages[last]
            oc.send(h, 200, json.dumps({"tags": tags}).encode(), **({"Link": link} if link else {}))

        reg.routes[path] = paged
        assert Registry(reg.host).tags("team/app") == ["a", "b", "c"]


# -- tokens, redirects -----------------------------------------------------------------

def test_an_endless_token_answer_is_cut_at_its_limit() -> None:
    with oc.serve() as reg:
        reg.routes["/v2/team/app/manifests/1"] = lambda h: oc.send(
            h, 401, b"", WWW_Authenticate=f'Bearer realm="http://{reg.host}/token",service="r"')
        reg.routes["/token"] = endless(b'{"token": "' + b"x" * 65536)
        start = time.monotonic()
        with pytest.raises(LimitError, match=r"token service .*: the token answer is over 1 MiB"):
            Registry(reg.host).manifest("team/app", "1")
        assert time.monotonic() - start < 10


def test_a_redirect_loop_is_one_line() -> None:
    with oc.serve() as reg:
        path = "/v2/team/app/manifests/1"
        reg.routes[path] = lambda h: oc.send(h, 302, b"", Location=path)
        with pytest.raises(RegistryError, match=r"more than 10 redirects \(relock's limit"):
            Registry(reg.host).manifest("team/app", "1")


def test_an_endless_error_answer_is_not_read_whole() -> None:
    with oc.serve() as reg:
        path = "/v2/team/app/manifests/1"

        def error(h: http.server.BaseHTTPRequestHandler) -> None:
            h.send_response(500)
            h.send_header("Connection", "close")
            h.end_headers()
            try:
                end = time.monotonic() + 20
                while time.monotonic() < end:
                    h.wfile.write(b'{"errors": [' * 1000)
            except OSError:
                pass

        reg.routes[path] = error
        start = time.monotonic()
        with pytest.raises(RegistryError, match=r"answered HTTP 500$"):
            Registry(reg.host, backoff=()).manifest("team/app", "1")
        assert time.monotonic() - start < 10


# -- manifests and configs ---------------------------------------------------------------

def test_a_deeply_nested_registry_manifest_is_one_line(tmp_path: Path) -> None:
    with oc.serve() as reg:
        reg.manifests[("team/deep", "1")] = (MANIFEST, b'{"mediaType": "' + MANIFEST.encode()
                                             + b'", "x": ' + DEEP + b"}")
        r = one_line_error(invoke("freeze", f"oci://{reg.host}/team/deep:1", "--no-archive",
                                  "--no-index", "-o", str(tmp_path / "x.lock")),
                           "nested deeper than 64 levels")
        assert "team/deep" in r


@pytest.mark.parametrize(("config", "said"), [
    (b'{"architecture": "amd64", "os": "linux", "x": ' + DEEP + b"}",
     "the image config: nested deeper than 64 levels"),
    (b'{"architecture": "amd64", "os": "linux", "rootfs": [1]}',
     "the image config's 'rootfs' is not an object"),
    (b'{"architecture": "amd64", "os": "linux", "rootfs": "layers"}',
     "the image config's 'rootfs' is not an object"),
    (b'{"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": {"a": 1}}}',
     "'rootfs.diff_ids' is not a list"),
    (b'{"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": [7]}}',
     "a diff ID: '7' is not a sha256 digest"),
])
def test_a_hostile_image_config_is_one_line(tmp_path: Path, config: bytes, said: str) -> None:
    with oc.serve() as reg:
        image_of(reg, "team/bad", config)
        one_line_error(invoke("freeze", f"oci://{reg.host}/team/bad:1", "--no-archive",
                              "--no-index", "-o", str(tmp_path / "x.lock")), said)
        assert not (tmp_path / "x.lock").exists()


def test_a_config_bigger_than_its_limit_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "CONFIG", 100)
    with oc.serve() as reg:
        image_of(reg, "team/big", json.dumps({"os": "linux", "x": "y" * 200}).encode())
        with pytest.raises(LimitError, match=r"the image config \(2\d\d bytes\) is over 100 "
                                             r"bytes"):
            RegistrySource(cache=BlobCache(Path("/nonexistent"))).resolve(
                f"oci://{reg.host}/team/big:1")


# -- layers ------------------------------------------------------------------------------

def read_files(host: str, repo: str, cache: Path) -> None:
    """What a freeze of ``oci://HOST/REPO:1`` reads of its layers (their kept files)."""
    src = RegistrySource(cache=BlobCache(cache))
    image = src.resolve(f"oci://{host}/{repo}:1")
    with src.open_rootfs(image.info) as fs:
        fs.read_bytes("/var/lib/dpkg/status")


def _config(layers: list[bytes]) -> bytes:
    diff_ids = [oc.digest(gzip.decompress(data)) for data in layers]
    return json.dumps({"architecture": "amd64", "os": "linux",
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


def test_a_layer_blob_longer_than_its_descriptor_is_never_cached(tmp_path: Path) -> None:
    from tests.fakes import layer_tar

    layer, _ = layer_tar({"etc/os-release": oc.OS_RELEASE, "big": b"z" * 500_000})
    with oc.serve() as reg:
        image_of(reg, "team/long", _config([layer]), [layer], sizes=[100])
        with pytest.raises(LimitError, match=rf"{reg.host}/team/long@{oc.digest(layer)}: the "
                                             r"blob .*is over the 100 bytes its descriptor says"):
            read_files(reg.host, "team/long", tmp_path / "cache")
        assert blobs_in(tmp_path / "cache") == []
        # No Content-Length, a body without end: cut at the descriptor's size, in time.
        reg.routes[f"/v2/team/long/blobs/{oc.digest(layer)}"] = endless()
        start = time.monotonic()
        with pytest.raises(LimitError, match=r"is over the 100 bytes its descriptor says"):
            read_files(reg.host, "team/long", tmp_path / "cache")
        assert time.monotonic() - start < 5
        assert blobs_in(tmp_path / "cache") == []


def test_a_gzip_bomb_layer_stops_at_the_limit(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A member whose header says more than the limit is refused before it is inflated."""
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 256 << 20
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    bomb = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    assert len(bomb) < 1 << 20
    monkeypatch.setattr(bounds, "LAYER_BYTES", 64 << 20)
    with oc.serve() as reg:
        image_of(reg, "team/bomb", _config([bomb]), [bomb])
        start = time.monotonic()
        with pytest.raises(LimitError, match="the decompressed size of its layers is over "
                                             "64 MiB"):
            read_files(reg.host, "team/bomb", tmp_path / "cache")
        assert time.monotonic() - start < 10


def test_a_layer_file_too_big_to_hold_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes import layer_tar

    monkeypatch.setattr(bounds, "LAYER_FILE", 1000)
    layer, _ = layer_tar({"etc/os-release": oc.OS_RELEASE, "var/lib/dpkg/status": b"P" * 2000})
    with oc.serve() as reg:
        image_of(reg, "team/fat", _config([layer]), [layer])
        with pytest.raises(LimitError, match="/var/lib/dpkg/status: the file is over 1000 "
                                             "bytes"):
            read_files(reg.host, "team/fat", tmp_path / "cache")


# -- stores ------------------------------------------------------------------------------

def test_a_store_blob_longer_than_its_descriptor_is_not_written(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path / "store", create=True)
    data = b"x" * 5000
    with pytest.raises(LimitError, match="the 100 bytes its descriptor says"):
        s.put(oc.digest(data), data, 100)
    assert blobs_in(tmp_path / "store" / "blobs") == []
    assert blobs_in(tmp_path / "store" / ".tmp") == []


def test_a_deeply_nested_lock_manifest_in_a_store_is_one_line(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path / "store", create=True)
    data = b'{"mediaType": "' + MANIFEST.encode() + b'", "x": ' + DEEP + b"}"
    s.put(oc.digest(data), data)
    s.tag("lock-deep", st.Descriptor(MANIFEST, oc.digest(data), len(data)))
    with pytest.raises(LimitError, match="nested deeper than 64 levels"):
        st.read_lock(s, "lock-deep")
    one_line_error(invoke("store", "verify", str(tmp_path / "store")),
                   "nested deeper than 64 levels")
