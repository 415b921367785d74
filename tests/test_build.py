"""Turning build logs into one line that names the cause (pip's and apt's own wording)."""

from __future__ import annotations

from relock.build import explain_failure

PIP_MISMATCH = """\
ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have \
updated the package versions, please update the hashes. Otherwise, examine the package \
contents carefully; someone may have tampered with them.
    relocktest-probe==1.0 from http://127.0.0.1:3141/packages/relocktest_probe-1.0-py3-none-any\
.whl (from -r /var/lib/relock/pip/opt-venv.txt (line 2)):
        Expected sha256 1111111111111111111111111111111111111111111111111111111111111111
        Expected     or 2222222222222222222222222222222222222222222222222222222222222222
             Got        3333333333333333333333333333333333333333333333333333333333333333
"""


def test_missing_apt_version_names_package_version_and_snapshot() -> None:
    log = "Reading package lists...\nE: Version '1.0' for 'relock-hello' was not found\n"
    assert explain_failure(log, "20260101T000000Z") == (
        "locked APT package version not in the snapshot 20260101T000000Z: relock-hello 1.0; "
        "re-freeze, or render against a snapshot that has it (--apt-snapshot-url)")


def test_package_gone_altogether() -> None:
    line = explain_failure("E: Unable to locate package relock-hello\n")
    assert line is not None and "relock-hello" in line and "the archive" in line


def test_tampered_wheel() -> None:
    line = explain_failure(PIP_MISMATCH)
    assert line is not None
    assert line.startswith("relocktest-probe==1.0 downloaded from the index does not match")
    assert "1111111111111111" in line and "3333333333333333" in line


def test_unknown_failure_is_left_to_the_caller() -> None:
    assert explain_failure("The command '/bin/sh -c false' returned a non-zero code: 1") is None
