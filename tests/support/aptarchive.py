"""A local APT archive laid out like Debian's snapshot service, served on loopback.

Tests need an archive that moves on while a lock stays put, and
snapshot.debian.org is not reachable from the test bed. This module makes
tiny ``.deb`` packages with ``dpkg-deb``, indexes them with ``apt-ftparchive``
and serves two views of one archive from a threaded HTTP server on
127.0.0.1::

    /live/<name>/dists/<suite>/...             the archive as it is now
    /<name>/dists/<suite>/...                  the same, where a mirror keeps it
    /archive/<name>/<YYYYMMDDTHHMMSSZ>/...     a dated snapshot

Like the snapshot service, ``/archive/<name>/<ts>/`` answers from the newest
snapshot whose id is at or before ``ts``. Release files are not signed: the
sources that use them say ``[trusted=yes]``.

With ``gnupghome`` (see ``make_key``), each Release is also signed, as
``InRelease`` and ``Release.gpg``.

Faults for tests of clients: ``archive.faults`` answers requests under a path
with an error status (429 with ``Retry-After``, 503, ...) a number of times
before the real answer, and ``closed_url()`` is a loopback URL nothing
listens on (connection refused). ``archive.requests`` logs every path asked.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import re
import shutil
import socket
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

SNAPSHOT_ID = re.compile(r"\d{8}T\d{6}Z")


@dataclass(frozen=True)
class Deb:
    """A tiny package: ``/usr/share/<name>/VERSION`` holds its version."""

    name: str
    version: str
    depends: str = ""  # a Depends: field, as dpkg writes it
    arch: str = "all"

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version}_{self.arch}.deb"


@dataclass
class Fault:
    """Answer ``times`` requests whose path starts with ``prefix`` with ``status``."""

    prefix: str
    status: int = 429
    times: int = 1
    retry_after: str | None = None
    hits: int = 0
    answered: list[str] = field(default_factory=list)


def closed_url() -> str:
    """An http URL on loopback where nothing listens: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_key(home: Path, name: str = "relock test archive") -> bytes:
    """A new signing key in the GnuPG home ``home``; returns its public key (binary)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--pinentry-mode", "loopback",
           "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", name, "ed25519", "sign", "never"], check=True,
                   capture_output=True)
    key = subprocess.run([*gpg, "--export", name], check=True, capture_output=True).stdout
    stop_agent(home)
    return key


def stop_agent(home: Path) -> None:
    """Stop the gpg-agent that gpg started for ``home`` (it would outlive the tests)."""
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   capture_output=True, check=False)


def build_deb(deb: Deb, out_dir: Path) -> Path:
    """Build ``deb`` with dpkg-deb into ``out_dir`` and return its path."""
    tree = out_dir / f".{deb.name}-{deb.version}"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "DEBIAN").mkdir(parents=True)
    share = tree / "usr" / "share" / deb.name
    share.mkdir(parents=True)
    (share / "VERSION").write_text(f"{deb.version}\n")
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {deb.name}\n"
        f"Version: {deb.version}\n"
        f"Architecture: {deb.arch}\n"
        "Maintainer: relock tests <relock@localhost>\n"
        "Section: misc\n"
        "Priority: optional\n"
        + (f"Depends: {deb.depends}\n" if deb.depends else "")
        + f"Description: relock test package {deb.version}\n"
        " Made by tests/support/aptarchive.py; holds only its version.\n"
    )
    out = out_dir / deb.filename
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)],
                   check=True, capture_output=True)
    shutil.rmtree(tree)
    return out


def snapshot_id(when: datetime) -> str:
    """``YYYYMMDDTHHMMSSZ`` of a UTC time, as the snapshot service spells it."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _parse_id(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


class AptArchive:
    """One archive (``name``, one suite, one component) with dated snapshots."""

    def __init__(self, root: Path, name: str = "relocktest", suite: str = "stable",
                 component: str = "main", gnupghome: Path | None = None) -> None:
        self.root = root
        self.gnupghome = gnupghome
        self.name = name
        self.suite = suite
        self.component = component
        self.arch = subprocess.run(["dpkg", "--print-architecture"], check=True,
                                   capture_output=True, text=True).stdout.strip()
        self.debs = root / "debs"
        self.debs.mkdir(parents=True, exist_ok=True)
        self.server: ArchiveServer | None = None
        self.faults: list[Fault] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def fault(self, prefix: str, status: int = 429, times: int = 1,
              retry_after: str | None = None) -> Fault:
        """Make the next ``times`` requests under ``prefix`` answer ``status``."""
        fault = Fault(prefix, status, times, retry_after)
        self.faults.append(fault)
        return fault

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            self.requests.append(path)
            for fault in self.faults:
                if path.startswith(fault.prefix) and fault.hits < fault.times:
                    fault.hits += 1
                    fault.answered.append(path)
                    return fault
        return None

    # -- layout -----------------------------------------------------------
    @property
    def live_dir(self) -> Path:
        return self.root / "live" / self.name

    def snapshot_dir(self, snapshot: str) -> Path:
        return self.root / "archive" / self.name / snapshot

    def snapshots(self) -> list[str]:
        """Ids of the published snapshots, oldest first."""
        folder = self.root / "archive" / self.name
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if SNAPSHOT_ID.fullmatch(p.name))

    # -- publishing ---------------------------------------------------------
    def publish(self, snapshot: str, debs: list[Deb], live: bool = True) -> None:
        """Publish ``debs`` as the archive's state at ``snapshot`` (and as live)."""
        built = [self._deb_file(d) for d in debs]
        self._write_tree(self.snapshot_dir(snapshot), built, _parse_id(snapshot))
        if live:
            self._write_tree(self.live_dir, built, _parse_id(snapshot))

    def withdraw(self, snapshot: str, deb: Deb) -> None:
        """Take ``deb`` out of one published snapshot, as if it had never been there."""
        folder = self.snapshot_dir(snapshot)
        pool = folder / "pool" / self.component
        remaining = [p for p in sorted(pool.rglob("*.deb")) if p.name != deb.filename]
        if len(remaining) == len(list(pool.rglob("*.deb"))):
            raise ValueError(f"{deb.filename} is not in the snapshot {snapshot}")
        staged = self.root / ".withdraw"
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        kept = [Path(shutil.copy2(p, staged / p.name)) for p in remaining]
        self._write_tree(folder, kept, _parse_id(snapshot))
        shutil.rmtree(staged)

    def _deb_file(self, deb: Deb) -> Path:
        path = self.debs / deb.filename
        return path if path.exists() else build_deb(deb, self.debs)

    def _write_tree(self, top: Path, debs: list[Path], date: datetime) -> None:
        """A complete archive tree (pool, Packages, Release) at ``top``, replaced whole."""
        staging = top.with_name(f".{top.name}.new")
        shutil.rmtree(staging, ignore_errors=True)
        for deb in debs:
            name = deb.name.split("_", 1)[0]
            pool = staging / "pool" / self.component / name[0] / name
            pool.mkdir(parents=True, exist_ok=True)
            shutil.copy2(deb, pool / deb.name)
        (staging / "pool").mkdir(parents=True, exist_ok=True)  # an empty suite too
        dist = staging / "dists" / self.suite
        binary = dist / self.component / f"binary-{self.arch}"
        binary.mkdir(parents=True)
        packages = subprocess.run(["apt-ftparchive", "packages", "pool"], cwd=staging,
                                  check=True, capture_output=True).stdout
        (binary / "Packages").write_bytes(packages)
        (binary / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
        conf = {
            "Origin": "relock-tests", "Label": self.name, "Suite": self.suite,
            "Codename": self.suite, "Architectures": self.arch,
            "Components": self.component,
        }
        args = [f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in conf.items()]
        release = subprocess.run(["apt-ftparchive", *args, "release", "."], cwd=dist,
                                 check=True, capture_output=True, text=True).stdout
        # apt-ftparchive stamps the time of the run; the archive's own history
        # is what a snapshot's Release says (relock reads it as the lock's time).
        release = re.sub(r"^Date: .*$", f"Date: {format_datetime(date, usegmt=True)}",
                         release, count=1, flags=re.MULTILINE)
        (dist / "Release").write_text(release)
        if self.gnupghome is not None:
            gpg = ["gpg", "--homedir", str(self.gnupghome), "--batch", "--yes", "--quiet"]
            subprocess.run([*gpg, "--clearsign", "-o", "InRelease", "Release"], cwd=dist,
                           check=True, capture_output=True)
            subprocess.run([*gpg, "--armor", "--detach-sign", "-o", "Release.gpg", "Release"],
                           cwd=dist, check=True, capture_output=True)
        old = top.with_name(f".{top.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        top.parent.mkdir(parents=True, exist_ok=True)
        if top.exists():
            top.rename(old)
        staging.rename(top)
        shutil.rmtree(old, ignore_errors=True)

    # -- serving ------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.server is not None, "the archive is not served"
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def live_url(self) -> str:
        """The live archive's URI, as a sources.list line names it."""
        return f"{self.url}/live/{self.name}"

    @property
    def snapshot_url(self) -> str:
        """What ``relock build --apt-snapshot-url`` takes for this server."""
        return f"{self.url}/archive"

    @property
    def mirror_url(self) -> str:
        """The live archive at ``/<name>``, the path layout of Debian's mirrors."""
        return f"{self.url}/{self.name}"

    def source_line(self, uri: str | None = None) -> str:
        """A one-line APT source for the live archive (unsigned, so trusted)."""
        return f"deb [trusted=yes] {uri or self.live_url} {self.suite} {self.component}"


class _Handler(http.server.SimpleHTTPRequestHandler):
    archive: AptArchive

    def do_GET(self) -> None:
        fault = self.archive._take_fault(urllib.parse.urlsplit(self.path).path)
        if fault is None:
            super().do_GET()
            return
        self.send_response(fault.status)
        if fault.retry_after is not None:
            self.send_header("Retry-After", fault.retry_after)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def translate_path(self, path: str) -> str:
        parts = urllib.parse.unquote(urllib.parse.urlsplit(path).path).split("/")
        parts = [p for p in parts if p not in ("", ".", "..")]
        # /archive/<name>/<ts>/...: the newest snapshot at or before <ts>.
        if len(parts) >= 3 and parts[0] == "archive" and SNAPSHOT_ID.fullmatch(parts[2]):
            at = [s for s in self.archive.snapshots() if s <= parts[2]]
            if not at or parts[1] != self.archive.name:
                return str(self.archive.root / ".missing")
            parts[2] = at[-1]
        elif parts and parts[0] == self.archive.name:
            parts = ["live", *parts]
        return str(self.archive.root.joinpath(*parts))

    def list_directory(self, path: Any) -> None:
        self.send_error(404)
        return None

    def log_message(self, format: str, *args: Any) -> None:
        pass  # apt's requests would drown pytest's output


class ArchiveServer:
    """A threaded HTTP server for one archive on 127.0.0.1, on a free port."""

    def __init__(self, archive: AptArchive) -> None:
        handler = type("Handler", (_Handler,), {"archive": archive})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                       name=f"apt-archive-{self.port}")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@contextlib.contextmanager
def serve(root: Path, name: str = "relocktest", gnupghome: Path | None = None,
          suite: str = "stable") -> Iterator[AptArchive]:
    """An empty archive under ``root``, served until the block ends.

    Use it as a context manager in a fixture of the scope the archive should
    live for (tests/e2e/test_build_faults.py keeps one per module). A
    security archive is one more, with ``suite="stable-security"``.
    """
    archive = AptArchive(root, name=name, suite=suite, gnupghome=gnupghome)
    server = ArchiveServer(archive)
    archive.server = server
    server.start()
    try:
        yield archive
    finally:
        server.stop()
        archive.server = None
        if gnupghome is not None:
            stop_agent(gnupghome)

