"""The documents stay true to the tree: the package map and the links."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# A module is named in the map as a path in backticks: `relock/lock/lockfile.py`.
MODULE = re.compile(r"`(relock/[A-Za-z0-9_/]+\.py)`")
# A Markdown link or image: [text](target) or ![alt](target "title").
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def modules() -> set[str]:
    """Every module file of the package; an empty ``__init__.py`` is no module to describe."""
    return {str(p.relative_to(ROOT)) for p in (ROOT / "relock").rglob("*.py")
            if not (p.name == "__init__.py" and not p.read_text().strip())}


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            ROOT / "benchmarks" / "README.md"]


def relative_links(text: str) -> list[str]:
    """The links of a Markdown text that point into the repository."""
    fenced = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    found = []
    for target in LINK.findall(fenced):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor in the same page
        found.append(target.split("#", 1)[0])
    return found


def test_the_architecture_map_names_every_module_and_no_other() -> None:
    named = set(MODULE.findall(ARCHITECTURE.read_text()))
    actual = modules()
    assert not actual - named, f"modules missing from docs/architecture.md: {actual - named}"
    assert not named - actual, f"docs/architecture.md names no such module: {named - actual}"


def test_every_relative_link_points_at_a_file() -> None:
    broken = [f"{doc.relative_to(ROOT)}: {target}"
              for doc in documents() if doc.exists()
              for target in relative_links(doc.read_text())
              if not (doc.parent / target).exists()]
    assert not broken


def test_the_link_reader_finds_links_and_skips_urls() -> None:
    text = ('[a](docs/a.md) ![b](img/b.png "t") [c](https://example.org/c) [d](#top)\n'
            "[e](docs/e.md#part) [f](mailto:x)\n```\n[g](not/a/link.md)\n```\n")
    assert relative_links(text) == ["docs/a.md", "img/b.png", "docs/e.md"]

