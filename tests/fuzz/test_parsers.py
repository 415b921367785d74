"""Property-based fuzzing of every parser of outside input.

The one property: a parser given anything either returns or raises relock's
own error (a ``RelockError``), never another exception (a ``KeyError``, an
``AttributeError``, a ``RecursionError``...), which would reach the user as a
traceback. Bounded by the ``relock`` profile (tests/fuzz/conftest.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from relock.errors import RelockError
from tests.fuzz.strategies import OCI_INDEX, OCI_MANIFEST, json_bytes, json_values, lines_of


def holds(parse: Callable[[], Any]) -> None:
    """``parse()`` returns or raises a RelockError."""
    with contextlib.suppress(RelockError):
        parse()


# -- the lock --------------------------------------------------------------------------

LOCK_WORDS = ["version = 2", "version = 1", "[[apt]]", "[[pip]]", "[[base]]", "[[python]]",
              "[input]", "[distro]", "platforms = [\"linux/amd64\"]", "name = \"a\"",
              "version = \"1\"", "sha256 = \"" + "a" * 64 + "\"", "platform = \"linux/amd64\"",
              "arch = \"amd64\"", "= ", "\"", "[", "]", "{", "}", "=", "'''"]


@given(lines_of(LOCK_WORDS, 60))
def test_the_lock_reader(text: str) -> None:
    from relock.lock import lockfile

    holds(lambda: lockfile.loads(text, "fuzz.lock"))


@given(st.integers(10, 3000))
def test_the_lock_reader_with_deep_nesting(n: int) -> None:
    from relock.lock import lockfile

    holds(lambda: lockfile.loads("version = 2\nx = " + "[" * n + "]" * n, "fuzz.lock"))
    holds(lambda: lockfile.loads("version = 2\nx = " + "{a=" * n + "1" + "}" * n, "fuzz.lock"))


# -- deb822: status, Packages, Release ----------------------------------------------------

DEB_WORDS = ["Package: a", "Package:", "Version: 1.0", "Architecture: amd64", "Status: ",
             "install ok installed", "Filename: pool/a.deb", "SHA256: " + "a" * 64,
             "Size: 10", "Size: x", "Source: b (2)", "Description: x", " .", " cont",
             "Components: main", "Architectures: amd64 all", "Acquire-By-Hash: yes",
             "No-Support-for-Architecture-all: Packages", "SHA256:",
             " " + "b" * 64 + " 10 main/binary-amd64/Packages", "Types: deb", "URIs: http://x/",
             "Suites: trixie", "Signed-By: /x.gpg", "Enabled: no",
             "deb [trusted=yes] http://x/ s c"]


@given(lines_of(DEB_WORDS))
def test_the_dpkg_status_and_deb822_readers(text: str) -> None:
    from relock.inventory import apt

    holds(lambda: apt.stanzas(text, "status"))
    holds(lambda: apt.parse_deb822(text, "/etc/apt/sources.list.d/x.sources"))
    holds(lambda: apt.parse_one_line(text, "/etc/apt/sources.list"))


@given(lines_of(DEB_WORDS).map(lambda t: t.encode("utf-8", "surrogatepass")),
       st.sets(st.sampled_from(["a", "b", "", "Package:"])))
def test_the_packages_index_reader(data: bytes, names: set[str]) -> None:
    from relock.upstream import debindex

    holds(lambda: list(debindex.stanzas_of(data, names)))
    holds(lambda: debindex.pick(data, {(n, "1.0", "amd64") for n in names}))


@given(lines_of(DEB_WORDS))
def test_the_release_reader(text: str) -> None:
    from relock.upstream import archive

    holds(lambda: archive._parse_release(text))


@given(st.binary(max_size=200), st.sampled_from(["P.xz", "P.gz", "P.lz4", "Packages"]))
def test_the_index_decompressor(data: bytes, name: str) -> None:
    """Its contract is ValueError for data that is not what its name says (callers word
    it); LimitError past the limit; nothing else."""
    from relock.upstream import debindex

    with contextlib.suppress(RelockError, ValueError):
        debindex.decompress(data, name, "fuzz")


# -- OCI manifests, indexes, descriptors ----------------------------------------------------

OCI_KEYS = ["mediaType", "schemaVersion", "config", "layers", "manifests", "digest", "size",
            "platform", "os", "architecture", "variant", "annotations", "artifactType",
            "subject", "urls"]


@given(json_bytes(OCI_KEYS), st.sampled_from([OCI_MANIFEST, OCI_INDEX, ""]))
def test_oci_manifests_and_indexes(data: bytes, media_type: str) -> None:
    from relock.image import registrysource
    from relock.store import store
    from relock.upstream.registry import Manifest, json_object

    m = Manifest(media_type or OCI_MANIFEST, data, "sha256:" + "0" * 64)
    holds(lambda: json_object(data, "fuzz"))
    holds(lambda: (m.json(), m.array("layers"), m.objects("manifests"), m.field("mediaType")))
    holds(lambda: store.manifest_type(data))
    holds(lambda: store.children(m))
    holds(lambda: registrysource._entries(m))


@given(json_values(OCI_KEYS))
def test_oci_descriptors_and_platforms(value: Any) -> None:
    from relock.lock import platform
    from relock.store import store

    holds(lambda: store.Descriptor.from_json(value, "fuzz"))
    holds(lambda: platform.from_descriptor(value))
    holds(lambda: platform.descriptor_text(value))


@given(st.text(max_size=30))
def test_platform_words(text: str) -> None:
    from relock.lock import platform

    holds(lambda: platform.chosen(text))
    holds(lambda: platform.chosen_list([text]))
    holds(lambda: platform.spelled(text))


# -- image configs ---------------------------------------------------------------------

CONFIG_KEYS = ["architecture", "os", "variant", "created", "rootfs", "diff_ids", "type",
               "history", "created_by", "empty_layer", "comment", "config", "Env", "Labels"]


@given(json_values(CONFIG_KEYS))
def test_image_configs(value: Any) -> None:
    from relock.image import layers, registrysource

    cfg = value if isinstance(value, dict) else {"rootfs": value}
    holds(lambda: registrysource.image_diff_ids(cfg, "fuzz"))
    holds(lambda: layers.layers_of(cfg, "fuzz"))


@given(json_bytes(CONFIG_KEYS))
def test_image_config_bytes(data: bytes) -> None:
    from relock.image import layers

    holds(lambda: layers.layers_of(layers.parse_json(data, "fuzz"), "fuzz"))
    holds(lambda: layers._docker_manifest(data, "fuzz"))


# -- the Dockerfile reader -------------------------------------------------------------------

DOCKERFILE_WORDS = ["FROM debian:trixie-slim", "FROM ", "AS build", "FROM build", "RUN ",
                    "apt-get install -y a", "pip install b==1", "ARG X", "ARG X=1", "${X}",
                    "$X", "COPY --from=build / /", "<<EOF", "EOF", "<<-'END'", "END", "\\",
                    "# escape=`", "# syntax=docker/dockerfile:1", "SHELL [\"/bin/bash\"]",
                    "[\"a\"", "ONBUILD RUN x", "--platform=$BUILDPLATFORM", "\ufeff", "`"]


@given(lines_of(DOCKERFILE_WORDS, 50), st.dictionaries(st.sampled_from(["X", "Y"]),
                                                        st.text(max_size=10), max_size=2))
def test_the_dockerfile_reader(text: str, args: dict[str, str]) -> None:
    from relock.template import dockerfile

    holds(lambda: dockerfile.parse(text, "Dockerfile.in", args))


# -- registry headers ------------------------------------------------------------------------

HEADER_WORDS = ["<", ">", ";", ",", " ", "rel=\"next\"", "rel=next", "rel=\"prev\"",
                "</v2/a/tags/list?n=1&last=b>", "<http://[::1", "<//x>", "<http://x:99999/>",
                "Bearer ", "Basic ", "realm=\"", "service=\"", "scope=\"", "\"", "=",
                "http://127.0.0.1/token", "Mon, 01 Jan 2024 00:00:00 GMT", "1e400", "nan",
                "-1", "120", "Fri, 31 Dec 9999 23:59:59 GMT", "Sat, 01 Jan 0001 00:00:00 GMT"]


@given(lines_of(HEADER_WORDS, 12))
def test_registry_headers(header: str) -> None:
    from relock.upstream import http, registry

    holds(lambda: registry.next_link(header, "http://127.0.0.1:5000/v2/a/tags/list"))
    holds(lambda: registry.parse_challenge(header))
    holds(lambda: http.retry_after(header, 1.0))
    wait = http.retry_after(header, 1.0)
    assert 0.0 <= wait <= http.MAX_WAIT
