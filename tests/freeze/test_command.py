"""relock.freeze.command: the freeze and diff use cases, on folder trees and in-memory images.

The engine-backed evidence is tests/e2e/test_freeze_e2e.py; these check what
the use cases decide (source, output, stages, usage errors) without one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from relock.errors import UsageError
from relock.freeze.command import DiffRequest, FreezeRequest, run_diff, run_freeze
from relock.freeze.freeze import FreezeOptions
from relock.image.engine import ImageInfo, ImageSource
from relock.lock import lockfile
from relock.lock.lockfile import Lock
from relock.progress import Progress
from relock.template.dockerfile import Dockerfile
from tests.fakes import FakeSource, digest, layers, repo_digest

STATUS = (b"Package: tini\nStatus: install ok installed\nVersion: 0.19.0-3\n"
          b"Architecture: amd64\n\n")
OS_RELEASE = b'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'


def rootfs(tmp_path: Path) -> Path:
    """A small Debian-looking folder tree."""
    root = tmp_path / "root"
    for name, body in {"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": STATUS}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return root


def engine_with_app(tmp_path: Path) -> tuple[FakeSource, Path]:
    """An engine holding ``app`` on debian:trixie-slim, and the template it was built from."""
    source = FakeSource()
    base = source.add(ImageInfo("sha256:" + "2" * 64, layers("b"),
                                (repo_digest("debian", digest("d")),)), "debian:trixie-slim")
    source.add(ImageInfo("sha256:" + "7" * 64, (*base.layers, *layers("y")),
                         created=datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC)), "app",
               files={"var/lib/dpkg/status": STATUS, "etc/os-release": OS_RELEASE})
    template = tmp_path / "Dockerfile.in"
    template.write_text("FROM debian:trixie-slim\nRUN true\n")
    return source, template


def test_a_folder_tree_is_frozen_into_the_lock_at_the_output(tmp_path: Path) -> None:
    out = tmp_path / "locks" / "x.lock"
    outcome = run_freeze(FreezeRequest(rootfs=rootfs(tmp_path), output=out, no_index=True,
                                       no_archive=True, snapshot="20261101T000000Z",
                                       dockerfile=tmp_path / "absent"))
    assert outcome.path == out
    assert [(p.name, p.version) for p in outcome.lock.apt] == [("tini", "0.19.0-3")]
    assert lockfile.read(out).apt == outcome.lock.apt
    assert "# Remake it with: relock freeze --rootfs" in out.read_text()


def test_the_default_output_is_named_for_the_image(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    source, template = engine_with_app(tmp_path)
    outcome = run_freeze(FreezeRequest(image="app", dockerfile=template, no_index=True,
                                       no_archive=True), images=source)
    assert outcome.path == Path("locks/app.lock")
    assert outcome.lock.snapshot == "20261102T030405Z"
    assert [b.digest for b in outcome.lock.base] == [digest("d")]


@pytest.mark.parametrize(("request_", "message"), [
    (FreezeRequest(), "give either IMAGE or --rootfs DIR"),
    (FreezeRequest(image="app", rootfs=Path("/")), "give either IMAGE or --rootfs DIR"),
    (FreezeRequest(image="sha256:" + "a" * 64), "is an image ID, which gives the lock no name"),
    (FreezeRequest(image="app", platforms=("linux/amd64,linux/arm64",)),
     "an image in the engine is of one platform"),
])
def test_a_request_that_cannot_be_done_is_a_usage_error(request_: FreezeRequest,
                                                        message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run_freeze(request_, images=FakeSource())


def test_build_stages_are_read_by_the_stage_freezer_given_unless_final_only(
        tmp_path: Path) -> None:
    source, template = engine_with_app(tmp_path)
    calls: list[tuple[Path, Lock]] = []

    def stages(images: ImageSource, dockerfile: Dockerfile, context: Path, final: Lock,
               options: FreezeOptions, progress: Progress) -> Lock:
        assert images is source
        calls.append((context, final))
        return final

    request = FreezeRequest(image="app", dockerfile=template, output=tmp_path / "a.lock",
                            no_index=True, no_archive=True)
    outcome = run_freeze(request, stages=stages, images=source)
    assert calls == [(tmp_path, calls[0][1])]
    assert calls[0][1].apt == outcome.lock.apt
    run_freeze(FreezeRequest(image="app", dockerfile=template, output=tmp_path / "b.lock",
                             no_index=True, no_archive=True, final_only=True),
               stages=stages, images=source)
    assert len(calls) == 1


def test_warnings_go_to_the_callback_before_the_lock_is_written(tmp_path: Path) -> None:
    source, template = engine_with_app(tmp_path)
    out = tmp_path / "x.lock"
    said: list[tuple[str, bool]] = []
    outcome = run_freeze(FreezeRequest(image="app", dockerfile=template, output=out,
                                       no_index=True, no_archive=True),
                         warn=lambda line: said.append((line, out.exists())), images=source)
    assert said == [("no .deb sha256 for 1 APT packages (--no-archive: the archive was not "
                     "asked): tini=0.19.0-3", False)]
    assert outcome.warnings == (said[0][0],)


def test_diff_compares_two_lock_files(tmp_path: Path) -> None:
    source, template = engine_with_app(tmp_path)
    old = run_freeze(FreezeRequest(image="app", dockerfile=template,
                                   output=tmp_path / "old.lock", no_index=True,
                                   no_archive=True), images=source)
    said: list[str] = []
    outcome = run_diff(DiffRequest(str(old.path), str(old.path), dockerfile=template),
                       warn=said.append, connect=FakeSource)
    assert outcome.result.identical and said == []
    assert outcome.old.lock == outcome.new.lock == lockfile.read(old.path)


def test_diff_of_an_image_side_without_a_template_warns_of_the_bases(tmp_path: Path) -> None:
    source, template = engine_with_app(tmp_path)
    lock = run_freeze(FreezeRequest(image="app", dockerfile=template,
                                    output=tmp_path / "a.lock", no_index=True,
                                    no_archive=True), images=source).path
    said: list[str] = []
    outcome = run_diff(DiffRequest(str(lock), "app", dockerfile=tmp_path / "absent"),
                       warn=said.append, connect=lambda: source)
    assert f"base images not compared: no {tmp_path / 'absent'} for the image side" in said
    assert outcome.result.identical
