"""Hostile input to relock sbom, export and audit: one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.contract import GOOD, files_in, invoke, one_line_error

SBOM = ("sbom", "--format", "cyclonedx")


@pytest.mark.parametrize("args", [SBOM, ("sbom", "--format", "spdx")])
def test_a_lock_that_breaks_its_grammar(tmp_path: Path, args: tuple[str, ...]) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text(GOOD.replace('name = "bash"', 'name = "bash\\u001b[31m"'))
    out = tmp_path / "out.json"
    r = invoke(*args, "--lock", str(lock), "-o", str(out))
    one_line_error(r, "apt[0].name")
    assert files_in(tmp_path) == ["x.lock"]


def test_a_lock_that_is_not_toml(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_bytes(b"\xff\xfe not a lock")
    one_line_error(invoke(*SBOM, "--lock", str(lock)), "not UTF-8")


def test_a_hostile_image_name(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text(GOOD)
    one_line_error(invoke(*SBOM, "--lock", str(lock), "--image", "x\n\x1b[2Jy"), "--image")


def test_a_hostile_header_is_not_the_root(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text("# Remake it with: relock freeze 'pwn\\\" <b>' -o x\n" + GOOD)
    r = invoke(*SBOM, "--lock", str(lock))
    assert r.exit_code == 0 and "pwn" not in r.stdout and '"name": "x"' in r.stdout
