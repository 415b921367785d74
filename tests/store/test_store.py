"""The OCI layout store: writing and reading it, atomic blobs and index, lock manifests."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relock.errors import StoreError
from relock.store import store as st
from relock.upstream.registry import OCI_INDEX, OCI_MANIFEST, Manifest


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes (what a crash must not change)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def leftovers(root: Path) -> list[Path]:
    return [p for p in (root / ".tmp").glob("*")] if (root / ".tmp").is_dir() else []


def test_a_new_store_is_an_oci_layout(tmp_path: Path) -> None:
    s = st.open_store(tmp_path / "s", create=True)
    assert json.loads((tmp_path / "s" / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"}
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    assert index == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    assert (tmp_path / "s" / "blobs" / "sha256").is_dir()
    assert s.tags() == {}


def test_opening_a_folder_that_is_no_store_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"not an OCI image layout \(no oci-layout file\)"):
        st.open_store(tmp_path)
    with pytest.raises(StoreError, match="a store is a folder or oci://"):
        st.open_store("https://example.invalid/x")
    with pytest.raises(StoreError, match=r"oci://HOST\[:PORT\]/REPO"):
        st.open_store("oci://127.0.0.1:5000")


def test_blobs_are_named_by_their_sha256(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path, create=True)
    data = b"a .deb, say\n"
    d = digest_of(data)
    assert not s.has(d)
    assert s.put(d, data) is True
    assert s.put(d, data) is False  # already there: nothing written
    path = tmp_path / "blobs" / "sha256" / d.split(":")[1]
    assert s.path(d) == path and path.read_bytes() == data
    with s.open(d) as f:
        assert f.read() == data
    src = tmp_path / "file.whl"
    src.write_bytes(b"wheel bytes")
    assert s.put(digest_of(b"wheel bytes"), src, size=11)
    assert s.missing([d, "sha256:" + "0" * 64, d]) == ["sha256:" + "0" * 64]
    assert leftovers(tmp_path) == []


def test_wrong_bytes_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path, create=True)
    want = digest_of(b"the locked bytes")
    before = tree(tmp_path)
    with pytest.raises(StoreError, match=rf"content for {want} has digest sha256:\w+; refused"):
        s.put(want, b"other bytes")
    assert not s.has(want)
    assert tree(tmp_path) == before


def test_bad_digests_are_refused(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path, create=True)
    for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "A" * 64, "../../etc/passwd"):
        with pytest.raises(StoreError, match="is not a sha256 digest"):
            s.put(bad, b"x")


def test_an_interrupted_put_leaves_no_partial_blob(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path, create=True)
    s.put(digest_of(b"old"), b"old")
    before = tree(tmp_path)

    class Dies:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise KeyboardInterrupt
            return b"x" * 1000

    with pytest.raises(KeyboardInterrupt):
        s.put(digest_of(b"x" * 5000), Dies())  # type: ignore[arg-type]
    assert tree(tmp_path) == before
    assert leftovers(tmp_path) == []


class _FullDisk:
    """A file that takes ``room`` bytes, then fails like a full disk."""

    def __init__(self, f: Any, room: int) -> None:
        self._f, self._room = f, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._f.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def test_disk_full_mid_put_keeps_the_old_store(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    s = st.DirStore.open_layout(tmp_path, create=True)
    old = s.put_manifest(manifest_of({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                      "config": blob_desc(s, b"{}"), "layers": []}))
    s.tag("old", old)
    before = tree(tmp_path)
    real = os.fdopen
    monkeypatch.setattr(st.os, "fdopen", lambda fd, mode: _FullDisk(real(fd, mode), 3 << 20))
    big = os.urandom(5 << 20)
    with pytest.raises(StoreError, match=r"disk full while writing sha256:\w+ \(3145728 bytes in"
                                         r"\); nothing partial was kept"):
        s.put(digest_of(big), big)
    # index.json cannot be rewritten either, and the old one stays
    monkeypatch.setattr(st.os, "fdopen", lambda fd, mode: _FullDisk(real(fd, mode), 10))
    with pytest.raises(StoreError, match=r"index\.json: cannot write: No space left on device; "
                                         r"the old file is kept"):
        s.tag("new", old)
    monkeypatch.undo()
    assert tree(tmp_path) == before
    assert leftovers(tmp_path) == []
    assert st.open_store(tmp_path).tags()["old"].digest == old.digest


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_real_full_disk_leaves_no_partial_blob(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "small", "1m") as root:
        s = st.DirStore.open_layout(root, create=True)
        kept = os.urandom(100_000)
        s.put(digest_of(kept), kept)
        s.tag("kept", s.put_manifest(manifest_of({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": blob_desc(s, b"{}"),
            "layers": [{"mediaType": "application/octet-stream", "digest": digest_of(kept),
                        "size": len(kept)}]})))
        before = tree(root)
        big = os.urandom(2 << 20)
        with pytest.raises(StoreError, match="disk full while writing"):
            s.put(digest_of(big), big)
        assert tree(root) == before
        assert leftovers(root) == []
        assert st.verify(s) == (3, [])


def test_a_real_full_disk_keeps_index_json(tmp_path: Path) -> None:
    """The store writes index.json through relock.files: on a full disk, one StoreError line."""
    with tiny_tmpfs(tmp_path / "small", "1m") as root:
        s = st.DirStore.open_layout(root, create=True)
        m = s.put_manifest(manifest_of({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                        "config": blob_desc(s, b"{}"), "layers": []}))
        s.tag("kept", m)
        before = (root / "index.json").read_bytes()
        with contextlib.suppress(OSError), (root / "filler").open("wb") as f:
            while True:  # until the disk is full
                f.write(b"x" * 4096)
                f.flush()
        with pytest.raises(StoreError, match=r"index\.json: cannot write: No space left") as e:
            s.tag("new", m)
        assert "\n" not in str(e.value)
        assert (root / "index.json").read_bytes() == before
        assert leftovers(root) == [] and list(root.glob(".index.json.*")) == []
        assert set(st.open_store(root).tags()) == {"kept"}


def test_sigterm_while_index_json_is_written_leaves_no_temp_file(tmp_path: Path) -> None:
    """The store's index.json write holds SIGTERM until the rename is done (relock.files)."""
    import signal
    import sys
    import time

    st.DirStore.open_layout(tmp_path / "s", create=True)
    code = f"""
import os, time
from pathlib import Path
from relock import files
from relock.store import store
real_fsync = os.fsync
def slow_fsync(fd):
    Path({str(tmp_path / "in-window")!r}).touch()
    time.sleep(1.5)
    real_fsync(fd)
files.os.fsync = slow_fsync
s = store.DirStore.open_layout(Path({str(tmp_path / "s")!r}))
s._write(("index.json",), b'{{"schemaVersion": 2, "manifests": []}}\\n')
print("finished")
"""
    before = (tmp_path / "s" / "index.json").read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "in-window").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    assert any(n.name.endswith(".tmp") for n in (tmp_path / "s" / ".tmp").iterdir())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM and "finished" not in out
    assert list((tmp_path / "s" / ".tmp").iterdir()) == []
    assert (tmp_path / "s" / "index.json").read_bytes() in (
        before, b'{"schemaVersion": 2, "manifests": []}\n')


def blob_desc(s: st.Store, data: bytes, media_type: str = "application/json") -> dict[str, Any]:
    s.put(digest_of(data), data)
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}


def manifest_of(doc: dict[str, Any]) -> Manifest:
    data = json.dumps(doc).encode()
    return Manifest(media_type=str(doc.get("mediaType", OCI_MANIFEST)), data=data,
                    digest=digest_of(data))


def test_tags_live_in_index_json(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path, create=True)
    one = s.put_manifest(manifest_of({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                      "config": blob_desc(s, b"{}"), "layers": []}))
    two = s.put_manifest(manifest_of({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                      "config": blob_desc(s, b"{\"a\":1}"), "layers": []}))
    s.tag("v1", one)
    s.tag("latest", one)
    s.tag("latest", two)  # moves, does not add
    index = json.loads((tmp_path / "index.json").read_text())
    names = [(m["annotations"][st.REF_NAME], m["digest"]) for m in index["manifests"]]
    assert names == [("v1", one.digest), ("latest", two.digest)]
    again = st.open_store(tmp_path)
    assert {k: v.digest for k, v in again.tags().items()} == {"v1": one.digest,
                                                              "latest": two.digest}
    assert again.manifest("latest").data == again.manifest(two.digest).data
    with pytest.raises(StoreError, match="cannot name content in a store"):
        s.tag("sha256:abc", one)
    with pytest.raises(StoreError, match="no manifest tagged 'nope'"):
        s.manifest("nope")


def test_a_lock_manifest_ties_the_files_together(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path, create=True)
    deb, whl = b"deb bytes", b"wheel bytes"
    s.put(digest_of(deb), deb)
    s.put(digest_of(whl), whl)
    files = [
        st.StoredFile("wheel", "six", "1.16.0", "six-1.16.0-py2.py3-none-any.whl",
                      digest_of(whl), len(whl)),
        st.StoredFile("deb", "hello", "2.10-3", "hello_2.10-3_amd64.deb", digest_of(deb),
                      len(deb), arch="amd64"),
    ]
    lock = b"version = 1\n"
    base = "docker.io/library/debian@sha256:" + "1" * 64
    desc = st.put_lock(s, lock, files, bases=[base])
    tag = "lock-" + hashlib.sha256(lock).hexdigest()
    assert s.tags()[tag].digest == desc.digest
    doc = json.loads(s.path(desc.digest).read_bytes())
    assert doc["artifactType"] == "application/vnd.relock.lock.v1"
    assert doc["config"] == {"mediaType": "application/vnd.relock.lock.v1+toml",
                             "digest": digest_of(lock), "size": len(lock)}
    assert [layer["annotations"]["org.opencontainers.image.title"] for layer in doc["layers"]
            ] == ["hello_2.10-3_amd64.deb", "six-1.16.0-py2.py3-none-any.whl"]
    assert doc["layers"][0]["mediaType"] == "application/vnd.debian.binary-package"
    assert doc["layers"][0]["annotations"]["dev.relock.kind"] == "deb"
    assert doc["annotations"] == {"dev.relock.base.0": base}
    got_lock, got_files = st.read_lock(s, tag)
    assert got_lock == lock
    assert sorted(got_files, key=lambda f: f.kind) == sorted(files, key=lambda f: f.kind)
    # the same lock and files give the same manifest: re-vendoring changes nothing
    before = tree(tmp_path)
    assert st.put_lock(s, lock, list(reversed(files)), bases=[base]) == desc
    assert tree(tmp_path) == before


def test_a_lock_manifest_needs_its_files_in_first(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path, create=True)
    absent = st.StoredFile("deb", "hello", "2.10-3", "hello_2.10-3_amd64.deb",
                           "sha256:" + "2" * 64, 10)
    with pytest.raises(StoreError, match=r"hello_2\.10-3_amd64\.deb \(sha256:2+\) is not in"):
        st.put_lock(s, b"version = 1\n", [absent])


def test_verify_finds_changed_and_missing_blobs(tmp_path: Path) -> None:
    s = st.DirStore.open_layout(tmp_path, create=True)
    one, two = b"one" * 100, b"two" * 100
    layers = [blob_desc(s, one, "application/octet-stream"),
              blob_desc(s, two, "application/octet-stream")]
    m = s.put_manifest(manifest_of({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                    "config": blob_desc(s, b"{}"), "layers": layers}))
    s.tag("x", m)
    assert st.verify(s) == (4, [])
    s.path(digest_of(one)).write_bytes(b"ONE" * 100)
    s.path(digest_of(two)).unlink()
    _, problems = st.verify(s)
    assert [p.digest for p in problems] == [digest_of(one), digest_of(two)]
    assert "the store is corrupt" in problems[0].what
    assert "no blob" in problems[1].what


def test_copy_between_layouts_keeps_every_byte(tmp_path: Path) -> None:
    a = st.DirStore.open_layout(tmp_path / "a", create=True)
    layer = os.urandom(10_000)
    platform = a.put_manifest(manifest_of({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": blob_desc(a, b"{}"),
        "layers": [blob_desc(a, layer, "application/vnd.oci.image.layer.v1.tar+gzip")]}))
    index = a.put_manifest(manifest_of({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{**platform.to_json(),
                       "platform": {"architecture": "amd64", "os": "linux"}}]}))
    a.tag(f"base-{uuid.uuid4().hex}", index)
    b = st.DirStore.open_layout(tmp_path / "b", create=True)
    stats = st.copy_store(a, b)
    assert (stats.blobs, stats.manifests) == (2, 2)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert st.copy_store(a, b).blobs == 0


def test_cli_store_ls_and_verify(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from relock.cli import cli

    s = st.DirStore.open_layout(tmp_path / "s", create=True)
    deb = b"deb bytes"
    s.put(digest_of(deb), deb)
    lock = b"version = 1\n"
    desc = st.put_lock(s, lock, [st.StoredFile("deb", "hello", "1", "hello_1_all.deb",
                                               digest_of(deb), len(deb))])
    runner = CliRunner()
    r = runner.invoke(cli, ["store", "ls", str(tmp_path / "s")], catch_exceptions=False)
    assert r.exit_code == 0
    size = len(s.path(desc.digest).read_bytes()) + len(lock) + len(deb)
    assert r.stdout == f"{st.lock_tag(lock)}\t{desc.digest}\tlock\t2 blobs\t{size} bytes\n"
    r = runner.invoke(cli, ["store", "verify", str(tmp_path / "s")], catch_exceptions=False)
    assert (r.exit_code, r.stdout) == (0, "")
    assert "3 blobs and manifests checked, 0 problems" in r.stderr
    s.path(digest_of(deb)).write_bytes(b"DEB bytes")
    r = runner.invoke(cli, ["store", "verify", str(tmp_path / "s")], catch_exceptions=False)
    assert r.exit_code == 1 and r.stdout.startswith(f"{digest_of(deb)}\t")
    r = runner.invoke(cli, ["store", "ls", str(tmp_path)], catch_exceptions=False)
    assert r.exit_code == 2
    assert r.stderr.strip().endswith("not an OCI image layout (no oci-layout file); "
                                     "make it with `relock vendor`")


def test_a_copy_cut_off_before_its_manifest_fetches_only_what_is_missing(tmp_path: Path) -> None:
    a = st.DirStore.open_layout(tmp_path / "a", create=True)
    layers = [blob_desc(a, os.urandom(1000), "application/octet-stream") for _ in range(3)]
    m = a.put_manifest(manifest_of({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                    "config": blob_desc(a, b"{}"), "layers": layers}))
    b = st.DirStore.open_layout(tmp_path / "b", create=True)
    assert st.copy_image(a, b, m.digest).blobs == 4
    b.path(m.digest).unlink()  # as if cut off before the manifest, the commit point
    b.path(layers[1]["digest"]).unlink()
    stats = st.copy_image(a, b, m.digest)
    assert (stats.blobs, stats.manifests, stats.skipped) == (1, 1, 3)
    assert st.copy_image(a, b, m.digest).manifests == 0


def test_the_store_format_names_are_the_documented_ones() -> None:
    """The store is a format others read (docs/store.md): its media types and annotation
    keys are literals, never derived from relock's own module names."""
    from relock.store import store as stores

    assert stores.PLATFORMS == "dev.relock.platforms"
    assert stores.LOCK_ARTIFACT == "application/vnd.relock.lock.v1"
    assert stores.LOCK_CONFIG == "application/vnd.relock.lock.v1+toml"
    doc = (Path(__file__).resolve().parents[2] / "docs" / "store.md").read_text()
    for name in (stores.PLATFORMS, stores.LOCK_ARTIFACT, stores.LOCK_CONFIG):
        assert f"`{name}`" in doc, name
