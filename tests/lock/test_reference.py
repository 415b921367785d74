"""relock.lock.reference: the one image-reference parser (the registry's and the lock's).

``parse`` is what registry clients use; it checks what ``split`` only cuts.
The cases are the union of those the two parsers had (the lock's
``reference.parse``, unchecked, and the registry's ``parse_reference``).
"""

from __future__ import annotations

import pytest

from relock.errors import RegistryError
from relock.lock import reference
from relock.lock.reference import ReferenceError_, normalize_repo, parse, split

D = "sha256:" + "a" * 64
E = "sha256:" + "b" * 64


@pytest.mark.parametrize(("text", "want"), [
    ("debian", ("docker.io", "library/debian", "", "")),
    ("debian:trixie-slim", ("docker.io", "library/debian", "trixie-slim", "")),
    (f"debian:trixie-slim@{D}", ("docker.io", "library/debian", "trixie-slim", D)),
    ("index.docker.io/user/app:1", ("docker.io", "user/app", "1", "")),
    ("registry-1.docker.io/user/app", ("docker.io", "user/app", "", "")),
    (f"127.0.0.1:5000/relock-test-x/store@{D}", ("127.0.0.1:5000", "relock-test-x/store", "", D)),
    ("localhost/a/b/c:v1.2_3", ("localhost", "a/b/c", "v1.2_3", "")),
    ("ghcr.io/org/img", ("ghcr.io", "org/img", "", "")),
    ("me/app", ("docker.io", "me/app", "", "")),
])
def test_references(text: str, want: tuple[str, str, str, str]) -> None:
    for r in (parse(text), split(text)):
        assert (r.host, r.repo, r.tag, r.digest) == want


@pytest.mark.parametrize(("text", "match"), [
    ("debian@sha256:abc", "is not a sha256 digest"),
    ("Debian:1", "is not a valid repository name"),
    ("debian:-x", "is not a valid tag"),
    ("debian:", "is not a valid tag"),
    ("", "is not a valid repository name"),
    ("/tmp/rootfs", "is not a valid repository name"),
    # The registry's parser took "debian@" as debian with no digest; the
    # stricter reading refuses it: '@' promises a digest.
    ("debian@", "nothing after '@'"),
])
def test_bad_references(text: str, match: str) -> None:
    with pytest.raises(ReferenceError_, match=match):
        parse(text)
    with pytest.raises(RegistryError):  # what registry callers have always caught
        parse(text)


def test_split_only_cuts() -> None:
    # Text that may name an image otherwise (an ID, a path) is cut, not refused.
    assert split("sha256:abc") == reference.Reference("sha256", "abc")
    assert split("/tmp/rootfs").name == "/tmp/rootfs"
    assert split("Debian:1") == reference.Reference("Debian", "1")
    assert split("127.0.0.1:5000/x") == reference.Reference("127.0.0.1:5000/x")  # a port


@pytest.mark.parametrize(("ref", "full"), [
    ("debian:12", "docker.io/library/debian"),
    ("docker.io/library/debian", "docker.io/library/debian"),
    ("index.docker.io/debian", "docker.io/library/debian"),
    ("localhost/app", "localhost/app"),
    ("127.0.0.1:5000/team/sci:1", "127.0.0.1:5000/team/sci"),
])
def test_repository_names(ref: str, full: str) -> None:
    assert normalize_repo(ref) == full
    assert parse(ref).repository == full


def test_the_parts_spelled_out() -> None:
    r = parse(f"debian:trixie@{D}")
    assert str(r) == f"docker.io/library/debian:trixie@{D}"
    assert r.ref == D
    assert parse("debian:trixie").ref == "trixie"
    assert parse("debian").ref == "latest"
    assert r.without_digest == "debian:trixie"
    assert r.pinned(E) == f"debian:trixie@{E}"
    assert str(parse("127.0.0.1:5000/x/y:1")) == "127.0.0.1:5000/x/y:1"
