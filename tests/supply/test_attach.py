"""relock attach, then relock verify oci:// with no lock file, against a loopback registry in
Python (tests/support/ociregistry.py), with and without the referrers API.

The same against docker-registry itself: tests/supply/test_attach_registry.py; hostile
registries: tests/hostile/test_attach.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from relock.upstream import referrers
from tests.hostile.contract import invoke, one_line_error
from tests.support import ociregistry
from tests.support.ociregistry import Registry


@pytest.fixture(params=[False, True], ids=["tag-schema", "referrers-api"])
def registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    with ociregistry.serve(referrers_api=request.param) as reg:
        yield reg


def frozen(reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """team/app:1 frozen from the registry into app.lock (cwd: tmp_path); the app's digest."""
    _, app = ociregistry.base_and_app(reg)
    monkeypatch.chdir(tmp_path)
    Path("Dockerfile.in").write_text(f"FROM {reg.host}/library/debian:trixie-slim\n"
                                     "RUN apt-get install hello\n")
    r = invoke("freeze", f"oci://{reg.host}/team/app:1", "--no-index", "--no-archive",
               "--snapshot", "20261101T000000Z", "-o", "app.lock")
    assert r.exit_code == 0, r.output
    return tmp_path / "app.lock", app


def test_attach_then_verify_from_the_image_alone(registry: Registry, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    lock, app = frozen(registry, tmp_path, monkeypatch)
    r = invoke("attach", f"oci://{registry.host}/team/app:1", "--lock", str(lock), "--sbom")
    assert r.exit_code == 0, r.output
    kinds = [line.split()[0] for line in r.stdout.splitlines()]
    assert kinds == [referrers.LOCK_TYPE, referrers.CYCLONEDX_TYPE, referrers.SPDX_TYPE]
    listed = "the referrers API" if registry.referrers_api else \
        f"the tag sha256-{app[7:]}"
    assert f"attached to {app}, listed by {listed}" in r.stderr
    assert (("team/app", f"sha256-{app[7:]}") in registry.manifests) != registry.referrers_api
    # The lock's artifact: the empty config, the lock's bytes as its one blob, the subject.
    digest = r.stdout.split()[1]
    doc = json.loads(registry.manifests[("team/app", digest)][1])
    assert doc["artifactType"] == referrers.LOCK_TYPE
    assert doc["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert registry.blobs[doc["config"]["digest"]] == b"{}"
    assert doc["subject"]["digest"] == app
    assert registry.blobs[doc["layers"][0]["digest"]] == lock.read_bytes()
    lock.unlink()  # verify has nothing but the image
    for ref in (f"team/app@{app}", "team/app:1"):
        r = invoke("verify", f"oci://{registry.host}/{ref}", "--json")
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert out["matches"] and out["lock"] == f"{registry.host}/team/app@{digest}"
    assert not any("/library/debian" in line and "PUT" in line for line in registry.log)


def test_a_rebuilt_image_that_drifted_is_found_out(registry: Registry, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    lock, app = frozen(registry, tmp_path, monkeypatch)
    assert invoke("attach", f"oci://{registry.host}/team/app@{app}", "--lock",
                  str(lock)).exit_code == 0
    # Another image under the same tag has no lock attached: verify says so, exit 2.
    _, other = ociregistry.base_and_app(registry, hello="2.10-6")
    r = invoke("verify", f"oci://{registry.host}/team/app:1")
    one_line_error(r, f"@{other}: no lock is attached to the image")
    # The lock attached to the first, handed to the second: drift, exit 1.
    blob = json.loads(registry.manifests[("team/app", referrers.fallback_tag(app))][1]) \
        if not registry.referrers_api else None
    assert blob is None or len(blob["manifests"]) == 1
    lock.write_bytes(registry.blobs[_lock_blob(registry, app)])
    r = invoke("verify", f"oci://{registry.host}/team/app@{other}", "--lock", str(lock))
    assert r.exit_code == 1, r.output
    assert "apt hello:amd64: locked 2.10-5, image has 2.10-6" in r.stdout


def _lock_blob(reg: Registry, subject: str) -> str:
    for (_, _ref), (_, data) in reg.manifests.items():
        doc = json.loads(data)
        if doc.get("artifactType") == referrers.LOCK_TYPE and \
                doc.get("subject", {}).get("digest") == subject:
            return str(doc["layers"][0]["digest"])
    raise AssertionError("no lock attached")


def test_attaching_again_replaces_the_lock_in_the_tag(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with ociregistry.serve() as reg:
        lock, app = frozen(reg, tmp_path, monkeypatch)
        first = invoke("attach", f"oci://{reg.host}/team/app:1", "--lock", str(lock), "--sbom")
        again = invoke("attach", f"oci://{reg.host}/team/app:1", "--lock", str(lock))
        assert first.stdout.splitlines()[0] == again.stdout.strip()  # the same bytes: reproducible
        lock.write_text(lock.read_text().replace("# Rebuild", "# rebuild"))
        third = invoke("attach", f"oci://{reg.host}/team/app:1", "--lock", str(lock))
        index = json.loads(reg.manifests[("team/app", referrers.fallback_tag(app))][1])
        types = sorted(e["artifactType"] for e in index["manifests"])
        assert types == sorted([referrers.LOCK_TYPE, referrers.CYCLONEDX_TYPE,
                                referrers.SPDX_TYPE])
        assert third.stdout.split()[1] in {e["digest"] for e in index["manifests"]}


def test_attach_refuses_a_lock_without_the_images_platform(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ociregistry.serve() as reg:
        lock, _ = frozen(reg, tmp_path, monkeypatch)
        ociregistry.put_image(reg, "team/arm", [{"etc/os-release": ociregistry.OS_RELEASE}],
                              "1", arch="arm64")
        r = invoke("attach", f"oci://{reg.host}/team/arm:1", "--lock", str(lock))
        one_line_error(r, "the lock has no part for linux/arm64")
        assert not any(line.startswith(("PUT", "POST")) for line in reg.log)
        one_line_error(invoke("attach", "team/arm:1", "--lock", str(lock)),
                       "oci://HOST/REPO@sha256:")
