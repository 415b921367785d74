"""The seam to OCI and Docker registries: the Registry HTTP API v2 over requests.

Everything that comes in is checked against its digest: a manifest's bytes
are hashed before they are returned, and a blob stream raises at its end if
its bytes are not the ones asked for. Registries on a loopback address are
spoken to over plain http (the test bed's); any other over https with the
machine's CAs. Token auth (``WWW-Authenticate: Bearer``) is done anonymously,
or with the user's ``docker login`` entry for the host when there is one;
those credentials never go over plain http to a token service that is not on
this machine.
Which hosts to ask for a name is decided here too (``pull_hosts``): for a
Docker Hub name the engine's registry mirrors first, as the engine pulls.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from relock import bounds
from relock.errors import LimitError, RegistryError
from relock.lock import reference

if TYPE_CHECKING:
    import requests

    from relock.upstream.http import Answer, Retry

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
# One header value, comma-separated: a registry that is not asked for
# schema 2 answers with a converted schema-1 manifest and another digest.
ACCEPT = ", ".join(MANIFEST_TYPES)

DOCKER_HUB_API = "registry-1.docker.io"

_DIGEST = re.compile(reference.DIGEST)
CHUNK = 1 << 20
# Blobs above this size are uploaded in PATCH chunks of this size.
UPLOAD_CHUNK = 64 << 20
TIMEOUT = (10.0, 120.0)  # (connect, read) seconds
# The limits on what a registry sends (manifests, pages, tokens) are relock.bounds'.


def json_object(data: bytes, what: str) -> dict[str, object]:
    """The JSON object ``data`` (a manifest, an index, an answer), nested at most
    ``bounds.JSON_DEPTH`` deep; a RegistryError (or LimitError) naming ``what``."""
    try:
        doc = bounds.load_json(data)
    except bounds.JSONTooDeep as e:
        raise LimitError(f"{what}: {e}; refused") from None
    except ValueError:
        raise RegistryError(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what} is not a JSON object")
    return doc


def next_link(header: str, url: str) -> str:
    """The next page a ``Link`` header names (RFC 8288, ``rel="next"``), as an absolute
    URL against ``url``; "" when it names none."""
    for part in re.finditer(r"<([^>]*)>((?:\s*;\s*[^;,<]*)*)", header):
        params = part.group(2).lower()
        rels = re.findall(r'rel\s*=\s*"?([^";,]*)"?', params)
        if rels and "next" not in " ".join(rels).split():
            continue
        target = str(part.group(1)).strip()
        if not target:
            continue
        try:
            return str(urllib.parse.urljoin(url, target))
        except ValueError:
            return ""
    return ""


def check_digest(value: str, where: str = "digest") -> str:
    """``value`` if it is ``sha256:`` and 64 lower-case hex digits, else a RegistryError."""
    if not _DIGEST.fullmatch(value):
        raise RegistryError(f"{where}: {value!r:.80} is not a sha256 digest (sha256:<64 hex>)")
    return value


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def mirror_hosts(mirrors: Sequence[str]) -> list[str]:
    """Registry hosts from the engine's ``registry-mirrors`` URLs (``http://127.0.0.1:5000/``)."""
    out = []
    for url in mirrors:
        host = urllib.parse.urlsplit(url if "://" in url else f"https://{url}").netloc
        if host and host not in out:
            out.append(host)
    return out


def pull_hosts(parsed: reference.Reference, mirrors: Sequence[str]) -> list[str]:
    """The registry hosts to ask for ``parsed``, in order: for a Docker Hub name
    the engine's ``mirrors`` first, as the engine itself pulls, then its own host."""
    hosts = mirror_hosts(mirrors) if parsed.host == reference.DOCKER_HUB else []
    return [*hosts, parsed.host]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (maybe with a port) is this machine: the only plain-http case."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def ca_bundle() -> str | bool:
    """The CA file requests should trust: the user's choice, else the machine's."""
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        if os.environ.get(var):
            return os.environ[var]
    machine = Path("/etc/ssl/certs/ca-certificates.crt")
    return str(machine) if machine.is_file() else True


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes, its media type and digest (of those bytes)."""

    media_type: str
    data: bytes
    digest: str

    def json(self) -> dict[str, object]:
        """The manifest's JSON object (its values unchecked: see ``array`` and ``field``),
        parsed once: read it, do not change it."""
        return self._doc

    @functools.cached_property
    def _doc(self) -> dict[str, object]:
        return json_object(self.data, f"manifest {self.digest}")

    def array(self, key: str) -> list[object]:
        """The JSON array ``key`` (``manifests``, ``layers``): [] when absent or null."""
        value = self.json().get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise RegistryError(f"manifest {self.digest}: {key!r} is not an array")
        return value

    def field(self, key: str) -> str:
        """The string ``key`` (``artifactType``): "" when absent or not a string."""
        value = self.json().get(key)
        return value if isinstance(value, str) else ""

    def objects(self, key: str) -> list[dict[str, object]]:
        """The JSON objects of the array ``key``; other items are left out."""
        return [item for item in self.array(key) if isinstance(item, dict)]


class VerifiedStream:
    """A blob's bytes as a file-like ``read``; raises at the end if the digest differs."""

    def __init__(self, chunks: Iterator[bytes], digest: str, where: str,
                 size: int | None = None, close: Callable[[], object] | None = None,
                 limit: int | None = None) -> None:
        self._chunks = chunks
        self._digest = digest
        self._where = where
        self._hash = hashlib.sha256()
        self._buf = b""
        self._done = False
        self._close = close
        self.size = size
        # The bytes its descriptor says it has: one more is refused, not stored.
        self.limit = limit
        self.read_bytes = 0

    def _next(self) -> bool:
        if self._done:
            return False
        from relock.upstream.http import Unanswered

        try:
            chunk = next(self._chunks)
        except Unanswered as e:
            self.close()
            if e.expired:
                raise RegistryError(f"{self._where}: {e}") from None
            raise RegistryError(f"{self._where}: download broke off: {e.reason}") from None
        except StopIteration:
            # The end: the answer and its deadline watch are let go even if the
            # caller never closes the stream.
            self._done = True
            self.close()
            got = "sha256:" + self._hash.hexdigest()
            if got != self._digest:
                raise RegistryError(
                    f"{self._where}: content has digest {got}, not {self._digest}; refused"
                ) from None
            return False
        self._hash.update(chunk)
        self.read_bytes += len(chunk)
        if self.limit is not None and self.read_bytes > self.limit:
            self.close()
            self._done = True
            raise LimitError(bounds.over(self._where, "the blob",
                                         f"the {self.limit} bytes its descriptor says"))
        self._buf += chunk
        return True

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buf) < size) and self._next():
            pass
        if size < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def close(self) -> None:
        close, self._close = self._close, None  # once only
        if close is not None:
            close()

    def __enter__(self) -> VerifiedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _docker_login(host: str) -> tuple[str, str] | None:
    """The user's ``docker login`` for ``host`` from config.json (inline ``auth`` only)."""
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    try:
        auths = json.loads(Path(folder, "config.json").read_text()).get("auths") or {}
    except (OSError, ValueError, AttributeError):
        return None
    keys = [host, f"https://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    if host == reference.DOCKER_HUB:
        keys.append("https://index.docker.io/v1/")
    for key in keys:
        entry = auths.get(key)
        if isinstance(entry, dict) and entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return user, password
    return None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """A ``WWW-Authenticate`` header's scheme (lower case) and its quoted parameters."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)\s*=\s*"([^"]*)"', rest)}
    return scheme.lower(), params


class Registry:
    """One registry host; thread-safe (one requests session per thread)."""

    def __init__(self, host: str, *, timeout: tuple[float, float] = TIMEOUT,
                 auth: tuple[str, str] | None = None,
                 backoff: tuple[float, ...] | None = None) -> None:
        self.host = host
        # The waits between tries of a busy request (one try more than waits);
        # None: relock's retry policy (relock.upstream.http).
        self.backoff = backoff
        api = DOCKER_HUB_API if host == reference.DOCKER_HUB else host
        self.base = ("http" if is_loopback(host) else "https") + f"://{api}"
        self.timeout = timeout
        self._auth = auth
        self._login_read = auth is not None
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._local = threading.local()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Registry({self.host!r})"

    # -- plumbing -----------------------------------------------------------
    def _session(self) -> requests.Session:
        from relock.upstream import http

        def setup(session: requests.Session) -> None:
            session.verify = ca_bundle()
            # The registry is named by the user; a proxy for the wide
            # internet must not sit between us and a loopback registry.
            if is_loopback(self.host):
                session.trust_env = False

        return http.thread_session(self._local, setup)

    def _login(self) -> tuple[str, str] | None:
        with self._lock:
            if not self._login_read:
                self._auth = _docker_login(self.host)
                self._login_read = True
            return self._auth

    def _headers(self, scope: str) -> dict[str, str]:
        token = self._tokens.get(scope)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self._basic and self._auth:
            raw = base64.b64encode(f"{self._auth[0]}:{self._auth[1]}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        return {}

    def _authenticate(self, challenge: str, scope: str) -> bool:
        """Answer a 401's challenge; whether there is something new to try."""
        from relock.upstream import http

        scheme, params = parse_challenge(challenge)
        login = self._login()
        if scheme == "basic":
            if login is None or self._basic:
                return False
            self._basic = True
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        realm = urllib.parse.urlsplit(params["realm"])
        if realm.scheme not in ("http", "https") or not realm.hostname:
            raise RegistryError(f"{self.host}: its token service {params['realm']!r:.80} is "
                                "not an http(s) URL")
        if login is not None and realm.scheme == "http" and not is_loopback(realm.hostname):
            # A password or token in the clear to another machine: never.
            raise RegistryError(
                f"{self.host}: its token service http://{realm.netloc} is plain http on "
                "another machine; relock does not send your `docker login` credentials "
                "there (refused): the registry should name an https token service")
        # A token we hold was refused: it has expired; ask for a new one.
        self._tokens.pop(scope, None)
        query = {"service": params.get("service", ""), "scope": scope}
        where = f"{self.host}: token service {http.redact(params['realm'])}"
        try:
            resp = http.request(self._session(), "GET", params["realm"],
                                limits=http.Limits.from_env(), retry=self._retry(),
                                stream=True, params=query, auth=login, timeout=self.timeout)
        except http.Unanswered as e:
            if e.expired:
                raise RegistryError(f"{self.host}: token service: {e}") from None
            raise RegistryError(f"{self.host}: token service unreachable: {e.reason}") from None
        if resp.status_code != 200:
            _release(resp)
            raise RegistryError(
                f"{self.host}: token service refused {scope!r} (HTTP {resp.status_code}); "
                "check `docker login` for this registry"
            )
        data = self._small_body(resp, where, "token answer", bounds.TOKEN_ANSWER)
        try:
            found = json_object(data, f"{where}: the answer")
        except RegistryError:
            found = {}
        token = found.get("token") or found.get("access_token")
        if not token or not isinstance(token, str):
            raise RegistryError(f"{self.host}: token service gave no token for {scope!r}")
        self._tokens[scope] = token
        return True

    def _retry(self) -> Retry:
        from relock.upstream import http

        if self.backoff is None:
            return http.Retry()
        return http.Retry(tries=len(self.backoff) + 1, backoff=self.backoff)

    def _request(self, method: str, url: str, repo: str, *, push: bool = False,
                 ok: tuple[int, ...] = (200,), what: str = "",
                 **kwargs: Any) -> Answer:  # Any: requests' own keyword arguments, passed on
        """One request with auth; the response if its status is in ``ok`` (or 404).

        With ``stream=True`` the body is left to read and the response carries
        its deadline's watch (``relock_watch``, see ``relock.upstream.http``).
        """
        from relock.upstream import http

        scope = f"repository:{repo}:" + ("pull,push" if push else "pull")
        if not url.startswith(("http://", "https://")):
            url = self.base + url
        # A streamed body cannot be sent twice; earlier requests of the same
        # scope have already been through the challenge.
        replayable = isinstance(kwargs.get("data"), bytes | None)
        # An upload's time depends on its size and the line: only requests
        # without a body are held to relock.upstream.http's deadlines.
        limits = http.Limits.from_env() if not kwargs.get("data") else None
        extra = kwargs.pop("headers", {})
        auth_tries = 0
        while True:
            kwargs["headers"] = {**extra, **self._headers(scope)}
            try:
                resp = http.request(self._session(), method, url, limits=limits,
                                    retry=self._retry() if replayable else http.ONCE,
                                    timeout=self.timeout, **kwargs)
            except http.Unanswered as e:
                if e.expired:
                    raise RegistryUnreachable(
                        f"{self.host}: {what or method}: {e.url}: {e.expired} "
                        "(timed out; RELOCK_HTTP_TIMEOUT)") from None
                raise RegistryUnreachable(f"{self.host}: {what or method} failed: {e.reason}"
                                          ) from None
            if resp.status_code == 401 and replayable and auth_tries < 2 and self._authenticate(
                    resp.headers.get("WWW-Authenticate", ""), scope):
                auth_tries += 1
                http.release(resp)
                continue
            break
        if resp.status_code in ok or resp.status_code == 404:
            return resp
        detail = _error_detail(resp)
        http.release(resp)
        raise RegistryError(
            f"{self.host}/{repo}: {what or method} answered HTTP {resp.status_code}{detail}"
        )

    # -- reading ------------------------------------------------------------
    def manifest(self, repo: str, ref: str) -> Manifest:
        """The manifest ``ref`` (tag or digest) of ``repo``: exact bytes, type, digest."""
        what = f"manifest {repo}:{ref}" if not ref.startswith("sha256:") else f"{repo}@{ref}"
        resp = self._request("GET", f"/v2/{repo}/manifests/{ref}", repo, stream=True,
                             headers={"Accept": ACCEPT}, what=f"GET {what}")
        if resp.status_code == 404:
            _release(resp)
            raise ManifestUnknown(f"{self.host}/{what}: no such manifest in the registry")
        data = self._small_body(resp, f"{self.host}/{what}", "manifest")
        digest = sha256_digest(data)
        want = ref if ref.startswith("sha256:") else resp.headers.get("Docker-Content-Digest", "")
        if want and want != digest:
            raise RegistryError(f"{self.host}/{what}: bytes have digest {digest}, not {want}; "
                                "refused")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        declared = json_object(data, f"{self.host}/{what}: the manifest").get("mediaType")
        media_type = declared if isinstance(declared, str) and declared else media_type
        if media_type not in MANIFEST_TYPES:
            raise RegistryError(f"{self.host}/{what}: unsupported manifest type {media_type!r}")
        return Manifest(media_type=media_type, data=data, digest=digest)

    def _small_body(self, resp: Answer, where: str, what: str,
                    limit: int = bounds.MANIFEST) -> bytes:
        """The body of a streamed answer, at most ``limit`` bytes (then refused)."""
        from relock.upstream import http

        try:
            data = http.read_body(resp, limit)
        except http.Unanswered as e:
            raise RegistryError(f"{where}: {e.expired or e.reason} (the {what} broke off)"
                                ) from None
        finally:
            http.release(resp)
        if len(data) > limit:
            raise bounds.too_big(where, f"the {what}", limit)
        return data

    def referrers(self, repo: str, digest: str) -> list[dict[str, object]] | None:
        """The descriptors the referrers API lists for ``digest`` (OCI 1.1), every page;
        None when the registry has no referrers API (it answers 404)."""
        check_digest(digest)
        url = f"{self.base}/v2/{repo}/referrers/{digest}"
        where = f"{self.host}/{repo}: referrers of {digest[:19]}"
        out: list[dict[str, object]] = []
        seen: set[str] = set()
        for _ in range(bounds.REFERRER_PAGES):
            seen.add(url)
            resp = self._request("GET", url, repo, stream=True, what="GET referrers",
                                 headers={"Accept": OCI_INDEX})
            if resp.status_code == 404:
                _release(resp)
                if out:
                    raise RegistryError(f"{where}: a later page is missing (HTTP 404)")
                return None
            link = str(resp.headers.get("Link", ""))
            page = Manifest(OCI_INDEX, self._small_body(resp, where, "referrers answer"),
                            "referrers")
            try:
                kind, entries = page.field("mediaType"), page.objects("manifests")
            except RegistryError:
                kind, entries = "?", []
            if kind not in ("", OCI_INDEX):
                raise RegistryError(f"{where}: the answer is not an image index")
            out.extend(entries)
            if len(out) > bounds.REFERRERS:
                raise LimitError(bounds.over(where, "the number of referrers",
                                             str(bounds.REFERRERS)))
            url = next_link(link, url)
            if not url:
                return out
            if not url.startswith(self.base + "/") or url in seen:
                raise RegistryError(f"{where}: the answer's next page is elsewhere or again")
        raise LimitError(bounds.over(where, "the number of pages",
                                     f"{bounds.REFERRER_PAGES} pages"))

    def has_manifest(self, repo: str, ref: str) -> bool:
        resp = self._request("HEAD", f"/v2/{repo}/manifests/{ref}", repo,
                             headers={"Accept": ACCEPT}, what=f"HEAD manifest {ref}")
        resp.close()
        return bool(resp.status_code == 200)

    def tags(self, repo: str) -> list[str]:
        """Every tag of ``repo`` (empty if the repository does not exist).

        The pages its ``Link`` headers name are followed on this registry only,
        each once, at most ``bounds.TAG_PAGES`` of them, each at most
        ``bounds.TAG_PAGE`` bytes; a page that names one already read ends it
        as an error (a loop), not as an endless listing.
        """
        where = f"{self.host}/{repo}: tag list"
        out: set[str] = set()
        url = f"{self.base}/v2/{repo}/tags/list?n=1000"
        seen: set[str] = set()
        for _ in range(bounds.TAG_PAGES):
            seen.add(url)
            resp = self._request("GET", url, repo, stream=True, what="list tags")
            if resp.status_code == 404:
                _release(resp)
                if seen == {url}:
                    return []
                raise RegistryError(f"{where}: a later page is missing (HTTP 404)")
            link = str(resp.headers.get("Link", ""))
            page = json_object(self._small_body(resp, where, "tag list page", bounds.TAG_PAGE),
                               f"{where}: a page")
            tags = page.get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise RegistryError(f"{where}: 'tags' is not a list of names")
            out.update(tags)
            url = next_link(link, url)
            if not url:
                return sorted(out)
            if not url.startswith(self.base + "/"):
                raise RegistryError(f"{where}: the next page is on another host; refused")
            if url in seen:
                raise RegistryError(f"{where}: the next page is one already read (a loop); "
                                    "refused")
        raise LimitError(bounds.over(where, "the number of pages", f"{bounds.TAG_PAGES} pages"))

    def has_blob(self, repo: str, digest: str) -> bool:
        check_digest(digest)
        resp = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", repo, what="HEAD blob")
        resp.close()
        return bool(resp.status_code == 200)

    def blob_size(self, repo: str, digest: str) -> int | None:
        """The size of blob ``digest`` (HEAD's Content-Length), None if it is not there."""
        check_digest(digest)
        resp = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", repo, what="HEAD blob")
        resp.close()
        size = resp.headers.get("Content-Length", "")
        return int(size) if resp.status_code == 200 and size.isdigit() else None

    def blob(self, repo: str, digest: str, size: int | None = None) -> VerifiedStream:
        """A stream of blob ``digest``; it raises at its end if the bytes do not match,
        and (with ``size``, its descriptor's) as soon as it is longer."""
        check_digest(digest)
        resp = self._request("GET", f"/v2/{repo}/blobs/{digest}", repo, stream=True,
                             what=f"GET blob {digest[:19]}")
        from relock.upstream import http

        if resp.status_code == 404:
            http.release(resp)
            raise BlobUnknown(f"{self.host}/{repo}: no blob {digest}")
        length = resp.headers.get("Content-Length")
        declared = int(length) if length and length.isdigit() else None
        where = f"{self.host}/{repo}@{digest}"
        if size is not None and declared is not None and declared > size:
            http.release(resp)
            raise LimitError(bounds.over(where, f"the blob ({declared} bytes)",
                                         f"the {size} bytes its descriptor says"))
        return VerifiedStream(http.iter_chunks(resp, CHUNK), digest, where, size=declared,
                              close=lambda: http.release(resp), limit=size)

    # -- writing ------------------------------------------------------------
    def push_blob(self, repo: str, digest: str, source: Path | BinaryIO, size: int, *,
                  mount_from: str = "", chunk: int = UPLOAD_CHUNK) -> str:
        """Upload blob ``digest`` unless it is there; how: "exists", "mounted" or "uploaded"."""
        check_digest(digest)
        if self.has_blob(repo, digest):
            return "exists"
        url = f"/v2/{repo}/blobs/uploads/"
        if mount_from:
            url += "?" + urllib.parse.urlencode({"mount": digest, "from": mount_from})
        resp = self._request("POST", url, repo, push=True, ok=(201, 202),
                             what="start upload", headers={"Content-Length": "0"})
        resp.close()
        if resp.status_code == 201:
            return "mounted"
        if resp.status_code == 404:
            raise RegistryError(f"{self.host}/{repo}: uploads are not allowed here (HTTP 404)")
        location = self._location(resp)
        if isinstance(source, Path):
            with source.open("rb") as f:
                self._upload(repo, digest, f, size, location, chunk)
        else:
            self._upload(repo, digest, source, size, location, chunk)
        return "uploaded"

    def _location(self, resp: requests.Response) -> str:
        location = str(resp.headers.get("Location") or "")
        if not location:
            raise RegistryError(f"{self.host}: the registry gave no upload location")
        return urllib.parse.urljoin(self.base + "/", location)

    def _upload(self, repo: str, digest: str, f: IO[bytes], size: int, location: str,
                chunk: int) -> None:
        sent = 0
        if size > chunk:
            while sent < size:
                part = f.read(min(chunk, size - sent))
                if not part:
                    break
                end = sent + len(part) - 1
                resp = self._request(
                    "PATCH", location, repo, push=True, ok=(202,), what="upload chunk",
                    data=part, headers={"Content-Type": "application/octet-stream",
                                        "Content-Range": f"{sent}-{end}",
                                        "Content-Length": str(len(part))})
                resp.close()
                if resp.status_code != 202:
                    raise RegistryError(f"{self.host}/{repo}: upload of {digest} was lost")
                location = self._location(resp)
                sent += len(part)
            body: _Reader | bytes = b""
        else:
            body = _Reader(f, size) if size else b""
        final = _with_query(location, digest=digest)
        resp = self._request("PUT", final, repo, push=True, ok=(201,), what="finish upload",
                             data=body, headers={"Content-Type": "application/octet-stream"})
        resp.close()
        if resp.status_code != 201:
            raise RegistryError(f"{self.host}/{repo}: upload of {digest} was not accepted")

    def push_manifest(self, repo: str, ref: str, media_type: str, data: bytes) -> str:
        """Put manifest bytes under ``ref`` (a tag or their digest); their digest."""
        digest = sha256_digest(data)
        if ref.startswith("sha256:") and ref != digest:
            raise RegistryError(f"manifest bytes have digest {digest}, not {ref}")
        resp = self._request("PUT", f"/v2/{repo}/manifests/{ref}", repo, push=True,
                             ok=(201,), what=f"PUT manifest {ref}", data=data,
                             headers={"Content-Type": media_type})
        resp.close()
        if resp.status_code != 201:
            raise RegistryError(f"{self.host}/{repo}: manifest {ref} was not accepted")
        answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"{self.host}/{repo}: stored manifest as {answered}, not {digest}")
        return digest


def _release(resp: Answer) -> None:
    from relock.upstream import http

    http.release(resp)


class ManifestUnknown(RegistryError):
    """The registry has no such manifest."""


class RegistryUnreachable(RegistryError):
    """No answer from the registry (refused, timed out, TLS failed)."""


class BlobUnknown(RegistryError):
    """The registry has no such blob."""


class _Reader:
    """Exactly ``size`` bytes of ``f`` as an iterable body, so requests streams it."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self._f = f
        self._left = size

    def __len__(self) -> int:  # requests then sends Content-Length, not chunked encoding
        return self._left

    def __iter__(self) -> Iterator[bytes]:
        while self._left > 0:
            part = self._f.read(min(CHUNK, self._left))
            if not part:
                raise RegistryError("the blob ended before its declared size")
            self._left -= len(part)
            yield part


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _error_detail(resp: Answer) -> str:
    """`` (CODE: message)`` of an error answer's body (read at most ``bounds.ERROR_BODY``)."""
    from relock.upstream import http

    try:
        if getattr(resp, "_content_consumed", False):
            data = resp.content[:bounds.ERROR_BODY + 1]
        else:
            data = http.read_body(resp, bounds.ERROR_BODY)
    except (http.Unanswered, RuntimeError):
        return ""
    if len(data) > bounds.ERROR_BODY:
        return ""
    try:
        errors = bounds.load_json(data).get("errors") or []
    except (ValueError, AttributeError):
        return ""
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return http.scrub(f" ({first.get('code', '')}: {first.get('message', '')})"[:200])
    return ""


_registries: dict[str, Registry] = {}
_registries_lock = threading.Lock()


def registry_for(host: str) -> Registry:
    """A shared client for ``host`` (tokens are kept between calls)."""
    with _registries_lock:
        if host not in _registries:
            _registries[host] = Registry(host)
        return _registries[host]
