"""A store folder someone hands you is input: nothing in it is followed out of it.

Each case makes a store of its own in tmp_path and a canary file beside it
that stands for a secret of the user's (an SSH key, a token). A blob, or one
of the layout's own entries, is made a symbolic link (or given other bytes);
then the store is copied to a registry (a loopback stub that keeps every byte
it is sent), published as a base image, served into a build step, listed,
verified or written into. The canary's bytes, and any hash of them, must
reach neither the registry nor stdout nor stderr; the folder a link names
must stay as it was (nothing written outside the store); the command ends
in one line naming the entry, exit 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from relock.blobs import BlobCache
from relock.build.view import LockedView, PipFile
from relock.errors import BaseImageError, HashMismatchError, RegistryError, StoreError
from relock.lock.lockfile import AptPackage, Base, Distro, Input, Lock, PipPackage, PythonEnv
from relock.store import storeview
from relock.store.baseimage import publish_base
from relock.store.store import DirStore, StoredFile, base_tag, put_lock, read_lock
from relock.upstream import registry as reg
from relock.upstream.registry import Manifest, sha256_digest
from tests.fakes import FakeEngine
from tests.hostile.contract import invoke, one_line_error
from tests.support.registrystub import Recorded, registry

DEB = b"!<arch>\nnot a real .deb; only hashed here\n"
WHEEL = b"a wheel's bytes\n"
WHEEL_NAME = "six-1.17.0-py3-none-any.whl"
LOCK = b"# a lock\n"


def canary(tmp_path: Path) -> bytes:
    """The secret: its bytes, kept in a file outside every store."""
    data = b"CANARY-" + os.urandom(16).hex().encode() + b"\n"
    (tmp_path / "secret").write_bytes(data)
    return data


def leaked(data: bytes, *outputs: str | bytes) -> list[str]:
    """Which of the canary's traces (its bytes, its sha256, a prefix of it) are in outputs."""
    h = hashlib.sha256(data).hexdigest()
    traces = [data.strip(), h.encode(), h[:12].encode()]
    found = []
    for out in outputs:
        raw = out.encode() if isinstance(out, str) else out
        found += [t.decode() for t in traces if t in raw]
    return found


def make_store(tmp_path: Path) -> tuple[DirStore, dict[str, str]]:
    """A store with a lock (a .deb, a wheel) and a base image; digests by role."""
    s = DirStore.open_layout(tmp_path / "store", create=True)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = b"a layer's bytes, say\n" * 100
    for data in (config, layer, DEB, WHEEL):
        s.put(sha256_digest(data), data)
    image = json.dumps({
        "schemaVersion": 2, "mediaType": reg.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256_digest(layer), "size": len(layer)}]}).encode()
    manifest = Manifest(reg.OCI_MANIFEST, image, sha256_digest(image))
    s.tag(base_tag(manifest.digest), s.put_manifest(manifest))
    files = [StoredFile("deb", "hello", "1.0", "hello_1.0_all.deb", sha256_digest(DEB),
                        len(DEB), "all"),
             StoredFile("wheel", "six", "1.17.0", WHEEL_NAME, sha256_digest(WHEEL), len(WHEEL))]
    lock = put_lock(s, LOCK, files, tag="mine")
    return s, {"config": sha256_digest(config), "layer": sha256_digest(layer),
               "deb": sha256_digest(DEB), "wheel": sha256_digest(WHEEL),
               "image": manifest.digest, "lock": sha256_digest(LOCK),
               "lock-manifest": lock.digest}


def link_blob(s: DirStore, digest: str, target: Path) -> Path:
    """Replace blob ``digest`` by a symbolic link to ``target``; the blob's path."""
    blob = s.path(digest)
    blob.unlink()
    blob.symlink_to(target)
    return blob


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (following nothing), to show it was not written to."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


# -- a blob that is a link ------------------------------------------------------------

@pytest.mark.parametrize("role", ["layer", "config", "deb", "wheel", "lock", "image",
                                  "lock-manifest"])
def test_a_linked_blob_never_reaches_a_registry(tmp_path: Path, role: str) -> None:
    secret = canary(tmp_path)
    s, digests = make_store(tmp_path)
    blob = link_blob(s, digests[role], tmp_path / "secret")
    with registry() as (host, heard):
        r = invoke("store", "copy", str(s.root), f"oci://{host}/stolen")
    line = one_line_error(r, str(blob), "symbolic link")
    assert leaked(secret, heard.received(), r.stdout, r.stderr) == [], line
    assert secret not in b"".join(heard.blobs.values())


def test_a_link_to_a_copy_of_the_right_bytes_is_refused_too(tmp_path: Path) -> None:
    """Where the link points is not looked at: a link is never a blob."""
    s, digests = make_store(tmp_path)
    outside = tmp_path / "outside.deb"
    outside.write_bytes(DEB)
    blob = link_blob(s, digests["deb"], outside)
    with registry() as (host, _):
        r = invoke("store", "copy", str(s.root), f"oci://{host}/x")
    one_line_error(r, str(blob), "symbolic link")


@pytest.mark.parametrize("size", ["same", "other"])
def test_a_changed_blob_is_not_sent_and_its_hash_not_shown(tmp_path: Path, size: str) -> None:
    secret = canary(tmp_path)
    s, digests = make_store(tmp_path)
    blob = s.path(digests["layer"])
    if size == "same":  # only the hash can tell
        secret = secret.ljust(blob.stat().st_size, b"!")
    blob.chmod(0o644)
    blob.write_bytes(secret)  # a regular file, with other bytes than its name says
    with registry() as (host, heard):
        r = invoke("store", "copy", str(s.root), f"oci://{host}/stolen")
    one_line_error(r, digests["layer"],
                   "do not have this digest" if size == "same" else "its descriptor says")
    assert leaked(secret, heard.received(), r.stdout, r.stderr) == []
    assert heard.manifests == {}


def test_publishing_a_base_from_a_hostile_store_sends_nothing_of_it(tmp_path: Path) -> None:
    """``relock build --store``'s path: a hostile lock names the registry, the store links."""
    secret = canary(tmp_path)
    s, digests = make_store(tmp_path)
    blob = link_blob(s, digests["layer"], tmp_path / "secret")
    with registry() as (host, heard):
        lock = Lock(input=Input("Dockerfile.in", "0" * 64), distro=Distro("debian", "13"),
                    base=(Base(0, f"{host}/attacker/base", digest=digests["image"]),))
        with pytest.raises(BaseImageError) as e:
            storeview.publish_bases(FakeEngine(), lock, s)
        assert str(blob) in str(e.value) and "\n" not in str(e.value)
        assert leaked(secret, heard.received(), str(e.value)) == []
        assert heard.manifests == {}  # and no image half-published either


def test_a_sound_store_still_publishes_byte_for_byte(tmp_path: Path) -> None:
    """The checks refuse the hostile store, not every store (the case above can fail)."""
    s, digests = make_store(tmp_path)
    with registry() as (host, heard):
        stats = publish_base(s, digests["image"], host, "base")
        assert stats.blobs == 2 and stats.manifests == 1
        assert heard.blobs[digests["layer"]] == s.path(digests["layer"]).read_bytes()
        r = invoke("store", "copy", str(s.root), f"oci://{host}/copy")
        assert r.exit_code == 0, r.output
        assert ("copy", "mine") in heard.manifests


# -- files served into a build step ---------------------------------------------------

def _lock(digests: dict[str, str]) -> tuple[Lock, AptPackage]:
    pkg = AptPackage("hello", "1.0", "all", sha256=digests["deb"].split(":")[1],
                     filename="pool/main/h/hello/hello_1.0_all.deb")
    lock = Lock(input=Input("Dockerfile.in", "0" * 64), distro=Distro("debian", "13"),
                apt=(pkg,), python=(PythonEnv("/opt/venv", "3.13", "/opt/venv/lib", True),),
                pip=(PipPackage("six", "1.17.0", "/opt/venv", hashes=(digests["wheel"],)),))
    return lock, pkg


def test_a_linked_deb_is_not_served_into_a_build(tmp_path: Path) -> None:
    secret = canary(tmp_path)
    s, digests = make_store(tmp_path)
    blob = link_blob(s, digests["deb"], tmp_path / "secret")
    _, pkg = _lock(digests)
    _, files = read_lock(s, "mine")
    with pytest.raises(HashMismatchError) as e:
        storeview.store_debs(s, [pkg], files, BlobCache(tmp_path / "cache"))
    assert str(blob) in str(e.value) and "symbolic link" in str(e.value)
    assert leaked(secret, str(e.value)) == []
    assert not (tmp_path / "cache").exists()


def test_a_changed_deb_names_no_hash_of_what_is_there(tmp_path: Path) -> None:
    secret = canary(tmp_path)
    s, digests = make_store(tmp_path)
    blob = s.path(digests["deb"])
    blob.chmod(0o644)
    blob.write_bytes(secret)
    _, pkg = _lock(digests)
    with pytest.raises(HashMismatchError, match=r"hello 1\.0 \(all\).*refused") as e:
        storeview.store_debs(s, [pkg], [], BlobCache(tmp_path / "cache"))
    assert leaked(secret, str(e.value)) == []


@pytest.mark.parametrize("how", ["link", "changed"])
def test_a_hostile_wheel_sends_no_byte_into_a_build(tmp_path: Path, how: str) -> None:
    secret = canary(tmp_path) * 2000  # more than a chunk: a relay would have sent some
    (tmp_path / "secret").write_bytes(secret)
    s, digests = make_store(tmp_path)
    if how == "link":
        link_blob(s, digests["wheel"], tmp_path / "secret")
    else:
        s.path(digests["wheel"]).chmod(0o644)
        s.path(digests["wheel"]).write_bytes(secret)
    lock, _ = _lock(digests)
    _, files = read_lock(s, "mine")
    sha = digests["wheel"].split(":")[1]
    with pytest.raises(HashMismatchError):
        storeview.StoreSource(s, files).open(PipFile("six", "1.17.0", WHEEL_NAME, sha))
    view = LockedView([], lock, storeview.StoreSource(s, files))
    with view.serve() as server:
        urllib.request.urlopen(f"{server.url}/pypi/simple/six/", timeout=10).close()
        url = f"{server.url}/pypi/files/{sha}/{WHEEL_NAME}"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url, timeout=10)
        body = e.value.read()
    assert e.value.code == 502
    assert leaked(secret, body) == []
    assert any(WHEEL_NAME in m for m in view.misses.mismatches)


# -- the layout's own entries ------------------------------------------------------------

ENTRIES = ["blobs", "blobs/sha256", "index.json", "oci-layout", ".tmp"]


def link_entry(s: DirStore, entry: str, tmp_path: Path) -> Path:
    """Move the entry out of the store and leave a link to it: the link's target."""
    inside = s.root / entry
    outside = tmp_path / "elsewhere" / entry.replace("/", "-")
    outside.parent.mkdir(exist_ok=True)
    if not inside.exists():
        inside.mkdir()
    shutil.move(inside, outside)
    inside.symlink_to(outside)
    return outside


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("command", ["ls", "verify", "copy-from", "copy-into", "vendor-put"])
def test_a_linked_layout_entry_is_refused_and_not_written_through(
        tmp_path: Path, entry: str, command: str) -> None:
    s, _ = make_store(tmp_path)
    other = tmp_path / "other"
    DirStore.open_layout(other, create=True)
    outside = link_entry(s, entry, tmp_path)
    before = snapshot(tmp_path / "elsewhere")
    other_before = snapshot(other)
    if command == "ls":
        r = invoke("store", "ls", str(s.root))
    elif command == "verify":
        r = invoke("store", "verify", str(s.root))
    elif command == "copy-from":
        r = invoke("store", "copy", str(s.root), str(other))
    elif command == "copy-into":
        src, _ = make_store(tmp_path / "src")
        r = invoke("store", "copy", str(src.root), str(s.root))
    else:  # what vendor does to a store: open it, put a new blob, tag
        with pytest.raises(StoreError) as e:
            put_lock(DirStore.open_layout(s.root, create=True), b"# new\n", [], tag="new")
        assert str(s.root / entry) in str(e.value) and "\n" not in str(e.value)
        assert snapshot(tmp_path / "elsewhere") == before
        return
    one_line_error(r, f"{s.root / entry}: is a symbolic link")
    assert snapshot(tmp_path / "elsewhere") == before, f"written through {outside}"
    assert snapshot(other) == other_before  # nothing half-copied into the other store


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_blob_that_is_no_regular_file_is_refused_without_being_read(
        tmp_path: Path, kind: str) -> None:
    s, digests = make_store(tmp_path)
    blob = s.path(digests["layer"])
    blob.unlink()
    if kind == "fifo":
        os.mkfifo(blob)  # opening it for reading would wait for a writer forever
    else:
        blob.mkdir()
    with registry() as (host, heard):
        r = invoke("store", "copy", str(s.root), f"oci://{host}/x")
    one_line_error(r, str(blob), "not a regular file")
    assert digests["layer"] not in heard.blobs


def test_verify_names_a_linked_blob_without_its_hash(tmp_path: Path) -> None:
    secret = canary(tmp_path)
    s, digests = make_store(tmp_path)
    blob = link_blob(s, digests["wheel"], tmp_path / "secret")
    r = invoke("store", "verify", str(s.root))
    assert r.exit_code == 1, r.output
    assert f"{digests['wheel']}\t{blob}: is a symbolic link" in r.stdout
    assert leaked(secret, r.stdout, r.stderr) == []


def test_tags_read_from_a_store_are_bounded(tmp_path: Path) -> None:
    s, _ = make_store(tmp_path)
    with (s.root / "index.json").open("r+b") as f:  # a huge index.json, sparse
        f.truncate(64 << 20)
    one_line_error(invoke("store", "ls", str(s.root)), "index.json", "limit")
    nested = b"[" * 100_000 + b"]" * 100_000
    (s.root / "index.json").write_bytes(nested)
    one_line_error(invoke("store", "ls", str(s.root)), "index.json")


# -- SIGTERM ------------------------------------------------------------------------------

def test_sigterm_during_a_copy_into_a_folder_leaves_no_temp_file(tmp_path: Path) -> None:
    layer = os.urandom(4 << 20)
    config = b'{"architecture": "amd64", "os": "linux"}'
    image = json.dumps({
        "schemaVersion": 2, "mediaType": reg.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256_digest(layer), "size": len(layer)}]}).encode()
    dst = tmp_path / "dst"
    with registry() as (host, state):
        _hold(state, "src", [config, layer], image, "v1")
        state.drip = (64 << 10, 0.05)  # about 1.3 MB/s: the copy takes some 3 s
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
               "DOCKER_CONFIG": str(tmp_path / "docker")}
        proc = subprocess.Popen([sys.executable, "-m", "relock", "store", "copy",
                                 f"oci://{host}/src", str(dst)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not (dst / ".tmp").is_dir() or not any(
                p.stat().st_size for p in (dst / ".tmp").iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, err
    assert time.monotonic() - started < 2.5, "the copy was not cut off"
    assert "Traceback" not in err
    assert list((dst / ".tmp").iterdir()) == []
    assert not DirStore(dst).has(sha256_digest(layer))
    assert json.loads((dst / "index.json").read_bytes())["manifests"] == []
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.*"))


def _hold(state: Recorded, repo: str, blobs: list[bytes], manifest: bytes, tag: str) -> None:
    for data in blobs:
        state.blobs[sha256_digest(data)] = data
    for ref in (tag, sha256_digest(manifest)):
        state.manifests[(repo, ref)] = (reg.OCI_MANIFEST, manifest)


# -- credentials -------------------------------------------------------------------------

def test_credentials_never_go_to_a_plain_http_token_service_elsewhere() -> None:
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            # 192.0.2.1: TEST-NET-1, never a host; a request to it would hang to its timeout.
            self.send_header("WWW-Authenticate",
                             'Bearer realm="http://192.0.2.1/token",service="s"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        started = time.monotonic()
        with pytest.raises(RegistryError, match=r"plain http.*not send your `docker login`"):
            reg.Registry(host, auth=("me", "hunter2")).manifest("x", "latest")
        assert time.monotonic() - started < 5  # refused, not tried
    finally:
        server.shutdown()
        server.server_close()
