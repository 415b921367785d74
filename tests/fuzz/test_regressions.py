"""Crashes found with hostile and fuzzed input, each a fixed case that must stay fixed.

Each was a traceback before (the exception named), and is now a RelockError
of one line.
"""

from __future__ import annotations

import json

import pytest

from relock.errors import LimitError, RegistryError, RelockError
from relock.image import layers, registrysource
from relock.store import store
from relock.upstream.registry import Manifest, json_object, next_link, parse_challenge

DEEP = b"[" * 100_000 + b"]" * 100_000
M = "application/vnd.oci.image.manifest.v1+json"


def test_a_deep_registry_manifest_was_a_recursion_error() -> None:
    m = Manifest(M, b'{"x": ' + DEEP + b"}", "sha256:" + "0" * 64)
    with pytest.raises(LimitError, match="nested deeper than 64 levels"):
        m.json()
    with pytest.raises(LimitError, match="nested deeper than 64 levels"):
        json_object(b'{"mediaType": ' + DEEP + b"}", "a manifest")


def test_a_deep_store_manifest_type_was_a_recursion_error() -> None:
    with pytest.raises(LimitError, match="nested deeper than 64 levels"):
        store.manifest_type(b'{"a": ' + DEEP + b"}")


def test_a_deep_image_config_was_a_recursion_error() -> None:
    with pytest.raises(LimitError, match="nested deeper than 64 levels"):
        layers.parse_json(b'{"a": ' + DEEP + b"}", "config")
    with pytest.raises(LimitError, match="nested deeper than 64 levels"):
        layers._docker_manifest(DEEP, "archive")


@pytest.mark.parametrize("rootfs", [[1], "layers", 7, True])
def test_an_image_config_whose_rootfs_is_no_object_was_an_attribute_error(
        rootfs: object) -> None:
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": rootfs}
    with pytest.raises(RegistryError, match="'rootfs' is not an object"):
        registrysource.image_diff_ids(cfg, "r/x@sha256:1")
    with pytest.raises(RelockError, match=r"rootfs\.diff_ids"):
        layers.layers_of(cfg, "x")


def test_a_diff_id_that_is_no_string_was_passed_on() -> None:
    with pytest.raises(RegistryError, match="is not a sha256 digest"):
        registrysource.image_diff_ids({"rootfs": {"diff_ids": [{"a": 1}]}}, "x")


def test_a_registry_manifest_whose_media_type_is_no_string() -> None:
    """``mediaType: 7`` was taken as the type (and failed later, elsewhere)."""
    doc = json.dumps({"mediaType": 7, "layers": []}).encode()
    assert json_object(doc, "m")["mediaType"] == 7  # read as it is; its type is checked after


def test_link_and_challenge_headers() -> None:
    url = "http://127.0.0.1:5000/v2/a/tags/list"
    assert next_link('</v2/a/tags/list?last=b>; rel="next"', url) == (
        "http://127.0.0.1:5000/v2/a/tags/list?last=b")
    assert next_link('</v2/p>; rel="prev", </v2/n>; rel="next"', url) == (
        "http://127.0.0.1:5000/v2/n")
    assert next_link("<http://[::1>; rel=next", url) == ""  # urljoin's ValueError
    assert next_link("<>; rel=next", url) == ""
    assert next_link("garbage", url) == ""
    assert parse_challenge('Bearer realm="https://t/token",Service="r"') == (
        "bearer", {"realm": "https://t/token", "service": "r"})
    assert parse_challenge("") == ("", {})
