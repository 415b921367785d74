"""relock.update.command: what the update and outdated use cases refuse before any work.

The plan itself is tests/test_update.py's; the build, freeze and verify of an
update are tests/e2e's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relock.build.command import RebuildFlags
from relock.errors import LockfileError, UsageError
from relock.update.command import (
    OutdatedRequest,
    UpdateRequest,
    move_text,
    run_outdated,
    run_update,
)
from relock.update.update import Move


@pytest.mark.parametrize(("request_", "message"), [
    (UpdateRequest(names=("numpy",), flags=RebuildFlags(store="s")),
     "update takes new versions from the archives and the index; --store"),
    (UpdateRequest(), "name the packages to update, or pass --security or --all"),
    (UpdateRequest(everything=True), "no --lock given and no locks/"),
])
def test_an_update_that_cannot_be_done_is_a_usage_error(
        request_: UpdateRequest, message: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=message):
        run_update(request_)


def test_an_update_of_a_missing_lock_names_it(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="no such lock file"):
        run_update(UpdateRequest(security=True, lock_path=tmp_path / "nope.lock"))


def test_outdated_checks_the_snapshot_time_first(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^Invalid value for --snapshot: 'soon' is not "
                                         r"YYYYMMDDTHHMMSSZ$"):
        run_outdated(OutdatedRequest(lock_path=tmp_path / "nope.lock", snapshot="soon"))


@pytest.mark.parametrize(("move", "text"), [
    (Move("apt", "libssl3", "3.0.1-1", "3.0.2-1", "trixie-security", security=True),
     "apt libssl3 3.0.1-1 -> 3.0.2-1 (security)"),
    (Move("pip", "idna", "", "3.10", "/opt/venv", why="needed"), "pip idna (new) -> 3.10 (needed)"),
    (Move("pip", "numpy", "2.1.0", "2.2.0", "/opt/venv"), "pip numpy 2.1.0 -> 2.2.0"),
])
def test_a_move_is_named_in_one_line(move: Move, text: str) -> None:
    assert move_text(move) == text
