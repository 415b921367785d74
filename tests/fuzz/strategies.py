"""Inputs for the fuzz tests: bytes and text near what each parser expects.

Pure noise finds little in a parser that refuses it on the first byte; these
strategies mix the input's own words (field names, media types, digests,
brackets) with noise, so that the examples reach past the first check.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

DIGEST = "sha256:" + "a" * 64
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """JSON values of any shape whose object keys are mostly ``keys``."""
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64),
                       st.floats(allow_nan=False), st.text(max_size=20),
                       st.sampled_from([DIGEST, OCI_MANIFEST, OCI_INDEX, "linux", "amd64",
                                        "arm64", "v8", "sha256:zz", "", "layers"]))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=8)), inner,
                        max_size=5)), max_leaves=30)


def json_bytes(keys: list[str]) -> st.SearchStrategy[bytes]:
    """JSON documents (mostly objects of ``keys``), sometimes cut or nested too deep."""
    docs = json_values(keys).map(lambda v: json.dumps(v).encode())
    deep = st.integers(60, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
    return st.one_of(docs, docs.map(lambda d: d[: len(d) // 2]), deep, st.binary(max_size=64))


def lines_of(words: list[str], max_size: int = 40) -> st.SearchStrategy[str]:
    """Text of lines made of ``words``, noise, spaces, colons and blank lines."""
    piece = st.one_of(st.sampled_from(words), st.text(max_size=12),
                      st.sampled_from([" ", ":", "\t", "#", ".", "\n", "\n\n", "\\\n", "\r"]))
    return st.lists(piece, max_size=max_size).map("".join)
