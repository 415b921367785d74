"""``relock render``: where the pinned Dockerfile goes, and that it never half-replaces one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from relock.cli import cli
from relock.lock import lockfile
from relock.lock.lockfile import Base, Input
from relock.template import dockerfile
from tests.factories import make_lock

TEMPLATE = "FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y tini\n"
DIGEST = "sha256:" + "b" * 64


def relock(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    template = tmp_path / "Dockerfile"
    template.write_text(TEMPLATE)
    sha = dockerfile.parse(TEMPLATE).sha256
    lock = make_lock(input=Input(str(template), sha),
                     base=(Base(0, "debian:bookworm-slim", DIGEST),))
    lockfile.write(lock, tmp_path / "app.lock")
    return tmp_path


def test_default_output_is_beside_the_template_and_never_the_template(project: Path) -> None:
    result = relock("render", "--lock", project / "app.lock")
    assert result.exit_code == 0, result.output
    out = project / "Dockerfile.relock"
    assert result.stdout == f"wrote {out}\n"
    assert (project / "Dockerfile").read_text() == TEMPLATE
    assert f"FROM debian:bookworm-slim@{DIGEST}\n" in out.read_text()


def test_output_equal_to_the_template_is_refused(project: Path) -> None:
    result = relock("render", "--lock", project / "app.lock", "-o", project / "Dockerfile")
    assert result.exit_code == 2
    assert result.stderr.startswith("relock: error:") and "is the template itself" in (
        result.stderr)
    assert (project / "Dockerfile").read_text() == TEMPLATE


def test_an_interrupted_render_leaves_the_previous_output(project: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = project / "Dockerfile.relock"
    out.write_text("previous\n")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    result = CliRunner().invoke(cli, ["render", "--lock", str(project / "app.lock"),
                                      "-o", str(out)])
    assert result.exit_code != 0
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in project.iterdir()) == [
        "Dockerfile", "Dockerfile.relock", "app.lock"]
