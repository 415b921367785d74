"""The package index client: simple API pages, file:// indexes, the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from relock.errors import IndexError_
from relock.upstream.index import Index, IndexConfig, _parse_html

H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64


def local_index(tmp_path: Path) -> Path:
    page = tmp_path / "simple" / "demo-pkg" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(
        "<html><body>"
        f'<a href="../../files/demo_pkg-1.0-py3-none-any.whl#sha256={H1}">w</a>'
        f'<a href="../../files/demo-pkg-1.0.tar.gz#sha256={H2}">s</a>'
        f'<a href="../../files/demo_pkg-1.1-py3-none-any.whl#sha256={H3}">newer</a>'
        '<a href="../../files/demo_pkg-1.0-cp313-cp313-linux_x86_64.whl">no hash</a>'
        "</body></html>")
    return tmp_path / "simple"


def test_html_links_with_hash_fragments() -> None:
    got = _parse_html(f'<a href="https://h/p/x-1.0.tar.gz#sha256={H1}&foo=1">x</a>')
    assert got == [("x-1.0.tar.gz", H1)]


def test_hashes_of_one_version_from_a_file_index(tmp_path: Path) -> None:
    index = Index(IndexConfig(urls=(local_index(tmp_path).as_uri(),)))
    assert index.hashes("Demo_Pkg", "1.0") == (f"sha256:{H1}", f"sha256:{H2}")
    assert index.hashes("demo-pkg", "1.1") == (f"sha256:{H3}",)


def test_missing_version_names_the_package(tmp_path: Path) -> None:
    index = Index(IndexConfig(urls=(local_index(tmp_path).as_uri(),)))
    with pytest.raises(IndexError_, match=r"demo-pkg==2\.0 has no files with hashes"):
        index.hashes("demo-pkg", "2.0")


def test_cache_answers_the_second_time(tmp_path: Path) -> None:
    url = local_index(tmp_path).as_uri()
    first = Index(IndexConfig(urls=(url,)), tmp_path / "cache")
    first.hashes_many([("demo-pkg", "1.0"), ("demo-pkg", "1.1")])
    assert first.requests_made == 2
    second = Index(IndexConfig(urls=(url,)), tmp_path / "cache")
    assert second.hashes_many([("demo-pkg", "1.0")]) == {
        ("demo-pkg", "1.0"): (f"sha256:{H1}", f"sha256:{H2}")}
    assert second.requests_made == 0


def test_unreachable_index_is_one_line() -> None:
    index = Index(IndexConfig(urls=("http://127.0.0.1:9/simple",), timeout=2))
    with pytest.raises(IndexError_,
                       match=r"package index http://127\.0\.0\.1:9/simple is unreachable"):
        index.hashes("six", "1.0")
