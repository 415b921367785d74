"""Hostile registries for relock verify oci:// without a lock file: a tampered lock blob,
an artifact that refers to another image, a blob that is no lock, endless referrers answers.
Each is one line, exit 2, and nothing is verified."""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from relock import bounds
from relock.upstream import referrers
from relock.upstream import registry as reg
from tests.hostile.contract import GOOD, invoke, one_line_error
from tests.support import ociregistry
from tests.support.ociregistry import Registry, digest


@pytest.fixture
def attached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Registry, str]]:
    """team/app:1 with its lock attached by the tag schema; the app's digest."""
    from tests.supply.test_attach import frozen

    with ociregistry.serve() as r:
        lock, app = frozen(r, tmp_path, monkeypatch)
        assert invoke("attach", f"oci://{r.host}/team/app:1", "--lock", str(lock)).exit_code == 0
        lock.unlink()
        yield r, app


def artifact_of(r: Registry, app: str) -> dict[str, object]:
    index = json.loads(r.manifests[("team/app", referrers.fallback_tag(app))][1])
    return dict(json.loads(r.manifests[("team/app", index["manifests"][0]["digest"])][1]))


def list_only(r: Registry, app: str, data: bytes) -> str:
    """Push ``data`` as the artifact manifest the fallback tag of ``app`` lists alone."""
    r.manifests[("team/app", digest(data))] = (reg.OCI_MANIFEST, data)
    r.put_manifest("team/app", {"schemaVersion": 2, "mediaType": reg.OCI_INDEX, "manifests": [
        {"mediaType": reg.OCI_MANIFEST, "digest": digest(data), "size": len(data),
         "artifactType": referrers.LOCK_TYPE}]}, referrers.fallback_tag(app))
    return digest(data)


def verify(r: Registry, app: str) -> object:
    return invoke("verify", f"oci://{r.host}/team/app@{app}")


def test_a_tampered_lock_blob_is_refused(attached: tuple[Registry, str]) -> None:
    r, app = attached
    blob = artifact_of(r, app)["layers"][0]["digest"]  # type: ignore[index]
    r.blobs[blob] = r.blobs[blob].replace(b"hello", b"hellp")
    one_line_error(verify(r, app), "content has digest sha256:", f"not {blob}; refused")


def test_an_artifact_for_another_image_is_refused(attached: tuple[Registry, str]) -> None:
    r, app = attached
    doc = artifact_of(r, app)
    other = "sha256:" + "e" * 64
    doc["subject"] = {"mediaType": reg.OCI_MANIFEST, "digest": other, "size": 1}
    list_only(r, app, json.dumps(doc).encode())
    one_line_error(verify(r, app), f"the artifact refers to '{other}', not to the image {app}")


@pytest.mark.parametrize(("blob", "said"), [
    (b"not = [toml", "not valid TOML"),
    (GOOD.replace('name = "bash"', 'name = "bash\\u001b[31m"', 1).encode(), "bash"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_a_blob_that_is_no_lock_is_refused(attached: tuple[Registry, str], blob: bytes,
                                           said: str) -> None:
    r, app = attached
    assert blob != GOOD.encode()
    doc = artifact_of(r, app)
    r.blobs[digest(blob)] = blob
    doc["layers"] = [{"mediaType": referrers.LOCK_TYPE, "digest": digest(blob),
                      "size": len(blob)}]
    list_only(r, app, json.dumps(doc).encode())
    line = one_line_error(verify(r, app), said)
    assert "\x1b" not in line


def test_a_blob_bigger_than_a_lock_is_not_read(attached: tuple[Registry, str]) -> None:
    r, app = attached
    doc = artifact_of(r, app)
    doc["layers"][0]["size"] = 1 << 40  # type: ignore[index]
    list_only(r, app, json.dumps(doc).encode())
    one_line_error(verify(r, app), "blob size")


def endless(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", reg.OCI_INDEX)
    h.send_header("Connection", "close")
    h.end_headers()
    chunk = b" " * 65536
    try:
        while True:
            h.wfile.write(chunk)
    except OSError:
        pass


def test_an_endless_referrers_answer_is_cut_off(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with ociregistry.serve(referrers_api=True) as r:
        _, app = ociregistry.base_and_app(r)
        r.routes[f"/v2/team/app/referrers/{app}"] = endless
        one_line_error(verify(r, app), "the referrers answer is over 4 MiB (relock's limit")


def test_referrers_pages_without_end_are_refused(tmp_path: Path) -> None:
    with ociregistry.serve(referrers_api=True) as r:
        _, app = ociregistry.base_and_app(r)
        page = json.dumps({"schemaVersion": 2, "mediaType": reg.OCI_INDEX,
                           "manifests": []}).encode()
        path = f"/v2/team/app/referrers/{app}"
        r.routes[path] = lambda h: ociregistry.send(h, 200, page, Link=f'<{path}>; rel="next"')
        one_line_error(verify(r, app), "next page is elsewhere or again")
        n = [0]

        def onward(h: http.server.BaseHTTPRequestHandler) -> None:
            n[0] += 1
            ociregistry.send(h, 200, page, Link=f'<{path}?n={n[0]}>; rel="next"')

        r.routes[path] = onward
        one_line_error(verify(r, app), f"number of pages is over {bounds.REFERRER_PAGES} pages")


def test_a_referrers_tag_that_is_no_index_is_refused(attached: tuple[Registry, str]) -> None:
    r, app = attached
    r.put_manifest("team/app", {"schemaVersion": 2, "mediaType": reg.OCI_MANIFEST},
                   referrers.fallback_tag(app))
    one_line_error(verify(r, app), "the referrers tag is not an image index")


def test_attach_refuses_a_lock_that_breaks_its_grammar(tmp_path: Path) -> None:
    with ociregistry.serve() as r:
        ociregistry.base_and_app(r)
        lock = tmp_path / "x.lock"
        lock.write_text(GOOD.replace('name = "bash"', 'name = "bash\\u001b[31m"'))
        line = one_line_error(invoke("attach", f"oci://{r.host}/team/app:1", "--lock",
                                     str(lock), "--sbom"), "apt[0].name")
        assert "\x1b" not in line
        assert not any(entry.startswith(("PUT", "POST")) for entry in r.log)
