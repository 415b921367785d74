"""``relock vendor`` against real servers on loopback, and its faults.

The APT side is a local archive laid out like the snapshot service
(tests/support/aptarchive.py, with fault injection); the Python side is a
``file://`` simple index pip is pointed at through its own environment
variables. No engine is needed: DOCKER_HOST names a socket nobody serves, so
every locked .deb is vendored (and relock says why).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from relock.cli import cli
from relock.lock.lockfile import AptPackage, AptSource, Distro, Input, Lock, PipPackage, PythonEnv
from relock.lock.lockfile import write as write_lock
from relock.store.store import DirStore, lock_tag, read_lock
from tests.support.aptarchive import AptArchive, Deb, closed_url, serve
from tests.support.tools import missing

pytestmark = pytest.mark.skipif(missing("apt-ftparchive"),
                                reason="needs apt-ftparchive (scripts/testbed installs it)")

T1 = "20240101T000000Z"
HELLO = Deb("relock-hello", "1.0")
BIG = Deb("relock-big", "1.0")
WHEELS = {  # file name -> bytes; only the first installs in the lock's image
    "six-1.17.0-py2.py3-none-any.whl": b"six, pure\n",
    "six-1.17.0-cp313-cp313-win_amd64.whl": b"six, for windows\n",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_big_deb(out: Path) -> None:
    """``relock-big``: 3 MB that do not compress, to fill a small disk."""
    tree = out.parent / ".big"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr" / "share" / "relock-big").mkdir(parents=True)
    (tree / "usr" / "share" / "relock-big" / "noise").write_bytes(os.urandom(3 << 20))
    (tree / "DEBIAN" / "control").write_text(
        "Package: relock-big\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: relock tests <relock@localhost>\nDescription: noise\n noise\n")
    subprocess.run(["dpkg-deb", "-Znone", "--root-owner-group", "--build", str(tree), str(out)],
                   check=True, capture_output=True)
    shutil.rmtree(tree)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptArchive]:
    root = tmp_path_factory.mktemp("apt")
    with serve(root) as served:
        build_big_deb(served.debs / BIG.filename)
        served.publish(T1, [HELLO, BIG])
        yield served


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simple index in a folder, with both files of six 1.17.0."""
    root = tmp_path_factory.mktemp("index")
    (root / "files").mkdir()
    links = []
    for name, data in WHEELS.items():
        (root / "files" / name).write_bytes(data)
        links.append(f'<a href="../../files/{name}#sha256={sha(data)}">{name}</a>')
    (root / "simple" / "six").mkdir(parents=True)
    (root / "simple" / "six" / "index.html").write_text("\n".join(links))
    return root / "simple"


def entries(archive: AptArchive) -> dict[str, tuple[str, str]]:
    """name -> (Filename, SHA256) from the live Packages index."""
    text = next(archive.live_dir.rglob("Packages")).read_text()
    out = {}
    for stanza in text.strip().split("\n\n"):
        fields = dict(re.findall(r"(?m)^([A-Za-z0-9-]+): (.*)$", stanza))
        out[fields["Package"]] = (fields["Filename"], fields["SHA256"])
    return out


def make_lock(path: Path, archive: AptArchive, debs: list[str], pip: bool = False,
              unhashed: tuple[str, ...] = ()) -> Path:
    found = entries(archive)
    apt = [AptPackage(n, "1.0", "all", sha256=found[n][1], filename=found[n][0]) for n in debs]
    apt += [AptPackage(n, "1.0", "all") for n in unhashed]
    pips = ((PipPackage("six", "1.17.0", "/opt/venv",
                        hashes=tuple(f"sha256:{sha(d)}" for d in WHEELS.values())),)
            if pip else ())
    lock = Lock(input=Input("Dockerfile.in", "0" * 64), distro=Distro("debian", "13"),
                snapshot=T1, apt=tuple(apt), pip=pips,
                python=(PythonEnv("/opt/venv", "3.13", "/opt/venv/lib/python3.13", True),),
                apt_sources=(AptSource("/etc/apt/sources.list.d/t.list", ("deb",),
                                       (archive.live_url,), ("stable",), ("main",),
                                       {"trusted": "yes"}),))
    write_lock(lock, path)
    return path


def vendor(lock: Path, store: Path, *args: str, index: Path | None = None) -> Result:
    env = {"DOCKER_HOST": "unix:///nonexistent/relock-test.sock",
           "PIP_CONFIG_FILE": os.devnull,
           "PIP_INDEX_URL": f"file://{index}" if index else "file:///nonexistent",
           "XDG_CACHE_HOME": str(store.parent / "cache")}
    return CliRunner().invoke(cli, ["vendor", "--lock", str(lock), "--store", str(store),
                                    *args], env=env, catch_exceptions=False)


def assert_sound(store: Path) -> None:
    """Every blob has the bytes its name says; nothing half-written anywhere."""
    for blob in (store / "blobs" / "sha256").iterdir():
        assert sha(blob.read_bytes()) == blob.name, blob
    tmp = store / ".tmp"
    assert not tmp.exists() or not any(tmp.iterdir())


def test_vendor_fills_a_store_and_a_rerun_fetches_nothing(archive: AptArchive, index: Path,
                                                        tmp_path: Path) -> None:
    lock = make_lock(tmp_path / "x.lock", archive, ["relock-hello"], pip=True)
    store = tmp_path / "store"
    result = vendor(lock, store, "--apt-snapshot-url", archive.snapshot_url, index=index)
    assert result.exit_code == 0, result.output
    assert "every locked .deb is vendored" in result.stderr  # no engine: says so
    assert "2 files" in result.stderr and "1 from snapshot" in result.stderr
    assert "1 from index" in result.stderr
    tag = result.stdout.strip()
    assert tag == lock_tag(lock.read_bytes())
    _, files = read_lock(DirStore(store), tag)
    # The deb and only the wheel that installs on linux/amd64 with CPython 3.13.
    assert sorted(f.filename for f in files) == ["relock-hello_1.0_all.deb",
                                                 "six-1.17.0-py2.py3-none-any.whl"]
    assert_sound(store)

    asked = len(archive.requests)
    again = vendor(lock, store, "--apt-snapshot-url", archive.snapshot_url, index=index)
    assert again.exit_code == 0, again.output
    assert "2 from store" in again.stderr and "0.0 MB fetched" in again.stderr
    assert archive.requests[asked:] == []


def test_429_with_retry_after_is_waited_for(archive: AptArchive, tmp_path: Path) -> None:
    lock = make_lock(tmp_path / "x.lock", archive, ["relock-hello"])
    fault = archive.fault("/archive/relocktest/", status=429, times=2, retry_after="1")
    result = vendor(lock, tmp_path / "store", "--apt-snapshot-url", archive.snapshot_url)
    assert result.exit_code == 0, result.output
    assert fault.hits == 2
    assert "1 from snapshot" in result.stderr
    assert ("2 requests answered 429/503 and were retried (waited 2.0 s, as Retry-After "
            "asked)") in result.stderr


def test_first_source_down_falls_back_and_says_which(archive: AptArchive,
                                                     tmp_path: Path) -> None:
    lock = make_lock(tmp_path / "x.lock", archive, ["relock-hello"])
    down = closed_url()
    result = vendor(lock, tmp_path / "store", "--apt-snapshot-url", down)
    assert result.exit_code == 0, result.output
    assert "1 from live" in result.stderr
    assert f"{down} was down (connection refused); the next source served instead" \
        in result.stderr


def test_an_entry_without_hash_is_named_or_skipped_when_allowed(archive: AptArchive,
                                                                tmp_path: Path) -> None:
    lock = make_lock(tmp_path / "x.lock", archive, ["relock-hello"],
                     unhashed=("relock-local",))
    result = vendor(lock, tmp_path / "store", "--apt-live")
    assert result.exit_code == 2, result.output
    assert "relock-local 1.0 (all)" in result.stderr and "--allow-missing" in result.stderr
    allowed = vendor(lock, tmp_path / "store", "--apt-live", "--allow-missing")
    assert allowed.exit_code == 0, allowed.output
    assert re.search(r"warning: .*relock-local 1\.0 \(all\).*not vendored", allowed.stderr)
    assert "1 from live" in allowed.stderr


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                   check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False, capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_mid_vendor_keeps_the_old_store(archive: AptArchive, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        store = disk / "store"
        small = make_lock(tmp_path / "small.lock", archive, ["relock-hello"])
        assert vendor(small, store, "--apt-live").exit_code == 0
        before = {str(p.relative_to(store)): p.read_bytes()
                  for p in store.rglob("*") if p.is_file()}

        big = make_lock(tmp_path / "big.lock", archive, ["relock-hello", "relock-big"])
        result = vendor(big, store, "--apt-live")
        assert result.exit_code == 2, result.output
        assert "disk full" in result.stderr and "nothing partial was kept" in result.stderr
        after = {str(p.relative_to(store)): p.read_bytes()
                 for p in store.rglob("*") if p.is_file()}
        assert after == before  # no partial blob, index.json as it was
        assert_sound(store)


class _Slow(http.server.BaseHTTPRequestHandler):
    """Serves ``data`` (any path) at about 1 MB/s, so a test can interrupt a download."""

    data = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.data)))
        self.end_headers()
        with contextlib.suppress(OSError):
            for start in range(0, len(self.data), 1 << 16):
                self.wfile.write(self.data[start:start + (1 << 16)])
                time.sleep(0.06)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_sigterm_mid_download_leaves_no_partial_blob(tmp_path: Path) -> None:
    deb = tmp_path / "relock-big_1.0_all.deb"
    build_big_deb(deb)
    handler = type("Slow", (_Slow,), {"data": deb.read_bytes()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/debian"
        lock = Lock(input=Input("Dockerfile.in", "0" * 64), distro=Distro("debian", "13"),
                    apt=(AptPackage("relock-big", "1.0", "all", sha256=sha(deb.read_bytes()),
                                    filename="pool/main/r/relock-big/" + deb.name),),
                    apt_sources=(AptSource("/etc/apt/sources.list", ("deb",), (url,),
                                           ("stable",), ("main",)),))
        write_lock(lock, tmp_path / "x.lock")
        store = tmp_path / "store"
        env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/relock-test.sock",
               "PIP_CONFIG_FILE": os.devnull, "XDG_CACHE_HOME": str(tmp_path / "cache")}
        proc = subprocess.Popen([sys.executable, "-m", "relock", "vendor", "--lock",
                                 str(tmp_path / "x.lock"), "--store", str(store),
                                 "--apt-live"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

        def partial() -> bool:
            tmp = store / ".tmp"
            return tmp.is_dir() and any(p.stat().st_size for p in tmp.iterdir())

        deadline = time.monotonic() + 30
        while not partial():  # the download is under way
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode != 0, err
        assert time.monotonic() - started < 2.5, "the download was not cut off"
        assert "Traceback" not in err
        assert not list((store / ".tmp").iterdir())
        assert not (store / "blobs" / "sha256" / sha(deb.read_bytes())).exists()
        assert json.loads((store / "index.json").read_text())["manifests"] == []
        assert_sound(store)
    finally:
        server.shutdown()
        server.server_close()
