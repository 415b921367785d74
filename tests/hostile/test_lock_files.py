"""Files given as a lock that are no lock: devices, FIFOs, huge, too nested, not UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

from relock.lock import lockfile
from tests.hostile.contract import GOOD, invoke, one_line_error


# Issue 12's review: B1.
def test_a_deeply_nested_lock_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "deep.lock"
    bad.write_text("version = 1\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    one_line_error(invoke("diff", str(bad), str(bad)), "nested too deeply")


# Issue 12's review: B1.
def test_a_device_as_a_lock_is_refused() -> None:
    one_line_error(invoke("diff", "/dev/zero", "/dev/zero"),
                   "/dev/zero: cannot read: not a regular file")


def test_fifo_as_a_lock_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "x.lock"
    os.mkfifo(fifo)
    one_line_error(invoke("diff", str(fifo), str(fifo)), "not a regular file")


def test_a_lock_too_big_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.lock"
    with open(big, "wb") as f:
        f.truncate(lockfile.MAX_BYTES + 1)  # sparse: costs no disk
    one_line_error(invoke("diff", str(big), str(big)), "too big for a lock file")


def test_a_lock_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.lock"
    bad.write_bytes(GOOD.encode().replace(b'"bash"', b'"ba\xffsh"'))
    one_line_error(invoke("diff", str(bad), str(bad)), "not UTF-8")
