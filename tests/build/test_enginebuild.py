"""Turning build logs into one line that names the cause (pip's and apt's own wording)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from relock.build.enginebuild import build, explain_failure
from relock.build.view import Misses
from relock.errors import BuildError
from relock.image.engine import BuildEvent
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


def test_locked_version_missing_names_package_and_version() -> None:
    log = "Reading package lists...\nE: Version '1.0' for 'relock-hello' was not found\n"
    line = explain_failure(log)
    assert line is not None
    assert line.startswith("APT package version not in the lock: relock-hello 1.0;")


def test_unlocked_apt_package_is_named() -> None:
    line = explain_failure("E: Unable to locate package relock-hello\n")
    assert line == ("APT package relock-hello is not in the lock; the build installs what "
                    "the frozen image did not have: re-freeze")


def test_pip_version_not_in_the_lock() -> None:
    log = ("ERROR: Could not find a version that satisfies the requirement six==1.16.0 "
           "(from versions: 1.17.0)\nERROR: No matching distribution found for six==1.16.0\n")
    line = explain_failure(log)
    assert line is not None and line.startswith("six==1.16.0 is not in the lock (it has 1.17.0)")


def test_pip_package_the_view_was_asked_for() -> None:
    misses = Misses()
    misses.add_pip("click")
    log = "ERROR: No matching distribution found for click\n"
    line = explain_failure(log.replace("click", "click"), misses)
    assert line is not None and line.startswith("Python package click is not in the lock")


def test_mismatch_seen_by_the_view_wins() -> None:
    misses = Misses()
    misses.add_mismatch("six-1.17.0-py2.py3-none-any.whl from the index does not match the lock")
    line = explain_failure("anything", misses)
    assert line is not None and "six-1.17.0" in line and "refusing" in line


def test_tampered_wheel() -> None:
    line = explain_failure(PIP_MISMATCH)
    assert line is not None
    assert line.startswith("relocktest-probe==1.0 does not match the lock")
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
    with pytest.raises(BuildError, match="APT package nosuch is not in the lock") as e:
        build(builder, Path("/ctx"), "Dockerfile")
    assert "Unable to locate package nosuch" in e.value.log_tail


def test_a_refused_build_and_a_build_without_an_image() -> None:
    with pytest.raises(BuildError, match="the engine refused the build: no such file"):
        build(FakeBuilder(BuildEvent("refused", "no such file")), Path("/c"), "D")
    with pytest.raises(BuildError, match="the build ended without an image"):
        build(FakeBuilder(BuildEvent("log", "done")), Path("/c"), "D")


# pip 24's words when an sdist's build requirements cannot be installed.
BUILD_DEPS = """\
Collecting legacy-thing==0.3 (from -r requirements.txt (line 1))
  Downloading http://127.0.0.1:7780/pypi/files/legacy-thing-0.3.tar.gz (4.1 kB)
  Installing build dependencies: started
  Installing build dependencies: finished with status 'error'
  error: subprocess-exited-with-error

  \u00d7 pip subprocess to install build dependencies did not run successfully.
  \u2502 exit code: 1
  \u2570\u2500> [3 lines of output]
      Looking in indexes: http://127.0.0.1:7780/pypi/simple/
      ERROR: Could not find a version that satisfies the requirement setuptools>=40.8.0 \
(from versions: none)
      ERROR: No matching distribution found for setuptools>=40.8.0
      [end of output]
"""


def test_a_build_requirement_is_named_as_such_not_as_something_to_re_freeze() -> None:
    """Re-freezing the same image cannot add what is not installed in it: the line
    says what would help."""
    line = explain_failure(BUILD_DEPS)
    assert line is not None
    assert line.startswith("setuptools>=40.8.0 is not in the lock: pip needs it to build "
                           "legacy-thing-0.3.tar.gz from source")
    assert "not among the lock's build requirements" in line
    assert "re-freeze with --context" in line
    assert "list 'setuptools>=40.8.0' in its [build-system] requires" in line
    assert "another version" not in line
    # The view's own account of the miss says the same.
    misses = Misses()
    misses.add_pip("setuptools")
    line = explain_failure(BUILD_DEPS.replace("ERROR: Could not find", "ERROR: Cannot find"),
                           misses)
    assert line is not None and line.startswith("setuptools is not in the lock: pip needs it")


def test_the_projects_own_build_backend() -> None:
    log = ("Processing /app\n  Installing build dependencies: started\n"
           "  Installing build dependencies: finished with status 'error'\n"
           "      ERROR: Could not find a version that satisfies the requirement hatchling "
           "(from versions: none)\n")
    line = explain_failure(log)
    assert line is not None and line.startswith(
        "hatchling is not in the lock: pip needs it to build app from source")


def test_a_package_the_lock_lacks_altogether_is_not_called_another_version() -> None:
    log = ("ERROR: Could not find a version that satisfies the requirement click "
           "(from versions: none)\nERROR: No matching distribution found for click\n")
    line = explain_failure(log)
    assert line is not None and line.startswith(
        "click is not in the lock: the frozen image did not have it installed")


def test_a_url_the_view_does_not_serve_is_named_with_its_step() -> None:
    """Every RUN has the view as its proxy: an unlocked URL is named, with the RUN that
    asked for it and what would help (a plain download is not a package: COPY it)."""
    log = ("#9 [app 3/4] RUN mkdir -p /dev/shm/relock/parts && echo x || exit 1; "
           "curl -fsSL https://files.test/data/model.bin -o /opt/model.bin\n"
           "#9 0.412 curl: (22) The requested URL returned error: 404\n")
    misses = Misses()
    misses.add_foreign("https://files.test/data/model.bin")
    line = explain_failure(log, misses)
    assert line == (
        "https://files.test/data/model.bin is not in the lock (asked for by [app 3/4] RUN "
        "curl -fsSL https://files.test/data/model.bin -o /opt/model.bin): the locked view "
        "serves only the lock's files; relock locks APT and Python packages, not plain "
        "downloads (curl, wget, ADD of a URL): put the file in the build context and COPY "
        "it, or install it from a package")
    wheel = Misses()
    wheel.add_foreign("https://files.test/packages/six-1.17.0-py2.py3-none-any.whl")
    line = explain_failure("Step 4/5 : RUN uv sync --frozen\nerror: 404\n", wheel)
    assert line is not None and "(asked for by Step 4/5 : RUN uv sync --frozen)" in line
    assert "uv.lock" in line and "re-freeze" in line


def test_a_step_that_does_not_trust_the_view_names_the_variables() -> None:
    misses = Misses()
    misses.add_untrusted("https://files.test/ (TLSV1_ALERT_UNKNOWN_CA)")
    line = explain_failure("#5 [2/3] RUN ./fetch\n", misses)
    assert line is not None and line.startswith(
        "[2/3] RUN ./fetch did not trust the locked view's certificate for https://files.test/")
    assert "SSL_CERT_FILE" in line
