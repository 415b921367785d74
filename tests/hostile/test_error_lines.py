"""How relock fails: a usage error or a real process's error is one line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile.contract import invoke, one_line_error


# Issue 12's review: B14.
@pytest.mark.parametrize(("args", "fragment"), [
    (["nope"], "No such command 'nope'"),
    (["freeze", "--bogus"], "No such option '--bogus'"),
    (["diff", "a"], "Missing argument 'NEW'"),
    (["diff", "a", "b", "--format", "x"], "Invalid value for '--format'"),
    (["freeze", "--build-arg", "novalue", "x"], "is not KEY=VALUE"),
    (["freeze"], "give either IMAGE or --rootfs DIR"),
])
def test_usage_errors_are_one_line(args: list[str], fragment: str) -> None:
    line = one_line_error(invoke(*args), fragment)
    assert line.endswith("--help')")


# Issue 12's review: B1, B14.
def test_a_real_process_errs_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.lock"
    deep.write_text("version = 1\nx = " + "{a=" * 3000 + "}" * 3000 + "\n")
    for args in (["diff", str(deep), str(deep)], ["freeze", "--bogus"],
                 ["diff", "/dev/zero", str(deep)]):
        done = subprocess.run([sys.executable, "-m", "relock", *args], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path, check=False)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("relock: error: ") and done.stderr.count("\n") == 1
