"""relock.bounds: its limits are the ones docs/limits.md lists, and its readers keep to them."""

from __future__ import annotations

import gzip
import lzma
import re
import time
from pathlib import Path

import lz4.frame
import pytest

from relock import bounds
from relock.errors import LimitError

ROOT = Path(__file__).resolve().parents[1]


def limits() -> dict[str, int]:
    return {name: value for name, value in vars(bounds).items()
            if re.fullmatch(r"[A-Z][A-Z0-9_]+", name) and name not in ("KiB", "MiB", "GiB")
            and isinstance(value, int)}


def test_docs_limits_lists_every_limit_with_its_value() -> None:
    text = (ROOT / "docs" / "limits.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_0-9]+)` \| ([^|]+) \|", text, re.MULTILINE))
    assert set(rows) == set(limits())
    for name, value in limits().items():
        counts = ("DEPTH", "PAGES", "REDIRECTS", "REFERRERS", "ENTRIES", "RECORDS", "DOWNLOADS")
        shown = str(value) if name.endswith(counts) else bounds.size_text(value)
        assert rows[name].strip() == shown, name


def test_size_text() -> None:
    assert [bounds.size_text(n) for n in (4 << 20, 64 << 10, 32 << 30, 1000)] == [
        "4 MiB", "64 KiB", "32 GiB", "1000 bytes"]


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress, lz4.frame.compress],
                         ids=["gz", "xz", "lz4"])
def test_a_bomb_stops_at_the_limit(compress: object) -> None:
    name = {gzip.compress: "x.gz", lzma.compress: "x.xz", lz4.frame.compress: "x.lz4"}[
        compress]  # type: ignore[index]
    bomb = compress(b"\0" * (64 << 20))  # type: ignore[operator]
    start = time.monotonic()
    with pytest.raises(LimitError, match=r"^src: the file decompressed is over 1 MiB "
                                         r"\(relock's limit, see docs/limits.md\); refused$"):
        bounds.decompress(bomb, name, 1 << 20, "src")
    assert time.monotonic() - start < 1
    assert bounds.decompress(bomb + compress(b"tail"), name, 65 << 20,  # type: ignore[operator]
                             "src").endswith(b"\0tail")


@pytest.mark.parametrize("name", ["x.gz", "x.xz", "x.lz4"])
def test_cut_or_foreign_data_is_a_value_error(name: str) -> None:
    whole = {"x.gz": gzip.compress, "x.xz": lzma.compress, "x.lz4": lz4.frame.compress}[name](
        b"Package: a\n" * 1000)
    for data in (whole[: len(whole) // 2], b"not compressed at all"):
        with pytest.raises(ValueError) as e:
            bounds.decompress(data, name, 1 << 20, "src")
        assert not isinstance(e.value, LimitError)


def test_a_plain_file_is_bounded_too() -> None:
    assert bounds.decompress(b"abc", "Packages", 3, "s") == b"abc"
    with pytest.raises(LimitError, match="s: the file is over 2 bytes"):
        bounds.decompress(b"abc", "Packages", 2, "s")


def test_json_deeper_than_the_limit_is_refused_not_a_recursion_error() -> None:
    assert bounds.load_json("[" * 64 + "]" * 64) is not None
    for text in ("[" * 65 + "]" * 65, '{"a":' * 100 + "1" + "}" * 100,
                 "[" * 200_000 + "]" * 200_000):
        with pytest.raises(bounds.JSONTooDeep, match="nested deeper than 64 levels"):
            bounds.load_json(text)
    with pytest.raises(ValueError, match="not UTF-8"):
        bounds.load_json(b"\xff\xfe{")
