"""Turning build logs into one line that names the cause (pip's and apt's own wording)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from relock.build import build, explain_failure
from relock.engine import BuildEvent
from relock.errors import BuildError
from tests.fakes import FakeBuilder

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


# -- reading the engine's events (an in-memory builder) ----------------------------

def test_build_streams_the_log_and_returns_the_image() -> None:
    builder = FakeBuilder(BuildEvent("log", "Step 1/1 : FROM scratch"),
                          BuildEvent("image", "sha256:" + "a" * 64))
    seen: list[str] = []
    result = build(builder, Path("/ctx"), "Dockerfile", tag="t:1", build_args={"A": "1"},
                   log=seen.append, extra_hosts={"h": "127.0.0.1"})
    assert result.image_id == "sha256:" + "a" * 64 and seen == ["Step 1/1 : FROM scratch"]
    (request,) = builder.requests
    assert (request.context, request.context_tar, request.network_mode) == (
        Path("/ctx"), None, "host")
    assert dict(request.build_args) == {"A": "1"} and dict(request.extra_hosts) == {
        "h": "127.0.0.1"}


def test_a_tar_file_object_is_the_context_as_is() -> None:
    builder = FakeBuilder(BuildEvent("log", "Successfully built 0123456789ab"))
    tar = io.BytesIO(b"")
    assert build(builder, tar, "Dockerfile").image_id == "0123456789ab"
    assert builder.requests[0].context_tar is tar and builder.requests[0].context is None


def test_a_failed_step_is_explained_with_the_log_tail() -> None:
    builder = FakeBuilder(BuildEvent("log", "E: Unable to locate package nosuch"),
                          BuildEvent("error", "The command returned a non-zero code: 100\n"))
    with pytest.raises(BuildError, match="locked APT package not in the snapshot S: nosuch") as e:
        build(builder, Path("/ctx"), "Dockerfile", snapshot="S")
    assert "Unable to locate package nosuch" in e.value.log_tail


def test_a_refused_build_and_a_build_without_an_image() -> None:
    with pytest.raises(BuildError, match="the engine refused the build: no such file"):
        build(FakeBuilder(BuildEvent("refused", "no such file")), Path("/c"), "D")
    with pytest.raises(BuildError, match="the build ended without an image"):
        build(FakeBuilder(BuildEvent("log", "done")), Path("/c"), "D")
