"""relock.build.command: the render, verify and freeze use cases, and the rebuild flags.

Engine-backed builds are tests/e2e's; these check the use cases' decisions
on in-memory images and files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relock.build.command import (
    RENDERED_NAME,
    RebuildFlags,
    RenderRequest,
    VerifyRequest,
    run_freeze,
    run_render,
    run_verify,
)
from relock.errors import UsageError
from relock.freeze.command import FreezeRequest
from relock.image.engine import ImageInfo
from relock.lock.lockfile import Lock
from relock.template.render import DEFAULT_VIEW_PORT
from tests.fakes import FakeSource, digest, layers, repo_digest
from tests.freeze.test_command import engine_with_app


def frozen_app(tmp_path: Path) -> tuple[FakeSource, Path, Path]:
    """The fake engine, the template and the lock ``app`` was frozen into."""
    source, template = engine_with_app(tmp_path)
    outcome = run_freeze(FreezeRequest(image="app", dockerfile=template,
                                       output=tmp_path / "app.lock", no_index=True,
                                       no_archive=True), images=source)
    return source, template, outcome.path


def test_the_flags_give_the_rebuild_its_options() -> None:
    options = RebuildFlags(apt_mirrors=("http://m/debian",), force=True).options(
        Path("locks/x.lock"), tag="x:1", platform="linux/arm64", nocache=True)
    assert (options.lock_path, options.mirrors, options.force, options.use_snapshot,
            options.view_port) == ("locks/x.lock", ("http://m/debian",), True, True,
                                   DEFAULT_VIEW_PORT)
    assert (options.tag, options.platform, options.nocache) == ("x:1", "linux/arm64", True)
    assert RebuildFlags(apt_live=True, view_port=0).options(Path("x")).view_port == 0


@pytest.mark.parametrize("flags", [RebuildFlags(store="s", apt_live=True),
                                   RebuildFlags(store="s", apt_snapshot_url="http://s"),
                                   RebuildFlags(store="s", apt_mirrors=("http://m",))])
def test_a_store_excludes_every_other_source(flags: RebuildFlags) -> None:
    with pytest.raises(UsageError, match="--store takes every file from the store"):
        flags.options(Path("x.lock"))


def test_freeze_of_a_template_without_build_stages_builds_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.image import enginefiles

    def no_engine(source: object) -> object:
        raise AssertionError("an engine client was asked for")

    monkeypatch.setattr(enginefiles, "sdk_engine", no_engine)
    assert frozen_app(tmp_path)[2].is_file()


def test_freeze_hands_build_stages_to_the_engine_behind_the_images(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.build import stages
    from relock.image import enginefiles
    from relock.image.buildkit import WithBuilder

    source, template = engine_with_app(tmp_path)
    source.add(ImageInfo("sha256:" + "1" * 64, layers("a"),
                         (repo_digest("python", digest("e")),)), "python:3.13-slim")
    template.write_text("FROM python:3.13-slim AS build\nRUN make\n"
                        "FROM debian:trixie-slim\nCOPY --from=build /x /x\n")
    engine = object()
    seen: list[tuple[object, Path]] = []

    def freeze_stages(client: object, df: object, context: Path, final: Lock,
                      *_: object) -> Lock:
        seen.append((client, context))
        return final

    monkeypatch.setattr(enginefiles, "sdk_engine", lambda images: engine)
    monkeypatch.setattr(stages, "freeze_stages", freeze_stages)
    run_freeze(FreezeRequest(image="app", dockerfile=template, output=tmp_path / "a.lock",
                             no_index=True, no_archive=True, context=tmp_path / "ctx"),
               images=source)
    assert len(seen) == 1
    builds, context = seen[0]
    # The engine, building with the builder relock chose (BuildKit or classic).
    assert isinstance(builds, WithBuilder) and builds.engine is engine
    assert context == tmp_path / "ctx"


def test_render_writes_beside_the_template_and_never_over_it(tmp_path: Path) -> None:
    _, template, lock = frozen_app(tmp_path)
    out = run_render(RenderRequest(lock_path=lock, dockerfile=template))
    assert out == tmp_path / RENDERED_NAME
    assert "FROM debian:trixie-slim@sha256:" in out.read_text()
    with pytest.raises(UsageError, match="is the template itself"):
        run_render(RenderRequest(lock_path=lock, dockerfile=template, output=template))
    assert template.read_text() == "FROM debian:trixie-slim\nRUN true\n"


def test_render_takes_the_template_the_lock_names(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, lock = frozen_app(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "locks").mkdir()
    lock.rename(tmp_path / "locks" / "app.lock")
    out = run_render(RenderRequest(output=tmp_path / "pinned"))
    assert out == tmp_path / "pinned"
    assert f"Generated by relock from {tmp_path / 'Dockerfile.in'} and locks/app.lock" \
        in out.read_text()


def test_verify_of_the_frozen_image_finds_no_drift(tmp_path: Path) -> None:
    source, _, lock = frozen_app(tmp_path)
    said: list[str] = []
    outcome = run_verify(VerifyRequest("app", lock), said.append, connect=lambda: source)
    assert (outcome.image, outcome.lock_path, outcome.drift) == ("app", lock, ())
    assert said == ["verifying app against the lock"]


def test_verify_names_what_drifted(tmp_path: Path) -> None:
    source, _, lock = frozen_app(tmp_path)
    app = source.image("app")
    source.files[app.id] = {**source.files[app.id], "var/lib/dpkg/status": (
        b"Package: tini\nStatus: install ok installed\nVersion: 0.19.0-4\n"
        b"Architecture: amd64\n\n")}
    outcome = run_verify(VerifyRequest("app", lock), connect=lambda: source)
    assert outcome.drift is not None
    assert [d.describe() for d in outcome.drift] == [
        "apt tini:amd64: locked 0.19.0-3, image has 0.19.0-4"]
