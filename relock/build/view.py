"""The locked view: the APT archive and the Python index as a lock sees them.

During ``relock build`` (and ``relock serve``) this module serves on loopback

    /apt/Release, /apt/Packages[.gz]   a flat APT repository of the locked .debs
    /apt/pool/<sha256>/<file>.deb       each one checked against the lock
    /apt/<arch>/...                     the same, of one platform's part only (a
                                        lock of several platforms; ``arch`` is
                                        what ``dpkg --print-architecture`` says)
    /pypi/simple/<name>/                PEP 503 pages listing only locked files
    /pypi/files/<sha256>/<filename>     each file checked against the lock
    /relock/ca.pem                      the certificate of the view's authority
    /relock/download/<sha256>/<name>    a plain download of the lock (``[[download]]``),
                                        where render points an ``ADD`` of its URL

and, as every RUN's proxy, any other URL a tool carries (``uv.lock``'s, an https
``--index-url``, ``pip install https://.../x.whl``), http or https: an index page is
answered with the view's, a file named like a locked distribution file with that
file (checked by sha256), the URL of a locked plain download with its file (checked by
sha256 before a byte is sent), anything else with 404, remembered for the error message.
https is answered by ending the TLS in the view, with a certificate of an authority
made for this view alone (``relock.build.authority``).

The pinned Dockerfile (``relock.template.render``) points every RUN's apt, pip and uv
here, so the installs stay as written and can only see what the lock holds.
A package that is not in the lock is simply not here: the build fails, and
the view remembers what was asked for so the error can name it.

Where the bytes come from is not this module's business: ``.deb`` files are
handed over already fetched and checked (``AptFile``); Python files come
through a ``PipSource`` (upstream index, a store) and are checked here, as
they stream, against the lock's hashes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import html
import http.server
import os
import shutil
import socket
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Protocol

from packaging.utils import canonicalize_name

from relock.build.authority import Authority, AuthorityError
from relock.errors import HashMismatchError, RelockError
from relock.lock.lockfile import AptPackage, Download, Lock

if TYPE_CHECKING:
    from relock.upstream.index import PackageIndex


class ViewError(RelockError):
    """The locked view cannot be prepared or served."""


@dataclass(frozen=True)
class AptFile:
    """A locked .deb, fetched and checked, and its control paragraph."""

    package: AptPackage
    path: Path
    control: str  # the package's control file, as dpkg-deb -f prints it

    @property
    def url_path(self) -> str:
        version = self.package.version.split(":", 1)[-1]
        name = f"{self.package.name}_{version}_{self.package.arch}.deb"
        # Debian names and versions hold only [A-Za-z0-9.+~-]: no quoting needed.
        return f"pool/{self.package.sha256}/{name}"


@dataclass(frozen=True)
class PipFile:
    """One locked file of a Python distribution, where the upstream has it."""

    name: str  # normalised project name
    version: str
    filename: str
    sha256: str
    url: str = ""
    requires_python: str = ""


class PipSource(Protocol):
    """Where the view finds the files of locked Python distributions."""

    def files(self, name: str, versions: Mapping[str, frozenset[str]]) -> list[PipFile]:
        """The files of ``name`` whose sha256 is among the locked ones of each version."""
        ...

    def open(self, file: PipFile) -> tuple[BinaryIO, int | None]:
        """A stream of ``file``'s bytes and its length, if known."""
        ...


class IndexSource:
    """A Python package index (the one pip is configured with), as a ``PipSource``."""

    def __init__(self, index: PackageIndex) -> None:
        self.index = index

    def files(self, name: str, versions: Mapping[str, frozenset[str]]) -> list[PipFile]:
        from packaging.utils import parse_sdist_filename, parse_wheel_filename

        version_of = {h: v for v, hashes in versions.items() for h in hashes}
        out: dict[str, PipFile] = {}
        changed: list[str] = []
        for link in self.index.links(name):
            version = version_of.get(link.sha256)
            if version is not None and link.sha256 not in out:
                out[link.sha256] = PipFile(name, version, link.filename, link.sha256, link.url,
                                           link.requires_python)
                continue
            try:
                parsed = (parse_wheel_filename(link.filename)[1]
                          if link.filename.endswith(".whl")
                          else parse_sdist_filename(link.filename)[1])
            except ValueError:
                continue
            locked = [h for v, hs in versions.items() if str(parsed) == v for h in hs]
            if locked and link.sha256:
                changed.append(f"{link.filename} from the index does not match the lock "
                               f"(expected sha256 {sorted(locked)[0][:16]}..., "
                               f"got {link.sha256[:16]}...)")
        if not out and changed:
            raise HashMismatchError(changed[0])
        return sorted(out.values(), key=lambda f: f.filename)

    def open(self, file: PipFile) -> tuple[BinaryIO, int | None]:
        return self.index.open(file.url)


class DownloadSource(Protocol):
    """Where the bytes of the lock's plain downloads come from (upstream, a store)."""

    def open(self, download: Download) -> tuple[IO[bytes], int]:
        """The file, already checked against ``download.sha256``; RelockError if not."""
        ...


class UpstreamDownloads:
    """Each plain download from the blob cache (a freeze put the image's file there), else
    from its URL, checked whole before the view sends a byte of it."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        from relock.blobs import BlobCache

        self.cache = BlobCache(cache_dir)

    def open(self, download: Download) -> tuple[IO[bytes], int]:
        from relock.upstream.download import fetch_checked

        path = fetch_checked(download.url, download.sha256, self.cache)
        return path.open("rb"), path.stat().st_size


def url_key(url: str) -> str:
    """``url`` as the view matches it: scheme and host in lower case, no default port."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return urllib.parse.urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


@dataclass
class Misses:
    """What the build asked for that the lock does not have, for the error message."""

    pip: set[str] = field(default_factory=set)
    mismatches: list[str] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    untrusted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_pip(self, name: str) -> None:
        with self.lock:
            self.pip.add(name)

    def add_mismatch(self, text: str) -> None:
        with self.lock:
            self.mismatches.append(text)

    def add_upstream(self, text: str) -> None:
        with self.lock:
            self.upstream.append(text)

    def add_foreign(self, url: str) -> None:
        with self.lock:
            self.foreign.append(url)

    def add_untrusted(self, text: str) -> None:
        with self.lock:
            self.untrusted.append(text)


# -- the APT side ------------------------------------------------------------------

def deb_control(path: Path) -> str:
    """The control paragraph of the .deb at ``path``."""
    from debian.debfile import DebError, DebFile

    try:
        deb = DebFile(str(path))
        try:
            text = deb.control.get_content("control", encoding="utf-8")
        finally:
            deb.close()
    except (DebError, OSError, KeyError, ValueError) as e:
        raise ViewError(f"{path.name}: not a readable .deb: {e}") from None
    if not isinstance(text, str) or "Package:" not in text:
        raise ViewError(f"{path.name}: its control file has no Package field")
    return text.strip("\n") + "\n"


def packages_index(files: Iterable[AptFile]) -> str:
    """A Packages index of ``files``, as apt-ftparchive would write it."""
    stanzas = []
    for f in sorted(files, key=lambda f: (f.package.name, f.package.arch, f.package.version)):
        size = f.path.stat().st_size
        stanzas.append(f"{f.control}Filename: {f.url_path}\nSize: {size}\n"
                       f"SHA256: {f.package.sha256}\n")
    return "\n".join(stanzas)


def _apt_meta(files: Iterable[AptFile], lock: Lock | None = None) -> dict[str, bytes]:
    packages = packages_index(files).encode()
    meta = {"Packages": packages, "Packages.gz": gzip.compress(packages, mtime=0)}
    meta["Release"] = _release(meta, release_date(lock)).encode()
    return meta


def release_date(lock: Lock | None) -> str:
    """The ``Date`` of the view's Release file: the lock's snapshot, else now.

    A template that keeps APT's lists keeps this file in the pinned image, where a
    freeze (``relock diff``, ``verify``) reads the snapshot from it. Dated as the
    snapshot the lock's packages are of, the pinned image says the raw image's
    snapshot (the newest Release date of its lists) and its list files are the
    same in every build; dated at serving time, two images of the same packages
    differed in their snapshot.
    """
    from relock.inventory.apt import parse_snapshot

    try:
        when = parse_snapshot(lock.snapshot) if lock is not None and lock.snapshot else None
    except ValueError:
        when = None
    return formatdate(when.timestamp() if when else None, usegmt=True)


def _release(files: Mapping[str, bytes], date: str) -> str:
    lines = ["Origin: relock", "Label: relock locked view", "Suite: relock",
             f"Date: {date}", "SHA256:"]
    for name, data in sorted(files.items()):
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    return "\n".join(lines) + "\n"


# -- the server ------------------------------------------------------------------------

class LockedView:
    """The lock's packages, ready to be served."""

    def __init__(self, apt: Iterable[AptFile], pip: Lock | None, source: PipSource | None,
                 cache_dir: Path | None = None,
                 downloads: DownloadSource | None = None) -> None:
        self.apt = {f.url_path: f for f in apt}
        # The lock's plain downloads, by URL and by sha256, and where their bytes come from.
        self.downloads = {url_key(d.url): d for d in (pip.download if pip else ())}
        self.download_by_sha = {d.sha256: d for d in self.downloads.values()}
        self.download_source = downloads
        self.apt_meta = _apt_meta(self.apt.values(), pip)
        # A lock of several platforms: one flat repository per platform's
        # architecture too, so that each build sees its own part only (an
        # ``all`` package may differ in version between platforms).
        self.arch_paths: dict[str, frozenset[str]] = {}
        self.arch_meta: dict[str, dict[str, bytes]] = {}
        if pip is not None and pip.multi:
            from relock.lock.platform import debian_arch

            for platform in pip.all_platforms:
                keys = {(p.name, p.version, p.arch) for p in pip.for_platform(platform).apt}
                mine = [f for f in self.apt.values()
                        if (f.package.name, f.package.version, f.package.arch) in keys]
                arch = debian_arch(platform)
                self.arch_paths[arch] = frozenset(f.url_path for f in mine)
                self.arch_meta[arch] = _apt_meta(mine, pip.for_platform(platform))
        self.locked: dict[str, dict[str, frozenset[str]]] = {}
        for p in (pip.pip if pip is not None else ()):
            if p.kind == "context":  # built from the context in the build, not served
                continue
            name = str(canonicalize_name(p.name))
            hashes = frozenset(h.split(":", 1)[1] for h in p.hashes if h.startswith("sha256:"))
            versions = self.locked.setdefault(name, {})
            versions[p.version] = versions.get(p.version, frozenset()) | hashes
        self.source = source
        self.cache_dir = cache_dir
        self.misses = Misses()
        self.base_url = ""  # set while served: file links point back at the view
        self.authority: Authority | None = None  # made while served: the view's https
        self._pages: dict[str, list[PipFile]] = {}
        self._files: dict[str, PipFile] = {}
        self._lock = threading.Lock()

    # pip ------------------------------------------------------------------------
    def pip_files(self, name: str) -> list[PipFile] | None:
        """The locked files of project ``name``; None when the lock has no such project."""
        versions = self.locked.get(name)
        if versions is None:
            return None
        with self._lock:
            cached = self._pages.get(name)
        if cached is not None:
            return cached
        files = self.source.files(name, versions) if self.source is not None else []
        with self._lock:
            self._pages[name] = files
            for f in files:
                self._files[f.sha256] = f
        return files

    def cached_path(self, sha256: str) -> Path | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / "sha256" / sha256
        return path if path.is_file() else None

    @contextlib.contextmanager
    def serve(self, port: int = 0, host: str = "127.0.0.1") -> Iterator[ViewServer]:
        """Serve on ``host:port`` (0: any free port) for the length of the block."""
        try:
            server = ViewServer((host, port), self)
        except OSError as e:
            raise ViewError(f"cannot serve the locked view on {host}:{port}: "
                            f"{e.strerror or e}") from None
        self.base_url = server.url
        self.authority = Authority()
        thread = threading.Thread(target=server.serve_forever, name="relock-view", daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
            self.authority.close()
            self.authority = None


class ViewServer(http.server.ThreadingHTTPServer):
    """A threaded HTTP server of one ``LockedView``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], view: LockedView) -> None:
        self.view = view
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` can be bound on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ViewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # the build log says what matters; misses are kept on the view

    def do_HEAD(self) -> None:
        self.do_GET()

    # The origin of a request that came through a CONNECT tunnel ("https://host");
    # empty for the requests the view gets directly or as an http proxy.
    origin = ""

    def do_GET(self) -> None:
        # Every RUN has the view as its proxy, so requests may name any index or file
        # (`pip install --index-url http://other/simple ...`, uv.lock's URLs): every
        # index is answered with the locked view's pages, every file from the lock.
        url = urllib.parse.urlsplit(self.path)
        full = f"{self.origin}{self.path}" if self.origin else self.path
        own = not self.origin and (not url.netloc or self._is_view(url.netloc))
        view = self.server.view
        parts = [p for p in urllib.parse.unquote(url.path).split("/") if p and p != "."]
        try:
            download = view.downloads.get(url_key(full)) if not own else None
            if download is not None:
                self._download(download)
            elif own and len(parts) == 4 and parts[:2] == ["relock", "download"]:
                found = view.download_by_sha.get(parts[2])
                if found is None:
                    self._send(404, b"not in the lock\n")
                else:
                    self._download(found)
            elif parts[:1] == ["apt"]:
                self._apt(parts[1:])
            elif len(parts) >= 3 and parts[-3] == "files" and "pypi" in parts[:-3]:
                self._pip_file(parts[-2], parts[-1])
            elif "simple" in parts:
                self._simple(parts[parts.index("simple") + 1:])
            elif own and parts == ["relock", "ca.pem"] and self.server.view.authority:
                self._send(200, self.server.view.authority.cert_pem, "application/x-pem-file")
            elif parts and dist_name(parts[-1]) is not None:
                self._by_filename(parts[-1], full)
            else:
                if not own:
                    self.server.view.misses.add_foreign(full)
                self._send(404, f"{full} is not in the lock\n".encode())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _is_view(self, netloc: str) -> bool:
        return f"http://{netloc}" == self.server.url

    def do_CONNECT(self) -> None:
        # An https URL a tool carries: the view ends the TLS with its own authority's
        # certificate for that host and answers from the lock; no byte goes upstream.
        view = self.server.view
        host, _, port = self.path.rpartition(":")
        if view.authority is None or not host or not port.isdigit():
            view.misses.add_foreign(f"https://{self.path}")
            self._send(403, b"relock: only the lock's packages are served during a pinned "
                            b"build\n")
            return
        try:
            context = view.authority.context_for(host)
        except AuthorityError as e:
            view.misses.add_foreign(f"https://{self.path}/")
            self._send(502, f"{e}\n".encode())
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        origin = "https://" + (host if port == "443" else self.path)
        try:
            tls = context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            view.misses.add_untrusted(f"{origin}/ ({reason})")
            return
        try:
            _TunnelHandler(tls, self.client_address, self.server, origin)
        except ssl.SSLError as e:  # TLS 1.3: the client's alert comes after the handshake
            view.misses.add_untrusted(f"{origin}/ ({e.reason or e})")
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def _locked_files(self, name: str) -> tuple[bool, list[PipFile] | None]:
        """``view.pip_files(name)``; (True, None) when it failed and a 502 was sent."""
        try:
            return False, self.server.view.pip_files(name)
        except RelockError as e:
            self._failed(e)
        return True, None

    def _failed(self, e: RelockError) -> None:
        """A 502 for files the view could not get: other bytes than locked, or upstream
        (or the store) not answering; remembered for the error message."""
        if isinstance(e, HashMismatchError):
            self.server.view.misses.add_mismatch(str(e))
        else:
            self.server.view.misses.add_upstream(str(e))
        self._send(502, f"{e}\n".encode())

    def _by_filename(self, filename: str, full: str) -> None:
        """A distribution file asked for by a URL the lock does not know (uv.lock's, a
        ``pip install https://...``): the locked file of that name, if there is one."""
        view = self.server.view
        name = dist_name(filename)
        assert name is not None
        answered, files = self._locked_files(name)
        if answered:
            return
        found = next((f for f in files or () if f.filename == filename), None)
        if found is None:
            view.misses.add_foreign(full)
            self._send(404, f"{full} is not in the lock\n".encode())
            return
        self._pip_file(found.sha256, found.filename)

    def _download(self, download: Download) -> None:
        """A plain download of the lock: its file, checked before it is sent."""
        source = self.server.view.download_source
        if source is None:
            self._failed(RelockError(f"{download.url}: no source of the lock's plain "
                                     "downloads"))
            return
        try:
            stream, size = source.open(download)
        except RelockError as e:
            self._failed(e)
            return
        with stream:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command != "HEAD":
                shutil.copyfileobj(stream, self.wfile, 1 << 16)

    # -- APT ----------------------------------------------------------------
    def _apt(self, parts: list[str]) -> None:
        view = self.server.view
        meta, paths = view.apt_meta, None
        if parts and parts[0] in view.arch_meta:
            meta, paths, parts = view.arch_meta[parts[0]], view.arch_paths[parts[0]], parts[1:]
        name = "/".join(parts)
        if name in meta:
            self._send(200, meta[name])
            return
        found = view.apt.get(name) if paths is None or name in paths else None
        if found is None:
            self._send(404, b"not in the lock\n")
            return
        self._send_file(found.path, "application/vnd.debian.binary-package")

    # -- pip ------------------------------------------------------------------
    def _simple(self, parts: list[str]) -> None:
        view = self.server.view
        if not parts:
            links = "".join(f'<a href="{html.escape(n)}/">{html.escape(n)}</a>\n'
                            for n in sorted(view.locked))
            self._send(200, _page("relock locked view", links), "text/html")
            return
        name = str(canonicalize_name(parts[0]))
        if parts[0] != name:
            self._redirect(f"/pypi/simple/{name}/")
            return
        answered, files = self._locked_files(name)
        if answered:
            return
        if files is None:
            view.misses.add_pip(name)
            self._send(404, f"{name} is not in the lock\n".encode())
            return
        rows = []
        for f in files:
            href = (f"{view.base_url}/pypi/files/{f.sha256}/{urllib.parse.quote(f.filename)}"
                    f"#sha256={f.sha256}")
            extra = (f' data-requires-python="{html.escape(f.requires_python)}"'
                     if f.requires_python else "")
            rows.append(f'<a href="{html.escape(href)}"{extra}>{html.escape(f.filename)}</a>\n')
        self._send(200, _page(f"Links for {name}", "".join(rows)), "text/html")

    def _pip_file(self, sha256: str, filename: str) -> None:
        view = self.server.view
        with view._lock:
            found = view._files.get(sha256)
        if found is None or found.filename != filename:
            self._send(404, b"not in the lock\n")
            return
        cached = view.cached_path(sha256)
        if cached is not None:
            self._send_file(cached, "application/octet-stream")
            return
        assert view.source is not None
        try:
            stream, length = view.source.open(found)
        except RelockError as e:  # a store's file is checked before it is relayed
            self._failed(e)
            return
        self._relay(found, stream, length)

    def _relay(self, file: PipFile, stream: BinaryIO, length: int | None) -> None:
        """Stream ``file`` to the client, checking it; a mismatch cuts the connection."""
        view = self.server.view
        if self.command == "HEAD":  # uv asks so before a range request: no body
            with stream:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
            return
        digest = hashlib.sha256()
        tmp = None
        if view.cache_dir is not None:
            folder = view.cache_dir / "sha256"
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".part-", dir=folder)
            tmp = (os.fdopen(fd, "wb"), Path(name))
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if length is not None:
                self.send_header("Content-Length", str(length))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            try:
                with stream:
                    while chunk := stream.read(1 << 16):
                        digest.update(chunk)
                        if tmp is not None:
                            tmp[0].write(chunk)
                        self._write_held(chunk)
            except RelockError as e:  # cut off upstream (a deadline): the client gets less
                view.misses.add_upstream(str(e))
                self.close_connection = True
                return
            got = digest.hexdigest()
            if got != file.sha256:
                view.misses.add_mismatch(
                    f"{file.filename} from the index does not match the lock "
                    f"(expected sha256 {file.sha256[:16]}..., got {got[:16]}...)")
                self.close_connection = True
                return
            self._flush_held()
            if tmp is not None:
                tmp[0].close()
                os.replace(tmp[1], tmp[1].parent / file.sha256)
                tmp = None
        finally:
            if tmp is not None:
                tmp[0].close()
                tmp[1].unlink(missing_ok=True)

    # The last chunk is held back until the whole file is checked, so a client
    # never receives a complete file that does not match the lock.
    _held: bytes = b""

    def _write_held(self, chunk: bytes) -> None:
        if self._held:
            self.wfile.write(self._held)
        self._held = chunk

    def _flush_held(self) -> None:
        if self._held:
            self.wfile.write(self._held)
            self._held = b""

    # -- plumbing -------------------------------------------------------------
    def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_file(self, path: Path, ctype: str) -> None:
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command != "HEAD":
            with path.open("rb") as f:
                shutil.copyfileobj(f, self.wfile, 1 << 16)

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _TunnelHandler(_Handler):
    """The requests inside one CONNECT tunnel, the TLS ended by the view."""

    def __init__(self, request: ssl.SSLSocket, client_address: tuple[str, int],
                 server: ViewServer, origin: str) -> None:
        self.origin = origin
        super().__init__(request, client_address, server)


def dist_name(filename: str) -> str | None:
    """The normalised project name of a wheel or sdist file name, else None."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _page(title: str, body: str) -> bytes:
    return (f"<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" "
            f"content=\"1.0\"><title>{html.escape(title)}</title></head><body>\n"
            f"{body}</body></html>\n").encode()
