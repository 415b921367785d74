"""Who may import whom: the seams stay seams, the layers stay layers, no cycles.

Read from the source (every import, at the top or inside a function, and
``from relock.pkg import module`` as an import of that module), so a lazy
import counts as much as an eager one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "relock"

# Low to high: a module imports only from its own layer or lower ones.
LAYERS = ("shared", "lock", "upstream", "image", "inventory", "template", "freeze", "build",
          "store", "update", "supply", "cli")
# The modules of relock/ itself, outside any subpackage.
SHARED = {"relock", "relock.errors", "relock.files", "relock.progress", "relock.blobs",
          "relock.bounds"}


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


def dotted(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph() -> dict[str, set[str]]:
    """Each relock module's relock imports, resolved to modules (relative ones too)."""
    paths = {dotted(p): p for p in PACKAGE.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, *([base] if base else [])])
                # ``from relock.pkg import module`` imports the module.
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        out[name] = found
    return out


def layer(module: str) -> str:
    if module in SHARED:
        return "shared"
    if module == "relock.__main__":
        return "cli"
    return module.split(".")[1]


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle of ``edges`` as a path that ends where it starts; [] if there is none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str]:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt in on_path:
                return [*path[path.index(nxt):], nxt]
            if nxt not in done:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        on_path.discard(node)
        done.add(node)
        return []

    for start in sorted(edges):
        if start not in done:
            found = visit(start)
            if found:
                return found
    return []


def test_the_finder_reports_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_every_module_is_in_a_layer() -> None:
    unknown = sorted(m for m in graph() if layer(m) not in LAYERS)
    assert not unknown, f"modules in no layer of LAYERS: {unknown}"


def test_no_module_imports_a_higher_layer() -> None:
    upward = sorted(f"{m} -> {t}" for m, found in graph().items() for t in found
                    if LAYERS.index(layer(t)) > LAYERS.index(layer(m)))
    assert not upward, f"imports against the layering {' < '.join(LAYERS)}: {upward}"


def test_only_the_cli_imports_the_cli() -> None:
    users = sorted(m for m, found in graph().items()
                   if any(t == "relock.cli" or t.startswith("relock.cli.") for t in found)
                   and layer(m) != "cli")
    assert not users, f"only relock/cli and relock/__main__.py may import relock.cli: {users}"


def test_every_subpackage_has_an_init() -> None:
    folders = {p.parent for p in PACKAGE.rglob("*.py")} | {
        d for d in PACKAGE.rglob("*") if d.is_dir() and d.name != "__pycache__"}
    missing = sorted(str(d.relative_to(PACKAGE.parent)) for d in folders
                     if not (d / "__init__.py").is_file())
    assert not missing, missing


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
