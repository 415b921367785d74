"""Who may import whom: the seams stay seams.

Read from the source (every import, at the top or inside a function), so a
lazy import counts as much as an eager one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "relock"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "relock":
                found |= {f"relock.{a.name}" for a in node.names}
    return found


def modules() -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE.parent)): imports(p) for p in PACKAGE.rglob("*.py")}


def test_only_the_engine_module_talks_to_the_docker_sdk() -> None:
    users = {name for name, found in modules().items()
             if any(m.split(".")[0] == "docker" for m in found)}
    assert users == {"relock/image/engine.py"}


def test_diff_compares_locks_only() -> None:
    found = modules()["relock/lock/diff.py"]
    assert not found & {"relock.image.engine", "relock.freeze.freeze", "relock.freeze.sides",
                        "relock.build.verify"}


def test_core_modules_never_import_click() -> None:
    users = {name for name, found in modules().items()
             if any(m.split(".")[0] == "click" for m in found)}
    assert all(name.startswith("relock/cli/") for name in users), users
