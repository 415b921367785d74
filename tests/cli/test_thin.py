"""The CLI is thin: each command declares options and calls one use case of the core.

Read from the source with ``ast``, as tests/test_layout.py reads imports.

The rule, for every function of ``relock/cli/*.py`` decorated as a click
command (``@cli.command(...)``, ``@store.command(...)``, ``@click.command``;
a group's function has no body to speak of and is not one):

- it is at most ``MAX_LINES`` lines long, counted from its ``def`` to its
  last line, less its docstring;
- its body calls exactly one *core function*: a name imported (at the
  module's top or inside the function) from a ``relock.*`` module other
  than ``relock.cli``, ``relock.errors`` and ``relock.progress``, called
  directly (``run_freeze(...)``) or through an imported module
  (``core.verify(...)``). Names that start with a capital letter are the
  request values a command fills in, not use cases, and do not count.
  Helpers of the CLI module (printing an outcome) may call the core's
  formatters: they are presentation, not the command's logic.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[2] / "relock" / "cli"
MAX_LINES = 40
NOT_CORE = ("relock.cli", "relock.errors", "relock.progress")


def _is_core(module: str) -> bool:
    return (module == "relock" or module.startswith("relock.")) and not any(
        module == m or module.startswith(m + ".") for m in NOT_CORE)


def core_names(tree: ast.AST) -> set[str]:
    """Names bound by imports from core modules anywhere in ``tree``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _is_core(node.module):
            found |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.asname or a.name.split(".")[0] for a in node.names if _is_core(a.name)}
    return found


def _is_command_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, ast.Attribute) and target.attr == "command"


def commands() -> list[tuple[str, ast.FunctionDef, set[str]]]:
    """(module file, command function, core names of its module) of every CLI command."""
    found = []
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = core_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                    _is_command_decorator(d) for d in node.decorator_list):
                found.append((path.name, node, names | core_names(node)))
    return found


def length(fn: ast.FunctionDef) -> int:
    """Lines from ``def`` to the end, less the docstring's."""
    assert fn.end_lineno is not None
    lines = fn.end_lineno - fn.lineno + 1
    first = fn.body[0]
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        assert first.end_lineno is not None
        lines -= first.end_lineno - first.lineno + 1
    return lines


def core_calls(fn: ast.FunctionDef, names: set[str]) -> list[str]:
    """The core functions ``fn`` calls (see the module docstring for what counts)."""
    calls = []
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in names:
            callee = func.id
        elif (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
              and func.value.id in names):
            callee = f"{func.value.id}.{func.attr}"
        else:
            continue
        if not callee.rsplit(".", 1)[-1][:1].isupper():
            calls.append(callee)
    return calls


COMMANDS = commands()


def test_every_command_of_the_cli_is_found() -> None:
    """The reading above finds each command the group lists (and store's three)."""
    from relock.cli.common import COMMAND_MODULES

    names = {fn.name for _, fn, _ in COMMANDS}
    assert len(COMMANDS) == len(set(COMMAND_MODULES) - {"store"}) + 3, names
    assert {"freeze", "update", "build_cmd", "verify_cmd", "ls", "copy"} <= names


@pytest.mark.parametrize(("module", "fn", "names"), COMMANDS,
                         ids=[f"{m}:{fn.name}" for m, fn, _ in COMMANDS])
def test_a_command_is_short(module: str, fn: ast.FunctionDef, names: set[str]) -> None:
    assert length(fn) <= MAX_LINES, f"{module}:{fn.name} is {length(fn)} lines"


@pytest.mark.parametrize(("module", "fn", "names"), COMMANDS,
                         ids=[f"{m}:{fn.name}" for m, fn, _ in COMMANDS])
def test_a_command_calls_one_use_case(module: str, fn: ast.FunctionDef,
                                      names: set[str]) -> None:
    calls = core_calls(fn, names)
    assert len(calls) == 1, f"{module}:{fn.name} calls {calls or 'no core function'}"


def test_the_rule_counts_what_it_says() -> None:
    """A command that decides things itself is caught; requests and errors are not counted."""
    source = (
        "from relock.errors import EXIT_DIFFERS\n"
        "from relock.cli.common import user_errors\n"
        "@cli.command()\n"
        "def cmd(x):\n"
        "    '''Doc.\n\n    More doc.\n    '''\n"
        "    from relock.lock import lockfile\n"
        "    from relock.build.command import BuildRequest, run_build\n"
        "    with user_errors():\n"
        "        lock = lockfile.read(x)\n"
        "        run_build(BuildRequest(lock))\n"
    )
    tree = ast.parse(source)
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    names = core_names(tree)
    assert names == {"lockfile", "BuildRequest", "run_build"}
    assert core_calls(fn, names) == ["lockfile.read", "run_build"]
    assert length(fn) == 6
