"""Templates (Dockerfile.in) relock reads: a BOM, bad text, odd names, every form of RUN."""

from __future__ import annotations

from pathlib import Path

import pytest

from relock.lock import lockfile
from tests.hostile.contract import (
    files_in,
    freeze_rootfs,
    invoke,
    one_line_error,
    render_args,
    rootfs,
)


def test_bom_template_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B13: Docker accepts a UTF-8 BOM; so does relock, and the sha256 is the file's."""
    import hashlib

    monkeypatch.chdir(tmp_path)
    template = tmp_path / "Dockerfile.in"
    template.write_bytes(b"\xef\xbb\xbfFROM debian:trixie-slim\nRUN true\n")
    out = tmp_path / "x.lock"
    r = freeze_rootfs(rootfs(tmp_path), out, "-f", str(template))
    assert r.exit_code == 0, r.output
    lock = lockfile.read(out)
    assert lock.input.sha256 == hashlib.sha256(template.read_bytes()).hexdigest()


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfeF\x00R\x00", "not UTF-8 text"),
    (b"RUN true\n", "has no FROM"),
])
def test_a_template_not_utf8_or_without_from_is_refused(tmp_path: Path, content: bytes,
                                                        message: str) -> None:
    template = tmp_path / "Dockerfile.in"
    template.write_bytes(content)
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(rootfs(tmp_path), out, "-f", str(template)), message)
    assert not out.exists()


def test_a_device_as_the_template_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(rootfs(tmp_path), out, "-f", "/dev/zero"),
                   "/dev/zero: cannot read: not a regular file")
    assert not out.exists()


def test_a_newline_in_the_template_name_is_refused(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """B11/S4: a newline in -f's name must not reach the lock or its header."""
    monkeypatch.chdir(tmp_path)
    template = tmp_path / "Docker\nfile.in"
    template.write_text("FROM debian:trixie-slim\n")
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(rootfs(tmp_path), out, "-f", str(template)),
                   "[input].dockerfile", "contains a control character or newline")
    assert files_in(tmp_path) == sorted(["Docker\nfile.in", "root"])


def test_rootfs_without_a_template_still_freezes(tmp_path: Path) -> None:
    out = tmp_path / "x.lock"
    r = freeze_rootfs(rootfs(tmp_path), out, "-f", str(tmp_path / "none.in"))
    assert r.exit_code == 0, r.output
    assert lockfile.read(out).input.dockerfile == ""


def test_every_form_of_run_reaches_only_the_view(tmp_path: Path) -> None:
    """B6: exec form, sh -c, a heredoc, uv, a script, under '# escape=': each RUN is pinned."""
    template = ("# escape=`\nFROM debian:trixie-slim\nRUN [\"pip\", \"install\", \"six\"]\n"
                "RUN sh -c 'pip install six'\nRUN <<EOT\nuv pip install six\nEOT\n"
                "RUN ./install.sh\n")
    out = tmp_path / "out" / "Dockerfile"
    r = invoke(*render_args(tmp_path, out, template))
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert text.startswith("# escape=`\n")
    runs = [line for line in text.splitlines() if line.startswith("RUN ")]
    assert len(runs) == 4
    pinned = [line for line in text.splitlines()
              if "PIP_INDEX_URL=http://127.0.0.1:" in line and "UV_INDEX_URL=" in line
              and "APT_CONFIG=/dev/shm/relock/apt.conf" in line]
    assert len(pinned) == 4  # one per RUN (the heredoc's is its first body line)
    assert files_in(out.parent) == ["Dockerfile"]
