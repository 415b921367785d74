"""Pinned builds that reach nothing but the locked view, whatever URL a tool carries
(issue 23).

An "upstream" on loopback serves a PEP 503 index and its files over https (an authority
of the test's own, which only the raw build is told to trust) and counts every request.
A template as projects write it installs from there with ``uv sync --frozen`` (the URLs
are uv.lock's) and with pip from a hashed requirements file that names the https index
itself. relock's own index (PIP_INDEX_URL) is another server of the same files, so the
upstream hears only what the build steps ask for directly.

Raw build, freeze, pinned build (the upstream counts zero), verify and diff exit 0, the
pinned image's listing equal to the raw one's (no certificate, no configuration of the
view); ``relock vendor`` and the pinned build again on the offline second host from the
store. Plain downloads (``curl -o``, a piped ``curl``, ``ADD`` of a URL) are locked and
served by the view too. A step that downloads a file the lock does not hold fails naming
its URL and step.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import http.server
import io
import os
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecondHost
from tests.e2e.pyindex import image_pip_wheels, publish_wheel, pypiserver
from tests.e2e.test_build_faults import assert_clean_failure, relock
from tests.e2e.test_vendor_e2e import vendor_and_build_offline

pytestmark = [pytest.mark.engine, pytest.mark.slow]

TEMPLATE = """\
FROM debian:trixie-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv curl \\
 && rm -rf /var/lib/apt/lists/*
COPY uv /usr/local/bin/uv
WORKDIR /app
COPY pyproject.toml uv.lock requirements.txt ./
# The raw build is given the upstream's authority (--build-arg SSL_CERT_FILE=...).
ARG SSL_CERT_FILE
ARG UPSTREAM
RUN --mount=type=bind,source=upstream-ca.pem,target=/run/upstream-ca.pem \\
    --mount=type=cache,target=/root/.cache/uv \\
    UV_PYTHON_DOWNLOADS=never uv sync --frozen --no-install-project \\
    --python /usr/bin/python3
RUN --mount=type=bind,source=upstream-ca.pem,target=/run/upstream-ca.pem \\
    python3 -m venv /opt/tools \\
 && PIP_CERT=$SSL_CERT_FILE /opt/tools/bin/pip install --no-cache-dir --require-hashes \\
    -r requirements.txt
# A wheel by its https URL (direct_url.json names it; the index has it too).
RUN --mount=type=bind,source=upstream-ca.pem,target=/run/upstream-ca.pem \\
    PIP_CERT=$SSL_CERT_FILE /opt/tools/bin/pip install --no-cache-dir \\
    "$UPSTREAM/files/hx_c-1.0-py3-none-any.whl"
"""

# Plain downloads: one the image keeps (locked from its file), one piped on (freeze
# fetches it). In the raw build curl trusts the upstream's authority, in the pinned one
# the view's (the prefix sets SSL_CERT_FILE). An ADD of a URL is fetched by the engine
# itself: over https (the test bed's dockerd trusts the upstream's authority) and http.
CURLS = """\
RUN --mount=type=bind,source=upstream-ca.pem,target=/run/upstream-ca.pem \\
    CURL_CA_BUNDLE=$SSL_CERT_FILE curl -fsSL -o /opt/model.bin {url}/data/model.bin \\
 && CURL_CA_BUNDLE=$SSL_CERT_FILE curl -fsSL {url}/data/tool.txt | tr a-z A-Z > /opt/tool.txt
ADD {url}/data/added.bin /opt/
ADD {http}/data/asset.txt /opt/asset.txt
"""

# The test bed's authority for these upstreams (scripts/testbed makes it; its dockerd
# trusts it, so BuildKit's own ADD of an https URL reaches them).
TESTBED_CA = Path("/var/lib/relock-testbed/upstream-ca")


def upstream_authority(folder: Path) -> tuple[ssl.SSLContext, bytes]:
    """A server context for ``localhost`` signed by the test bed's upstream authority, and
    that authority's certificate."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    try:
        ca_pem = (TESTBED_CA / "trusted" / "ca.pem").read_bytes()
        ca_key = serialization.load_pem_private_key((TESTBED_CA / "ca.key").read_bytes(), None)
    except OSError as e:
        pytest.fail(f"the test bed's upstream authority is missing ({e}): run scripts/testbed")
    ca = x509.load_pem_x509_certificate(ca_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            # Python 3.13's strict verification asks for the issuer's key identifier
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.public_key()), critical=False)  # type: ignore[arg-type]
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    (folder / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "leaf.pem", folder / "leaf.key")
    return context, ca_pem

# A plain download the lock does not hold.
DOWNLOAD = """\
RUN --mount=type=bind,source=upstream-ca.pem,target=/run/upstream-ca.pem \\
    python3 -c "import urllib.request as u; u.urlopen('{url}').read()"
"""


@dataclass
class Upstream:
    """The loopback https upstream: its base URL and the requests it heard."""

    url: str
    ca: bytes
    http: str = ""  # the same answers over plain http
    heard: list[str] = field(default_factory=list)


@contextlib.contextmanager
def https_upstream(folder: Path) -> Iterator[Upstream]:
    keys = Path(tempfile.mkdtemp(prefix="relock-test-upstream-"))
    # for "localhost": pip refuses an IP with check_hostname
    context, ca_pem = upstream_authority(keys)
    found: list[Upstream] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            found[0].heard.append(f"{self.path} {self.headers.get('User-Agent', '')}")
            parts = [p for p in self.path.split("/") if p]
            body, code = b"not here\n", 404
            if parts[:1] == ["simple"] and len(parts) == 2:
                rows = "".join(
                    f'<a href="/files/{html.escape(w.name)}#sha256='
                    f'{hashlib.sha256(w.read_bytes()).hexdigest()}">{html.escape(w.name)}</a>\n'
                    for w in sorted(folder.glob("*.whl"))
                    if w.name.split("-")[0].replace("_", "-") == parts[1])
                body, code = f"<html><body>\n{rows}</body></html>\n".encode(), 200
            elif parts[:1] == ["files"] and len(parts) == 2 and (folder / parts[1]).is_file():
                body, code = (folder / parts[1]).read_bytes(), 200
            elif parts[:1] == ["data"]:
                body, code = b"a plain file\n", 200
            self.send_response(code)
            self.send_header("Content-Type", "text/html" if parts[:1] == ["simple"]
                             else "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.append(Upstream(f"https://localhost:{server.server_address[1]}",
                          ca_pem, f"http://127.0.0.1:{plain.server_address[1]}"))
    for s in (server, plain):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield found[0]
    finally:
        for s in (server, plain):
            s.shutdown()
            s.server_close()
        shutil.rmtree(keys, ignore_errors=True)


@dataclass
class World:
    root: Path
    context: Path
    upstream: Upstream
    index: str
    made: list[str]

    def env(self) -> dict[str, str | None]:
        return {"PIP_INDEX_URL": self.index, "PIP_CONFIG_FILE": os.devnull,
                "XDG_CACHE_HOME": str(self.root / "cache"),
                # freeze fetches a piped download from the upstream itself
                "REQUESTS_CA_BUNDLE": str(self.context / "upstream-ca.pem")}

    def tag(self, name: str) -> str:
        tag = f"relock-test-hermetic-{name}:{uuid.uuid4().hex[:8]}"
        self.made.append(tag)
        return tag


def wheel_sha(folder: Path, name: str) -> str:
    return hashlib.sha256(next(folder.glob(f"{name}-*.whl")).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def world(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import docker

    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    root = tmp_path_factory.mktemp("hermetic")
    packages = root / "packages"
    publish_wheel(packages, "hx-a", "1.0", requires=["hx-b"])
    publish_wheel(packages, "hx-b", "1.0")
    publish_wheel(packages, "hx-tool", "1.0")
    publish_wheel(packages, "hx-c", "1.0")
    # The venv's pip comes from the image's ensurepip wheel: relock's index has it too.
    image_pip_wheels(client, packages, f"relock-test-hermetic-probe:{uuid.uuid4().hex[:8]}")
    with https_upstream(packages) as upstream, pypiserver(packages) as index:
        context = root / "ctx"
        context.mkdir()
        shutil.copy(uv, context / "uv")
        (context / "upstream-ca.pem").write_bytes(upstream.ca)
        (context / "Dockerfile.in").write_text(TEMPLATE + CURLS.format(
            url=upstream.url, http=upstream.http))
        (context / "pyproject.toml").write_text(
            '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
            'dependencies = ["hx-a"]\n\n[tool.uv]\npackage = false\n')
        locked = subprocess.run(
            [uv, "lock", "--index-url", f"{upstream.url}/simple/"], cwd=context,
            env={**os.environ, "SSL_CERT_FILE": str(context / "upstream-ca.pem"),
                 "UV_CACHE_DIR": str(root / "uv-cache")},
            capture_output=True, text=True, check=False)
        assert locked.returncode == 0, locked.stderr
        assert f"{upstream.url}/files/hx_a-1.0-py3-none-any.whl" in \
            (context / "uv.lock").read_text()
        (context / "requirements.txt").write_text(
            f"--index-url {upstream.url}/simple/\n"
            f"hx-tool==1.0 --hash=sha256:{wheel_sha(packages, 'hx_tool')}\n")
        made: list[str] = []
        yield World(root, context, upstream, index, made)
        for tag in made:
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(tag, force=True)


def raw_build(world: World, name: str, template: Path) -> str:
    tag = world.tag(name)
    done = subprocess.run(
        ["docker", "buildx", "build", "--network", "host", "--load", "-t", tag,
         "--build-arg", "SSL_CERT_FILE=/run/upstream-ca.pem", "--build-arg",
         f"UPSTREAM={world.upstream.url}", "-f", str(template),
         str(world.context)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return tag


def listing(client: Any, image: str) -> dict[str, str]:
    """Every path of ``image``'s file system, with its size and link target."""
    container = client.containers.create(image, command=["true"], entrypoint=[],
                                         network_mode="none")
    try:
        data = io.BytesIO(b"".join(container.export()))
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=data) as tar:
        return {m.name: f"{m.type!r} {m.size} {m.linkname}" for m in tar.getmembers()}


@dataclass
class Built:
    raw: str
    pinned: str
    lock: Path


@pytest.fixture(scope="module")
def built(world: World, client: Any) -> Built:
    template = world.context / "Dockerfile.in"
    raw = raw_build(world, "raw", template)
    assert any("hx_a" in h for h in world.upstream.heard), world.upstream.heard
    lock = world.root / "app.lock"
    frozen = relock("freeze", raw, "-f", template, "-o", lock, env=world.env())
    assert frozen.exit_code == 0, frozen.output
    text = lock.read_text()
    for name in ("hx-a", "hx-b", "hx-tool", "hx-c"):
        assert f'name = "{name}"' in text, name
    plain = hashlib.sha256(b"a plain file\n").hexdigest()
    assert f'url = "{world.upstream.url}/data/model.bin"\nsha256 = "{plain}"\nsize = 13\n' \
        'path = "/opt/model.bin"' in text, text
    assert f'url = "{world.upstream.url}/data/tool.txt"\nsha256 = "{plain}"' in text, text
    assert f'url = "{world.upstream.url}/data/added.bin"\nsha256 = "{plain}"\nsize = 13\n' \
        'path = "/opt/added.bin"' in text, text
    assert f'url = "{world.upstream.http}/data/asset.txt"\nsha256 = "{plain}"\nsize = 13\n' \
        'path = "/opt/asset.txt"' in text, text
    assert "the lock holds what the URL gives now" in frozen.output, frozen.output

    world.upstream.heard.clear()
    pinned = world.tag("pinned")
    done = relock("build", "-f", template, "--lock", lock, "-t", pinned, "--builder",
                  "buildkit", "--no-cache", "--build-arg", f"UPSTREAM={world.upstream.url}",
                  env=world.env())
    assert done.exit_code == 0, done.output
    assert f"{pinned} matches" in done.output
    # Every request of the pinned build's steps went to the view, none upstream.
    assert world.upstream.heard == []
    return Built(raw, pinned, lock)


def test_uv_lock_and_an_https_index_are_answered_by_the_view(world: World, built: Built,
                                                             client: Any) -> None:
    verified = relock("verify", built.pinned, "--lock", built.lock, env=world.env())
    assert verified.exit_code == 0, verified.output
    diffed = relock("diff", built.raw, built.pinned, env=world.env())
    assert diffed.exit_code == 0, diffed.output
    got = client.containers.run(built.pinned, ["/app/.venv/bin/python", "-c",
                                "import hx_a, hx_b; print('ok')"],
                                remove=True, network_mode="none")
    assert got.strip() == b"ok"
    got = client.containers.run(built.pinned, ["cat", "/opt/model.bin", "/opt/tool.txt",
                                               "/opt/added.bin", "/opt/asset.txt"],
                                remove=True, network_mode="none")
    assert got == b"a plain file\nA PLAIN FILE\na plain file\na plain file\n"


def test_the_pinned_image_holds_no_trace_of_the_view(built: Built, client: Any) -> None:
    raw, pinned = listing(client, built.raw), listing(client, built.pinned)
    only = (sorted(set(raw) - set(pinned))[:10], sorted(set(pinned) - set(raw))[:10])
    assert only == ([], []), only
    assert not [p for p in pinned if p.startswith(("dev/shm/", "etc/ssl/certs/relock"))]
    assert [p for p in pinned if "relock" in p.lower()] == []


def test_an_unlocked_download_fails_naming_its_url_and_step(world: World,
                                                            built: Built) -> None:
    url = f"{world.upstream.url}/data/other.bin"
    template = world.context / "download.Dockerfile.in"
    template.write_text(TEMPLATE + DOWNLOAD.format(url=url))
    world.upstream.heard.clear()
    failed = relock("build", "-f", template, "--lock", built.lock, "-q", "--force",
                    "-t", world.tag("download"), "--builder", "buildkit", "--build-arg",
                    f"UPSTREAM={world.upstream.url}", env=world.env())
    line = assert_clean_failure(failed, 1)
    assert f"{url} is not in the lock (asked for by " in line, line
    assert "urllib.request" in line and "COPY it" in line, line
    assert world.upstream.heard == []


def test_the_pinned_build_again_on_the_offline_host_from_the_store(
        world: World, built: Built, second_host: SecondHost) -> None:
    vendor_and_build_offline(second_host, world.context, built.lock, world.root, world.env(),
                             "--builder", "buildkit", "--build-arg",
                             f"UPSTREAM={world.upstream.url}")
