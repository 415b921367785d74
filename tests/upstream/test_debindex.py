"""The Packages index reader: only wanted stanzas, any compression, fast."""

from __future__ import annotations

import gzip
import lzma
import time

import lz4.frame
import pytest

from relock.upstream.debindex import DebEntry, decompress, pick, stanzas_of


def stanza(name: str, version: str, arch: str = "amd64", first: str = "Package") -> str:
    fields = {
        "Package": name,
        "Version": version,
        "Architecture": arch,
        "Maintainer": "Someone <s@example.invalid>",
        "Description": f"the {name} package\n a long line\n .\n Filename: not/this.deb",
        "Filename": f"pool/main/{name[0]}/{name}/{name}_{version}_{arch}.deb",
        "Size": str(len(name) * 100),
        "SHA256": (name.encode().hex() * 64)[:64],
    }
    order = [first, *[k for k in fields if k != first]]
    return "".join(f"{k}: {fields[k]}\n" for k in order)


INDEX = "\n".join([
    stanza("libc6", "2.41-12"),
    stanza("tzdata", "2025b-4", "all"),
    stanza("libc6", "2.41-10"),
    # Package need not come first in a stanza.
    stanza("bash", "5.2.37-2", first="Version"),
    "Package: nohash\nVersion: 1\nArchitecture: amd64\nFilename: pool/n.deb\nSize: 1\n",
    stanza("libc6-dev", "2.41-12"),
]).encode()


def test_pick_takes_only_the_wanted_triples() -> None:
    found = pick(INDEX, [("libc6", "2.41-12", "amd64"), ("tzdata", "2025b-4", "all"),
                         ("bash", "5.2.37-2", "amd64"), ("nohash", "1", "amd64"),
                         ("libc6", "9", "amd64"), ("absent", "1", "amd64")])
    assert sorted(found) == [("bash", "5.2.37-2", "amd64"), ("libc6", "2.41-12", "amd64"),
                             ("tzdata", "2025b-4", "all")]
    assert found[("libc6", "2.41-12", "amd64")] == DebEntry(
        "pool/main/l/libc6/libc6_2.41-12_amd64.deb", (b"libc6".hex() * 64)[:64], 500)
    # A continuation line of Description that looks like a field is not a field.
    assert found[("tzdata", "2025b-4", "all")].filename.startswith("pool/main/t/tzdata/")


def test_stanzas_of_gives_every_version_of_a_name() -> None:
    versions = sorted(k[1] for k, _ in stanzas_of(INDEX, {"libc6"}))
    assert versions == ["2.41-10", "2.41-12"]


@pytest.mark.parametrize(("name", "pack"), [
    ("x_Packages.xz", lzma.compress),
    ("x_Packages.gz", gzip.compress),
    ("x_Packages.lz4", lz4.frame.compress),
    ("x_Packages", lambda b: b),
])
def test_decompress(name: str, pack: object) -> None:
    assert callable(pack)
    assert decompress(pack(INDEX), name) == INDEX


def test_decompress_refuses_corrupt_data() -> None:
    for name in ("P.xz", "P.gz", "P.lz4"):
        with pytest.raises(ValueError, match=name):
            decompress(b"not compressed at all", name)


def test_a_suite_sized_index_is_read_in_well_under_a_second() -> None:
    # ~65,000 stanzas, like a Debian suite's main/binary-amd64; a few hundred wanted.
    big = "\n".join(stanza(f"pkg{i}", f"1.{i}-1") for i in range(65_000)).encode()
    wanted = [(f"pkg{i}", f"1.{i}-1", "amd64") for i in range(0, 65_000, 200)]
    start = time.perf_counter()
    found = pick(big, wanted)
    took = time.perf_counter() - start
    assert len(found) == len(wanted)
    assert took < 1.0, f"{took:.2f} s for {len(big) >> 20} MB"
