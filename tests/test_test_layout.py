"""How the tests hang together: a unit test runs without tests/e2e.

tests/e2e needs an engine and the test bed's tools; a unit test may lean on
tests/support/ (which both use), never on tests.e2e. Read from the source
(every import, at the top or inside a function), as tests/test_layout.py does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
E2E = ROOT / "tests" / "e2e"


def imported(text: str, package: str) -> set[str]:
    """Every module a source in ``package`` imports, relative imports made absolute, and
    each name of a ``from MODULE import name`` as MODULE.name (it may be a module)."""
    parts = package.split(".")
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = parts[:len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return found


def e2e_imports(text: str, package: str) -> set[str]:
    return {m for m in imported(text, package) if m == "tests.e2e" or m.startswith("tests.e2e.")}


def test_no_module_outside_tests_e2e_imports_tests_e2e() -> None:
    outside = [p for folder in ("tests", "benchmarks") for p in (ROOT / folder).rglob("*.py")
               if not p.is_relative_to(E2E)]
    assert len(outside) > 20  # the walk found the tests
    users = {str(p.relative_to(ROOT)): e2e_imports(p.read_text(),
                                                   ".".join(p.relative_to(ROOT).parts[:-1]))
             for p in outside}
    assert {name: found for name, found in users.items() if found} == {}


@pytest.mark.parametrize("source", [
    "import tests.e2e.pyindex\n",
    "from tests.e2e.pyindex import free_port\n",
    "from tests import e2e\n",
    "def f() -> None:\n    from tests.e2e import pyindex\n",
    "from ..e2e import pyindex\n",
])
def test_every_way_of_importing_e2e_is_seen(source: str) -> None:
    assert e2e_imports(source, "tests.cli")


def test_support_and_look_alikes_are_not_e2e() -> None:
    source = "from tests.support.aptarchive import Deb\nimport tests.e2e_like\nfrom . import x\n"
    assert e2e_imports(source, "tests.cli") == set()
