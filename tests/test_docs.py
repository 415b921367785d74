"""The documents stay true to the tree: the package map, the links, the README's length."""

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
    """The links of a Markdown text that point into the repository, anchors kept."""
    fenced = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return [target for target in LINK.findall(fenced)
            # a URL (https:, mailto:) or an anchor in the same page
            if not (re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"))]


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown text's headings."""
    fenced = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.*)$", fenced, flags=re.MULTILINE)}


def test_the_architecture_map_names_every_module_and_no_other() -> None:
    named = set(MODULE.findall(ARCHITECTURE.read_text()))
    actual = modules()
    assert not actual - named, f"modules missing from docs/architecture.md: {actual - named}"
    assert not named - actual, f"docs/architecture.md names no such module: {named - actual}"


def test_every_relative_link_points_at_a_file() -> None:
    broken = []
    for doc in documents():
        for target in relative_links(doc.read_text()):
            path, _, anchor = target.partition("#")
            linked = doc.parent / path
            if not linked.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken


def test_the_link_reader_finds_links_and_skips_urls() -> None:
    text = ('[a](docs/a.md) ![b](img/b.png "t") [c](https://example.org/c) [d](#top)\n'
            "[e](docs/e.md#part) [f](mailto:x)\n```\n[g](not/a/link.md)\n```\n")
    assert relative_links(text) == ["docs/a.md", "img/b.png", "docs/e.md#part"]


def test_anchors_are_githubs() -> None:
    text = "# The store: `relock vendor`, `build --store`\n## `relock update [NAME...]`\n"
    assert anchors(text) == {"the-store-relock-vendor-build---store", "relock-update-name"}


def test_the_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move detail into docs/"


# A path of the repository named in backticks or in a help text: `tests/lock/test_diff.py`,
# docs/outdated-json.md. Globs and placeholders (`tests/<pkg>/...`) are not paths.
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:relock|tests|docs|benchmarks|scripts)/[\w./-]+\.(?:py|md))\b")


def test_every_path_the_documents_name_exists() -> None:
    missing = {f"{doc.relative_to(ROOT)}: {path}" for doc in documents()
               for path in REPO_PATH.findall(doc.read_text()) if not (ROOT / path).exists()}
    assert not missing, sorted(missing)


def test_every_document_the_code_names_exists() -> None:
    missing = {f"{src.relative_to(ROOT)}: {path}" for src in (ROOT / "relock").rglob("*.py")
               for path in REPO_PATH.findall(src.read_text())
               if path.startswith("docs/") and not (ROOT / path).exists()}
    assert not missing, sorted(missing)


def test_the_documented_layering_is_the_one_the_layout_test_holds() -> None:
    from tests.test_layout import LAYERS

    block = ARCHITECTURE.read_text().split("## The layering", 1)[1].split("\n\n    ", 1)[1]
    documented = re.findall(r"^\s*(?:< )?(\w+)\s+\(", block.split("\n\n", 1)[0], re.MULTILINE)
    assert tuple(documented) == LAYERS[:-1]  # the last, cli, stands alone: "< cli"
    assert block.split("\n\n", 1)[0].rstrip().endswith("< cli")
