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


def _osv(tmp_path: Path, body: bytes | str) -> Path:
    folder = tmp_path / "osv"
    folder.mkdir()
    (folder / "REC-1.json").write_bytes(body.encode() if isinstance(body, str) else body)
    return folder


def _good_lock(tmp_path: Path) -> Path:
    lock = tmp_path / "x.lock"
    lock.write_text(GOOD)
    return lock


def _rec(**fields: object) -> str:
    import json

    doc = {"id": "PYSEC-1", "modified": "2026-01-01T00:00:00Z",
           "affected": [{"package": {"ecosystem": "PyPI", "name": "idna"},
                         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}
    doc.update(fields)
    return json.dumps(doc)


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"\xff\xfe", "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (_rec(id="PYSEC-1\n| injected | row |"), "is not an OSV identifier"),
    (_rec(id="\x1b]8;;http://x\x07"), "is not an OSV identifier"),
    (_rec(aliases=["CVE-1", "<script>"]), "'aliases'"),
    (_rec(references=[{"type": "ADVISORY", "url": "javascript:alert(1)"}]),
     "not a plain http(s) URL"),
    (_rec(references=[{"type": "WEB", "url": "https://x.test/a b)](evil"}]),
     "not a plain http(s) URL"),
])
def test_a_hostile_record_is_one_line(tmp_path: Path, body: bytes | str, fragment: str) -> None:
    r = invoke("audit", "--lock", str(_good_lock(tmp_path)), "--osv", str(_osv(tmp_path, body)))
    line = one_line_error(r, fragment)
    assert "\x1b" not in line and r.stdout == ""


def test_a_hostile_fixed_version_does_not_reach_the_output(tmp_path: Path) -> None:
    body = _rec(affected=[{"package": {"ecosystem": "PyPI", "name": "idna"},
                           "ranges": [{"type": "ECOSYSTEM", "events": [
                               {"introduced": "0"}, {"fixed": "9 | x | y |"}]}],
                           "versions": ["3.10"]}])
    r = invoke("audit", "--lock", str(_good_lock(tmp_path)), "--osv", str(_osv(tmp_path, body)),
               "--format", "markdown")
    assert r.exit_code == 1 and "| x |" not in r.stdout
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and all(row.count(" | ") == 5 for row in rows)


def test_an_osv_path_that_is_not_there_or_not_a_zip(tmp_path: Path) -> None:
    lock = _good_lock(tmp_path)
    one_line_error(invoke("audit", "--lock", str(lock), "--osv", str(tmp_path / "none")),
                   "no such folder or zip")
    (tmp_path / "x.zip").write_bytes(b"PK\x03\x04 broken")
    one_line_error(invoke("audit", "--lock", str(lock), "--osv", str(tmp_path / "x.zip")),
                   "not a zip of OSV records")


def test_a_symlinked_record_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(_rec())
    folder = tmp_path / "osv"
    folder.mkdir()
    (folder / "link.json").symlink_to(outside)
    r = invoke("audit", "--lock", str(_good_lock(tmp_path)), "--osv", str(folder))
    assert r.exit_code == 0 and "0 findings in 0 records" in r.stdout


@pytest.mark.parametrize("command", [("audit", "--osv", "."), ("export", "-o", "p.toml")])
def test_other_commands_refuse_a_lock_that_breaks_its_grammar(
        tmp_path: Path, command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lock = tmp_path / "x.lock"
    lock.write_text(GOOD.replace('env = "/opt/venv"', 'env = "/opt/../venv"'))
    one_line_error(invoke(*command, "--lock", str(lock)), "pip[0].env")
    assert files_in(tmp_path) == ["x.lock"]
