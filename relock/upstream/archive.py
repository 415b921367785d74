"""APT archives over HTTP: index entries of locked packages, and their ``.deb`` files.

The one seam between relock and Debian's archive (its mirrors, its snapshot
service, a team's own mirror). ``AptArchive`` names what relock asks of an
archive (freeze, rebuild, vendor, outdated and update are typed against it, so
a test can hand a fake); ``Archive`` answers it over HTTP. The questions:

* ``Archive.deb_entries``: where each (package, version, arch) lies in the
  archive and the sha256 of its ``.deb``, read from the sources' Packages
  indexes (at a snapshot when one is known and reachable, else live). The
  index is found through the suite's Release file, checked against the
  sha256 the Release gives, and only the wanted stanzas are parsed; the
  answers are cached on disk by the index's sha256.
* ``Archive.candidates``: every version of some packages the sources serve;
* ``Archive.fetch_deb``: the ``.deb`` itself, into a ``BlobCache``, from the
  cache, the snapshot, each source's live URI or a mirror, in that order; no
  byte enters the cache unless the whole file has the locked sha256.

Every request has a bounded time-out and relock's one retry policy (busy
answers are asked again a few times, waiting what ``Retry-After`` says,
capped: ``relock.upstream.http``); a host that refuses connections
or cannot be resolved is remembered as down for the rest of the run, so an
unreachable snapshot service costs one failed connection, not one per file.
Release signatures are not checked here: the hashes are what the archive
served over its own transport (apt checks signatures when it installs).
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from relock import bounds
from relock.blobs import BlobCache
from relock.errors import ArchiveError, DebNotFoundError, HashMismatchError
from relock.files import cache_home, write_cache
from relock.lock.lockfile import AptPackage, AptSource
from relock.upstream.debindex import COMPRESSIONS, DebEntry, Key, decompress, stanzas_of

if TYPE_CHECKING:
    import requests

    from relock.upstream.http import Answer, Unanswered

__all__ = ["AptArchive", "Archive", "DebEntry", "default_cache_dir"]


def default_cache_dir() -> Path:
    """Where index answers are cached (``$XDG_CACHE_HOME/relock/apt``)."""
    return cache_home() / "apt"


class AptArchive(Protocol):
    """What relock asks of the APT archives a lock's sources name (``Archive``; a fake)."""

    @property
    def warnings(self) -> list[str]:
        """Lines about sources that could not be read, in order; callers may add to it."""
        ...

    @property
    def cache_hits(self) -> int:
        """Answers given from the cache so far."""
        ...

    @property
    def requests_made(self) -> int:
        """Requests sent so far."""
        ...

    @property
    def retries(self) -> int:
        """Requests sent again after a busy answer, so far."""
        ...

    @property
    def waited(self) -> float:
        """Seconds slept before retries so far."""
        ...

    def deb_entries(self, sources: Sequence[AptSource], arch: str,
                    wanted: Collection[Key], snapshot: str = "",
                    snapshot_url: str | None = None,
                    keyrings: Mapping[str, bytes] | None = None) -> dict[Key, DebEntry]:
        """Filename, sha256 and size of each wanted (name, version, arch) the sources list."""
        ...

    def candidates(self, sources: Sequence[AptSource], arch: str, names: Collection[str],
                   keyrings: Mapping[str, bytes] | None = None, snapshot: str = "",
                   snapshot_url: str | None = None) -> list[tuple[str, Key, DebEntry]]:
        """Every version of ``names`` the sources serve: (suite, key, entry) triples."""
        ...

    def fetch_deb(self, pkg: AptPackage, sources: Sequence[AptSource], snapshot: str,
                  cache: BlobCache, progress: Callable[[int], None] | None = None,
                  snapshot_url: str | None = None) -> tuple[Path, str]:
        """The locked ``.deb`` of ``pkg`` in ``cache`` (checked), and which source served it."""
        ...

    def down_hosts(self) -> dict[str, str]:
        """Hosts found unreachable in this run (origin -> why)."""
        ...


class _SourceFailed(Exception):
    """One source could not answer one request (the caller tries the next)."""

    def __init__(self, message: str, host: str = "") -> None:
        super().__init__(message)
        self.host = host  # set when the whole host is unreachable


@dataclass(frozen=True)
class _Dist:
    """One suite of one source URI, as served live or at a snapshot."""

    label: str  # "snapshot" or "live"
    base: str  # the source's URI (or its snapshot URI), with a trailing slash
    suite: str
    components: tuple[str, ...]
    # The keys its Release must be signed with; None: not checked.
    keys: tuple[bytes, ...] | None = None

    @property
    def flat(self) -> bool:
        return self.suite.endswith("/")

    def url(self, path: str) -> str:
        top = self.suite if self.flat else f"dists/{self.suite}/"
        return urllib.parse.urljoin(self.base, top + path)


@dataclass
class _Release:
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    architectures: frozenset[str] = frozenset()
    components: tuple[str, ...] = ()  # its Components field
    by_hash: bool = False
    # "No-Support-for-Architecture-all: Packages": binary-<arch> lists the
    # arch-all packages too, and apt does not read binary-all.
    all_in_arch: bool = False


class Archive:
    """A client of the APT archives an image's sources name, over HTTP (an ``AptArchive``)."""

    def __init__(self, cache_dir: Path | None = None, snapshot_url: str | None = None,
                 timeout: tuple[float, float] = (2.0, 30.0),
                 session: requests.Session | None = None,
                 mirrors: Sequence[str] = (), workers: int = 4, tries: int | None = None,
                 max_wait: float | None = None) -> None:
        self.cache_dir = cache_dir
        self.snapshot_url = snapshot_url
        self.timeout = timeout
        self.mirrors = tuple(mirrors)
        self.workers = workers
        # Tries of a busy request and the longest wait; None: relock's retry
        # policy (relock.upstream.http).
        self.tries = tries
        self.max_wait = max_wait
        self.warnings: list[str] = []
        self.requests_made = 0
        self.retries = 0
        self.waited = 0.0  # seconds slept before retries (Retry-After or backoff)
        self.cache_hits = 0
        self._session = session
        self._local = threading.local()
        self._lock = threading.Lock()
        self._down: dict[str, str] = {}

    # -- index entries -----------------------------------------------------
    def deb_entries(self, sources: Sequence[AptSource], arch: str,
                    wanted: Collection[Key], snapshot: str = "",
                    snapshot_url: str | None = None,
                    keyrings: Mapping[str, bytes] | None = None) -> dict[Key, DebEntry]:
        """Filename, sha256 and size of each wanted (name, version, arch) the sources list.

        With ``snapshot``, the sources as they stood then are asked first (on
        ``snapshot_url``, else the Archive's); the live sources answer for
        what is still missing. Entries found nowhere are left out; a source
        that cannot be reached adds a line to ``self.warnings``.

        With ``keyrings`` (the image's keyring files by path, see
        ``apt.keyrings``), each suite's Release must carry a good signature by
        a key of the source's ``Signed-By`` (else of apt's trusted.gpg.d), as
        apt would demand; sources marked ``trusted=yes`` are not checked.

        An entry once found is remembered for the same sources: an archive
        never publishes other bytes under a version it has published, so a
        re-freeze needs no request, even after the live archive dropped it.
        """
        todo = set(wanted)
        known = self._known(sources)
        found = {k: known[k] for k in todo if k in known}
        todo -= found.keys()
        if found:
            with self._lock:
                self.cache_hits += 1
        if not todo:
            return found
        before = len(found)
        service = snapshot_url or self.snapshot_url
        phases = []
        if snapshot and service:
            phases.append(self._dists(sources, "snapshot", snapshot, service, keyrings))
        phases.append(self._dists(sources, "live", "", "", keyrings))
        for dists in phases:
            if not todo:
                break
            names = {k[0] for k in todo}
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
                answers = list(pool.map(self._dist_entries, dists, [arch] * len(dists),
                                        [names] * len(dists)))
            for answer in answers:  # in the sources' order: the first source wins
                for key, entry in answer.items():
                    if key in todo:
                        found[key] = entry
                todo -= found.keys()
        if len(found) > before:
            self._remember(sources, found)
        return found

    def candidates(self, sources: Sequence[AptSource], arch: str, names: Collection[str],
                   keyrings: Mapping[str, bytes] | None = None, snapshot: str = "",
                   snapshot_url: str | None = None) -> list[tuple[str, Key, DebEntry]]:
        """Every version of ``names`` the sources serve: (suite, key, entry) triples.

        Read from the live indexes, or as they stood at ``snapshot`` on
        ``snapshot_url`` (else the Archive's), found and checked as
        ``deb_entries`` does, index answers cached by content, in the sources'
        order. A source that cannot be read adds a line to ``self.warnings``.
        """
        service = snapshot_url or self.snapshot_url or ""
        if snapshot and not service:
            raise ArchiveError("no snapshot service known for these sources; "
                               "pass --apt-snapshot-url")
        dists = (self._dists(sources, "snapshot", snapshot, service, keyrings) if snapshot
                 else self._dists(sources, "live", "", "", keyrings))
        wanted = set(names)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            answers = list(pool.map(self._dist_entries, dists, [arch] * len(dists),
                                    [wanted] * len(dists)))
        return [(dist.suite, key, entry)
                for dist, answer in zip(dists, answers, strict=True)
                for key, entry in answer.items()]

    def _dists(self, sources: Sequence[AptSource], label: str, snapshot: str,
               service: str, keyrings: Mapping[str, bytes] | None) -> list[_Dist]:
        out: list[_Dist] = []
        seen: set[tuple[str, str]] = set()
        for src in sources:
            if "deb" not in src.types:
                continue
            keys = self._keys(src, keyrings)
            for uri in src.uris:
                if not uri.startswith(("http://", "https://")):
                    self._warn(f"APT source {uri} ({src.file}) is not served over HTTP; "
                               "its packages are not looked up")
                    continue
                base = _snapshot_base(uri, snapshot, service) if snapshot else uri
                base = base.rstrip("/") + "/"
                for suite in src.suites:
                    if (base, suite) not in seen:
                        seen.add((base, suite))
                        out.append(_Dist(label, base, suite, src.components, keys))
        return out

    def _keys(self, src: AptSource,
              keyrings: Mapping[str, bytes] | None) -> tuple[bytes, ...] | None:
        """The keys ``src``'s Release must be signed with, as apt in the image picks them."""
        if keyrings is None or src.options.get("trusted", "").lower() == "yes":
            return None
        from relock.upstream.aptsig import TRUSTED, TRUSTED_D, dearmor, signed_by_paths

        signed_by = src.options.get("signed-by", "")
        if "BEGIN PGP" in signed_by:
            try:
                return (dearmor(signed_by),)
            except ValueError:
                return ()
        paths = signed_by_paths(src)
        if paths:
            return tuple(keyrings[p] for p in paths if p in keyrings)
        return tuple(v for p, v in sorted(keyrings.items())
                     if p == TRUSTED or p.startswith(TRUSTED_D + "/"))

    def _dist_entries(self, dist: _Dist, arch: str, names: set[str]) -> dict[Key, DebEntry]:
        from relock.upstream.http import redact

        try:
            release = self._release(dist)
        except _SourceFailed as e:
            if e.host:
                self._warn(f"APT indexes on {redact(e.host)} were not read: {e}")
            else:
                self._warn(f"cannot read the {dist.label} APT source "
                           f"{redact(dist.url(''))}: {e}")
            return {}
        arches = [arch]
        if "all" in release.architectures and arch != "all" and not release.all_in_arch:
            arches.append("all")
        found: dict[Key, DebEntry] = {}
        lacking = [c for c in dist.components if not dist.flat and not _has_component(release, c)]
        if lacking:
            # An archive without what the lock names is not "nothing newer": it is unread.
            self._warn(f"cannot read the {dist.label} APT source {redact(dist.url(''))}: its "
                       f"Release has no component {', '.join(lacking)} (it has "
                       f"{', '.join(release.components) or 'none'})")
        components = [c for c in dist.components if c not in lacking]
        for component in components if dist.components else [""]:
            for a in arches:
                stem = "Packages" if dist.flat else f"{component}/binary-{a}/Packages"
                try:
                    entries = self._index_entries(dist, stem, release, names)
                except _SourceFailed as e:
                    self._warn(f"cannot read {redact(dist.url(stem))}[.xz|.gz|.lz4] "
                               f"({dist.label}): {e}")
                    continue
                for key, entry in entries.items():
                    found.setdefault(key, entry)
                if dist.flat:
                    return found
        return found

    def _release(self, dist: _Dist) -> _Release:
        """The suite's Release (or InRelease): its architectures and index hashes."""
        from relock.upstream.aptsig import (
            GpgvMissing,
            SignatureError,
            verify_clearsigned,
            verify_detached,
        )

        problems = []
        for name in ("InRelease", "Release"):
            url = dist.url(name)
            text = self._cached_get(url)
            if text is None:
                problems.append(f"{name}: not found")
                continue
            if dist.keys is None:
                return _parse_release(text)
            try:
                if name == "InRelease":
                    signed = verify_clearsigned(_raw(text), dist.keys)
                else:
                    signature = self._cached_get(dist.url("Release.gpg"))
                    if signature is None:
                        raise SignatureError("it is not signed (no Release.gpg)")
                    signed = verify_detached(_raw(text), _raw(signature), dist.keys)
            except GpgvMissing as e:
                self._warn(f"{e}; the hashes of the image's sources are taken unchecked")
                return _parse_release(text)
            except SignatureError as e:
                raise _SourceFailed(f"{name}: {e}") from None
            return _parse_release(signed.decode("utf-8", "replace"))
        raise _SourceFailed("; ".join(problems))

    def _index_entries(self, dist: _Dist, stem: str, release: _Release,
                       names: set[str]) -> dict[Key, DebEntry]:
        """The entries of ``names`` in one Packages index, from the cache or the archive."""
        listed = [stem + ext for ext in COMPRESSIONS if stem + ext in release.files]
        if not listed and not release.files:
            listed = [stem + ext for ext in COMPRESSIONS]  # a Release without hashes
        if not listed:
            return {}  # the suite has no such index (a component without this arch)
        # The uncompressed index's sha256 names the content, whatever the compression.
        content_id = release.files.get(stem) or release.files.get(listed[0], "")
        cached = self._answers_get(content_id, names)
        if cached is not None:
            return cached
        from relock.upstream import http

        problems = []
        for path, url in self._index_urls(dist, listed, release):
            resp = self._request(url)
            try:
                if resp.status_code == 404:
                    problems.append(f"{path}: not found")
                    continue
                if resp.status_code >= 400:
                    problems.append(f"{path}: HTTP {resp.status_code}")
                    continue
                data = _content(resp, bounds.PACKAGES, url)
            finally:
                http.release(resp)
            expected = release.files.get(path)
            if expected and hashlib.sha256(data).hexdigest() != expected:
                # A mirror caught mid-sync; the next form (or by-hash) may be whole.
                problems.append(f"{path}: its sha256 is not the one its Release gives")
                continue
            try:
                data = decompress(data, path, http.redact(url))
            except ValueError as e:
                problems.append(str(e))
                continue
            stanzas = list(stanzas_of(data, names))
            if content_id:
                self._answers_put(content_id, names, stanzas)
            return {k: e for k, e in stanzas}
        raise _SourceFailed("; ".join(problems))

    @staticmethod
    def _index_urls(dist: _Dist, listed: list[str],
                    release: _Release) -> Iterator[tuple[str, str]]:
        """Where each form of an index may be fetched: by-hash first, as apt does."""
        for path in listed:
            digest = release.files.get(path)
            if release.by_hash and digest:
                folder = path.rpartition("/")[0]
                yield path, dist.url(f"{folder}/by-hash/SHA256/{digest}".lstrip("/"))
            yield path, dist.url(path)

    # -- the .deb files ----------------------------------------------------
    def fetch_deb(self, pkg: AptPackage, sources: Sequence[AptSource], snapshot: str,
                  cache: BlobCache, progress: Callable[[int], None] | None = None,
                  snapshot_url: str | None = None) -> tuple[Path, str]:
        """The locked ``.deb`` of ``pkg`` in ``cache``, and which source served it.

        The source is "cache", "snapshot", "live" or the mirror's URL. Bytes
        are checked against ``pkg.sha256`` before they enter the cache.
        ``progress`` hears the size of each chunk as it arrives.
        """
        what = f"{pkg.name} {pkg.version} ({pkg.arch})"
        if not pkg.sha256 or not pkg.filename:
            raise ArchiveError(
                f"{what} has no .deb sha256 or filename in the lock (installed from a local "
                "file, or frozen with --no-archive); re-freeze without --no-archive, or, for a "
                "local file, leave it out"
            )
        hit = cache.path(pkg.sha256)
        if hit is not None:
            return hit, "cache"
        from relock.upstream import http

        failures: list[tuple[str, str, str]] = []  # (label, url, problem)
        mismatch = False
        for label, url in self._deb_urls(pkg, sources, snapshot, snapshot_url):
            try:
                resp = self._request(url)
            except _SourceFailed as e:
                failures.append((label, url, str(e)))
                continue
            if resp.status_code >= 400:
                http.release(resp)
                problem = "not found" if resp.status_code == 404 else f"HTTP {resp.status_code}"
                failures.append((label, url, problem))
                continue
            try:
                path = cache.put_stream(pkg.sha256, _chunks(resp, progress),
                                        f"{what} from {http.redact(url)}")
            except HashMismatchError as e:
                mismatch = True
                failures.append((label, url, str(e).split(": ", 1)[-1]))
                continue
            except _SourceFailed as e:
                failures.append((label, url, str(e)))
                continue
            finally:
                http.release(resp)
            return path, label
        tried = "; ".join(f"{label} {http.redact(url)}: {problem}"
                          for label, url, problem in failures)
        if mismatch:
            raise HashMismatchError(f"{what}: no source served the locked bytes ({tried})")
        if failures and all(p == "not found" for _, _, p in failures):
            raise DebNotFoundError(f"{what} is in no source ({tried}); pass --apt-mirror with "
                                   "an archive that still has it")
        if not failures:
            raise ArchiveError(f"{what}: the lock names no source to fetch it from")
        raise ArchiveError(f"{what}: every source failed ({tried})")

    def _deb_urls(self, pkg: AptPackage, sources: Sequence[AptSource], snapshot: str,
                  snapshot_url: str | None) -> Iterator[tuple[str, str]]:
        uris = [u for s in sources if "deb" in s.types for u in s.uris
                if u.startswith(("http://", "https://"))]
        service = snapshot_url or self.snapshot_url
        seen: set[str] = set()
        candidates: list[tuple[str, str]] = []
        if snapshot and service:
            candidates += [("snapshot", _snapshot_base(u, snapshot, service)) for u in uris]
        candidates += [("live", u) for u in uris]
        candidates += [(m, m) for m in self.mirrors]
        for label, base in candidates:
            url = urllib.parse.urljoin(base.rstrip("/") + "/", pkg.filename)
            if url not in seen:
                seen.add(url)
                yield label, url

    # -- HTTP --------------------------------------------------------------
    def _http(self) -> requests.Session:
        if self._session is not None:
            return self._session
        from relock.upstream import http

        return http.thread_session(self._local)

    def _request(self, url: str, headers: dict[str, str] | None = None) -> Answer:
        """GET ``url`` under relock's retry policy, fast-failing on a down host.

        The answer is streamed, under a deadline (``relock.upstream.http``): read it
        with ``_content`` or ``_chunks`` and let it go with ``http.release``.
        """
        from relock.upstream import http

        origin = _origin(url)

        def attempt() -> None:
            with self._lock:
                down = self._down.get(origin)
                self.requests_made += 1
            if down is not None:
                raise _SourceFailed(f"unreachable ({down})", origin)

        def waited(seconds: float) -> None:
            with self._lock:
                self.retries += 1
                self.waited += seconds

        try:
            return http.request(self._http(), "GET", url, limits=http.Limits.from_env(),
                                retry=http.Retry(tries=self.tries or http.TRIES,
                                                 max_wait=self.max_wait),
                                stream=True, on_try=attempt, on_wait=waited,
                                timeout=self.timeout, headers=headers or {})
        except http.Unanswered as e:
            if not e.expired and not e.connection:
                raise _SourceFailed(e.reason) from None
            # Refused, unresolvable or not answering: the same for every
            # later request to this host in this run.
            reason = _why(e)
            with self._lock:
                self._down.setdefault(origin, reason)
            raise _SourceFailed(f"unreachable ({reason})", origin) from None

    def _cached_get(self, url: str) -> str | None:
        """The text at ``url`` (None on 404), revalidated with ETag/Last-Modified."""
        path = self._cache_file("http", url)
        old: dict[str, str] = {}
        if path is not None:
            try:
                old = json.loads(path.read_text())
            except (OSError, ValueError):
                old = {}
        headers = {}
        if old.get("etag"):
            headers["If-None-Match"] = old["etag"]
        if old.get("last_modified"):
            headers["If-Modified-Since"] = old["last_modified"]
        from relock.upstream import http

        resp = self._request(url, headers=headers)
        try:
            if resp.status_code == 304 and "text" in old:
                with self._lock:
                    self.cache_hits += 1
                return old["text"]
            if resp.status_code == 404:
                return None
            if resp.status_code >= 400:
                raise _SourceFailed(f"HTTP {resp.status_code} for {http.redact(url)}")
            # Exact bytes survive the round trip (a signature is checked on them).
            text = _content(resp, bounds.RELEASE, url).decode("utf-8", "surrogateescape")
            if path is not None:
                _write_json(path, {"text": text, "etag": resp.headers.get("ETag", ""),
                                   "last_modified": resp.headers.get("Last-Modified", "")})
            return text
        finally:
            http.release(resp)

    # -- the answer cache --------------------------------------------------
    def _cache_file(self, kind: str, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        name = hashlib.sha256(key.encode()).hexdigest()
        return self.cache_dir / kind / name[:2] / f"{name}.json"

    def _known_file(self, sources: Sequence[AptSource]) -> Path | None:
        uris = sorted({u for s in sources if "deb" in s.types for u in s.uris})
        return self._cache_file("known", "\n".join(uris))

    def _known(self, sources: Sequence[AptSource]) -> dict[Key, DebEntry]:
        path = self._known_file(sources)
        if path is None:
            return {}
        try:
            rows = json.loads(path.read_text())
            return {(n, v, a): DebEntry(f, s, int(z)) for n, v, a, f, s, z in rows}
        except (OSError, ValueError, TypeError):
            return {}

    def _remember(self, sources: Sequence[AptSource], found: dict[Key, DebEntry]) -> None:
        path = self._known_file(sources)
        if path is None:
            return
        merged = {**self._known(sources), **found}
        _write_json(path, sorted((*k, e.filename, e.sha256, e.size) for k, e in merged.items()))

    def _answers_get(self, content_id: str, names: set[str]) -> dict[Key, DebEntry] | None:
        path = self._cache_file("answers", content_id) if content_id else None
        if path is None:
            return None
        try:
            data = json.loads(path.read_text())
            if not names <= set(data["names"]):
                return None
            out = {(n, v, a): DebEntry(f, s, int(z)) for n, v, a, f, s, z in data["entries"]
                   if n in names}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        with self._lock:
            self.cache_hits += 1
        return out

    def _answers_put(self, content_id: str, names: set[str],
                     stanzas: Iterable[tuple[Key, DebEntry]]) -> None:
        """Record what one index says about ``names``, merged with earlier answers."""
        path = self._cache_file("answers", content_id)
        if path is None:
            return
        known: set[str] = set()
        rows: set[tuple[str, str, str, str, str, int]] = set()
        try:
            data = json.loads(path.read_text())
            known = set(data["names"])
            rows = {tuple(r) for r in data["entries"]}
        except (OSError, ValueError, KeyError, TypeError):
            pass
        rows |= {(*k, e.filename, e.sha256, e.size) for k, e in stanzas}
        _write_json(path, {"names": sorted(known | names), "entries": sorted(rows)})

    def down_hosts(self) -> dict[str, str]:
        """Hosts found unreachable in this run (origin -> why); later requests skipped them."""
        with self._lock:
            return dict(self._down)

    def _warn(self, line: str) -> None:
        with self._lock:
            if line not in self.warnings:
                self.warnings.append(line)


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _parse_release(text: str) -> _Release:
    release = _Release()
    section = ""
    for line in text.splitlines():
        if not line.startswith((" ", "\t")):
            key, _, value = line.partition(":")
            section = key.strip()
            if section == "Architectures":
                release.architectures = frozenset(value.split())
            elif section == "Acquire-By-Hash":
                release.by_hash = value.strip().lower() == "yes"
            elif section == "No-Support-for-Architecture-all":
                release.all_in_arch = value.strip() == "Packages"
            elif section == "Components":
                release.components = tuple(value.split())
            continue
        if section == "SHA256":
            words = line.split()
            if len(words) == 3:
                release.files[words[2]] = words[0].lower()
    return release


# Where each distro's archive keeps its dated snapshots; the archive's name
# (the last part of the source URI: debian, debian-security, ubuntu) and the
# snapshot id are appended.
SNAPSHOT_URLS = {
    "debian": "https://snapshot.debian.org/archive",
    "ubuntu": "https://snapshot.ubuntu.com",
}


def snapshot_uri(uri: str, snapshot: str, base_url: str) -> str:
    """Where ``uri``'s archive stood at ``snapshot`` on a snapshot service."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return f"{base_url.rstrip('/')}/{name}/{snapshot}/"


def _snapshot_base(uri: str, snapshot: str, service: str) -> str:
    return snapshot_uri(uri, snapshot, service)


def _chunks(resp: Answer, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    from relock.upstream import http

    try:
        for chunk in http.iter_chunks(resp, 1 << 16):
            if progress is not None:
                progress(len(chunk))
            yield chunk
    except http.Unanswered as e:
        raise _SourceFailed(_why(e, "the download broke off")) from None


def _content(resp: Answer, limit: int, url: str) -> bytes:
    """The whole body of ``resp``, within its deadline, at most ``limit`` bytes (then a
    ``LimitError`` naming ``url``)."""
    from relock.upstream import http

    try:
        data = http.read_body(resp, limit)
    except http.Unanswered as e:
        raise _SourceFailed(_why(e, "the answer broke off")) from None
    if len(data) > limit:
        raise bounds.too_big(http.redact(url), "the file", limit)
    return data


def _has_component(release: _Release, component: str) -> bool:
    """Whether the Release serves ``component``: its Components field names it (the
    last part of it: ``updates/main`` serves ``main``), or, without that field, an
    index below it is listed (or nothing is: a Release without hashes says nothing)."""
    if release.components:
        return component in release.components or any(
            c.rsplit("/", 1)[-1] == component for c in release.components)
    if not release.files:
        return True
    return any(path.startswith(component + "/") for path in release.files)


def _why(e: Unanswered, broke: str = "") -> str:
    """Why a request failed, as a source's problem: a deadline names RELOCK_HTTP_TIMEOUT."""
    if e.expired:
        return f"timed out: {e.expired} (RELOCK_HTTP_TIMEOUT)"
    return f"{broke} ({e.reason})" if broke else e.reason


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def _write_json(path: Path, data: object) -> None:
    write_cache(path, json.dumps(data, separators=(",", ":")))
