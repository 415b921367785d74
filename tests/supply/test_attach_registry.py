"""relock attach and relock verify oci:// against docker-registry itself, no engine.

docker-registry 2.8 has no referrers API (GET /v2/<name>/referrers/<digest> is 404), so this
drives the referrers tag schema. The test starts its own docker-registry on a free loopback
port (stopped by its pid) and puts debian:trixie-slim into it with skopeo from the test
bed's registry on 127.0.0.1:5000; without those it is skipped, saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from relock.upstream import referrers
from relock.upstream import registry as reg
from tests.hostile.contract import invoke, one_line_error
from tests.support.dockerregistry import serve

TESTBED = "127.0.0.1:5000"


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A docker-registry on a free loopback port: its host:port and its storage folder."""
    binary = shutil.which("docker-registry")
    if binary is None or shutil.which("skopeo") is None:
        pytest.skip("docker-registry or skopeo is not installed")
    if not reachable(f"http://{TESTBED}/v2/library/debian/tags/list"):
        pytest.skip(f"the test bed's registry on {TESTBED} does not answer")
    with serve(binary, tmp_path) as host:
        yield host, tmp_path / "data"


def copy(source: str, dest: str) -> None:
    subprocess.run(["skopeo", "copy", "--override-os", "linux", "--override-arch", "amd64",
                    "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{source}", f"docker://{dest}"],
                   check=True, capture_output=True, timeout=300)


def test_attach_and_verify_with_docker_registry(own_registry: tuple[str, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    host, data = own_registry
    copy(f"{TESTBED}/library/debian:trixie-slim", f"{host}/library/debian:trixie-slim")
    copy(f"{TESTBED}/library/debian:trixie-slim", f"{host}/team/app:1")
    client = reg.Registry(host)
    app = client.manifest("team/app", "1").digest
    assert client.referrers("team/app", app) is None  # no referrers API: the tag schema
    monkeypatch.chdir(tmp_path)
    Path("Dockerfile.in").write_text(f"FROM {host}/library/debian:trixie-slim\n")
    r = invoke("freeze", f"oci://{host}/team/app:1", "--no-index", "--no-archive",
               "-o", "app.lock")
    assert r.exit_code == 0, r.output
    r = invoke("attach", f"oci://{host}/team/app:1", "--lock", "app.lock", "--sbom")
    assert r.exit_code == 0, r.output
    assert f"listed by the tag sha256-{app[7:]}" in r.stderr
    lock_artifact = r.stdout.split()[1]
    index = client.manifest("team/app", f"sha256-{app[7:]}")
    assert {e["artifactType"] for e in index.objects("manifests")} == {
        referrers.LOCK_TYPE, referrers.CYCLONEDX_TYPE, referrers.SPDX_TYPE}
    lock_bytes = Path("app.lock").read_bytes()
    Path("app.lock").unlink()

    r = invoke("verify", f"oci://{host}/team/app@{app}")
    assert r.exit_code == 0, r.output
    assert f"matches {host}/team/app@{lock_artifact}" in r.stdout

    # An artifact that refers to another image, listed in this image's tag: refused.
    copy(f"{TESTBED}/library/debian:bookworm-slim", f"{host}/team/app:other")
    other = client.manifest("team/app", "other")
    stray = referrers.attach(client, "team/app", other,
                             [referrers.Artifact(referrers.LOCK_TYPE, lock_bytes, "app.lock")])
    entry = next(e for e in client.manifest("team/app", f"sha256-{other.digest[7:]}")
                 .objects("manifests"))
    doc = {"schemaVersion": 2, "mediaType": reg.OCI_INDEX, "manifests": [
        e for e in index.objects("manifests") if e["artifactType"] != referrers.LOCK_TYPE
    ] + [entry]}
    client.push_manifest("team/app", f"sha256-{app[7:]}", reg.OCI_INDEX,
                         json.dumps(doc).encode())
    assert stray.artifacts[0][1] == entry["digest"]
    one_line_error(invoke("verify", f"oci://{host}/team/app@{app}"),
                   f"refers to '{other.digest}', not to the image {app}; refused")

    # The lock's blob changed on the registry's disk: its digest no longer holds.
    client.push_manifest("team/app", f"sha256-{app[7:]}", reg.OCI_INDEX, index.data)
    blob = reg.sha256_digest(lock_bytes)[7:]
    stored = data / "docker/registry/v2/blobs/sha256" / blob[:2] / blob / "data"
    stored.write_bytes(lock_bytes.replace(b"version = 2", b"version = 3"))
    one_line_error(invoke("verify", f"oci://{host}/team/app@{app}"),
                   f"not sha256:{blob}; refused")
