"""A store copies an index's entries by platform, whatever way each side spells it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relock.store import store as st
from relock.upstream.registry import OCI_INDEX, OCI_MANIFEST
from tests.store.test_store import blob_desc, digest_of, manifest_of


def _index(s: st.Store) -> tuple[str, bytes, bytes]:
    """An index of an amd64 and an ``arm64/v8`` image, and each one's layer."""
    layers = {arch: os.urandom(1000) for arch in ("amd64", "arm64")}
    entries = []
    for arch, layer in layers.items():
        m = s.put_manifest(manifest_of({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": blob_desc(s, arch.encode()),
            "layers": [blob_desc(s, layer, "application/vnd.oci.image.layer.v1.tar")]}))
        platform = {"architecture": arch, "os": "linux"}
        if arch == "arm64":
            platform["variant"] = "v8"  # as Docker Hub's official images say it
        entries.append({**m.to_json(), "platform": platform})
    index = s.put_manifest(manifest_of({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                        "manifests": entries}))
    return index.digest, layers["amd64"], layers["arm64"]


@pytest.mark.parametrize("wanted", ["linux/arm64", "linux/arm64/v8"])
def test_an_arm64_filter_follows_the_arm64_v8_entry(tmp_path: Path, wanted: str) -> None:
    a = st.DirStore.open_layout(tmp_path / "a", create=True)
    digest, amd64, arm64 = _index(a)
    b = st.DirStore.open_layout(tmp_path / "b", create=True)
    st.copy_image(a, b, digest, platforms={wanted})
    assert b.path(digest_of(arm64)).is_file()
    assert not b.path(digest_of(amd64)).exists()
