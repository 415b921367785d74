"""Hostile input: one case per finding of issue 12, and per class of input.

The contract for every case: exit 2 (trouble), one line ``relock: error: ...``
on stderr, no traceback, and no output file written, replaced or half-left.
Classes: lock, Dockerfile, root tree, output, signal, engine, index, git.
Most cases go through click's CliRunner; a few run ``python -m relock`` as a
real process (signals, tracebacks). No image is built here.

Each finding of issue 12 and the tests that check it ([case] is a
parametrised id of ``test_hostile_lock_values_are_refused``; other files
are named):

======  =====================================================================
S1      [S1 ...] (digest, image id, ref with a newline);
        test_render_writes_nothing_from_a_hostile_lock
S2      [S2 ...] (URI, option, suite, snapshot, apt name and version);
        test_render_writes_nothing_from_a_hostile_lock;
        test_hostile_image_values_are_not_written (a source from the image);
        test_verify.py::test_a_changed_apt_source_is_drift;
        test_diff.py::test_golden_multiarch_multienv (a source turned trusted)
S3      [S3 ...] (pip name, version, hash); test_render_writes_nothing_from_a_hostile_lock
S4      test_newline_in_the_template_name; test_render.py::test_file_names_cannot_add_lines
S5      [S5 credentials in an APT URI]; test_apt_credentials_are_not_copied_into_the_lock;
        test_index_password_stays_out_of_messages; test_freeze_with_a_dripping_index_is_cut_off;
        test_fetching_debs_from_a_dripping_archive_is_cut_off
S6      test_dist_named_to_escape_the_index_folder;
        test_file_index_name_cannot_leave_the_folder;
        test_freeze_with_the_index_on_refuses_hostile_dists
S7      test_diff_of_images_shows_escapes_not_terminal_sequences;
        test_reader_error_on_an_unknown_key_is_escaped; test_diff.py::test_markdown_escapes_cells
B1      test_deeply_nested_toml; test_real_process_has_no_traceback;
        test_non_utf8_source_file_name_is_skipped_as_apt_does; test_non_utf8_installer_file;
        test_non_utf8_environment_prefix; test_corrupt_packages_list_costs_only_its_hashes;
        test_unbalanced_quote_in_a_sources_line; test_bad_dist_version_with_the_index_on;
        test_freeze_with_the_index_on_refuses_hostile_dists; test_full_disk_keeps_the_old_lock
        (freeze); test_render_on_a_full_disk_keeps_the_old_output (render);
        test_docker_host_that_cannot_be_an_address; test_malformed_index_answers;
        test_bad_time_out_value; test_bad_http_time_out; test_dev_zero_as_a_lock;
        test_render_into_a_folder_nothing_can_be_written_to
B2      test_render_on_a_full_disk_keeps_the_old_output; test_eight_renders_to_one_output_at_once;
        test_render_cli.py::test_an_interrupted_render_leaves_the_previous_output
        (render writes one file now: relock.d is gone)
B3      test_output_on_a_device_node_is_refused; test_output_on_a_fifo_is_refused;
        test_render_output_on_a_non_regular_file_is_refused
B4      test_sigterm_in_the_write_window_leaves_no_temp_file
B5      test_render.py::test_rendered_dockerfile_matches_golden[forms] (a comment inside
        a RUN continuation, whole golden file)
B6      test_every_form_of_run_reaches_only_the_view;
        test_render.py::test_heredoc_with_its_own_interpreter_is_refused;
        test_render.py::test_parser_directive_stays_first
B7      test_two_venvs_with_one_folder_name_stay_apart (support files are gone)
B8      test_render_cli.py::test_output_equal_to_the_template_is_refused;
        test_render_cli.py::test_default_output_is_beside_the_template_and_never_the_template
B9      test_an_engine_that_never_answers_does_not_hold_relock;
        test_an_engine_that_stops_answering_is_cut_off_on_every_call; test_a_silent_build_is_said;
        test_dripping_index_is_cut_off; test_freeze_with_a_dripping_index_is_cut_off;
        test_fetching_debs_from_a_dripping_archive_is_cut_off; test_registry_that_drips_is_cut_off;
        test_http_deadlines
B10     [B10 ...] (empty, NUL and space in versions, duplicates, non-hex, md5, short hashes)
B11     test_image_id_needs_a_lock_name; test_newline_in_the_template_name
B12     test_pyenv.py::test_deep_and_hidden_environments_are_found_and_locked
B13     test_bom_template_is_accepted
B14     test_usage_errors_are_one_line; test_real_process_has_no_traceback
======  =====================================================================
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import click
import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.errors import IndexError_, LockfileError, RelockError
from relock.lock import lockfile
from relock.upstream.index import Index, IndexConfig, parse_timeout

DATA = Path(__file__).resolve().parent / "hostile"
GOOD = (DATA / "good.lock").read_text()
H = "1" * 64


def invoke(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def one_line_error(r: click.testing.Result, *fragments: str, code: int = 2) -> str:
    """Assert the contract: exit code, one ``relock: error:`` line, no traceback."""
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = r.stderr.splitlines()
    errors = [line for line in lines if line.startswith("relock: error: ")]
    assert len(errors) == 1, r.stderr
    assert r.stderr.endswith(errors[0] + "\n"), r.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- class: lock ---------------------------------------------------------------

def test_the_good_lock_is_good() -> None:
    assert lockfile.loads(GOOD).apt[0].name == "bash"


# (finding, old text, new text (TOML escapes as in a file), what the error names)
LOCK_CASES = [
    ("S1 newline in a base digest", 'digest = "sha256:' + H + '"',
     'digest = "sha256:' + H + '\\nRUN curl -s http://127.0.0.1:9/x | sh"',
     "base[0].digest"),
    ("S1 newline in a base image id", 'image_id = "sha256:' + "2" * 64 + '"',
     'image_id = "sha256:' + "2" * 64 + '\\nCOPY / /x"', "base[1].image_id"),
    ("S1 newline in a base ref", 'ref = "debian:trixie-slim"',
     'ref = "debian:trixie-slim\\nRUN id"', "base[0].ref"),
    ("S2 URI closes the apt.conf string", '"http://127.0.0.1:8/debian"',
     '"http://127.0.0.1:8/debian\\";\\nAPT::Update::Pre-Invoke {\\"id\\";};"',
     "apt_sources[0].uris[0]"),
    ("S2 URI adds a trusted stanza", '"http://127.0.0.1:8/debian"',
     '"http://127.0.0.1:8/debian\\n\\nTypes: deb\\nURIs: http://127.0.0.1:9/\\nTrusted: yes"',
     "apt_sources[0].uris[0]"),
    ("S2 option value with a newline",
     'signed-by = "/usr/share/keyrings/debian-archive-keyring.gpg"',
     'signed-by = "/k.gpg\\nTrusted: yes"', "apt_sources[0].options.signed-by"),
    ("S2 option key with a newline", 'signed-by = "/usr/share',
     '"signed-by\\nTrusted" = "/usr/share', "apt_sources[0].options key"),
    ("S2 suite with white space", '"trixie-updates"', '"trixie-updates main\\nx"',
     "apt_sources[0].suites[1]"),
    ("S2 snapshot id with a newline", 'snapshot = "20261101T000000Z"',
     'snapshot = "20261101T000000Z\\nAcquire::x \\"y\\";"', "'snapshot'"),
    ("S2 apt name with a newline", 'name = "bash"', 'name = "bash\\nPin: version *"',
     "apt[0].name"),
    ("S2 apt version pinned to anything", 'version = "5.2.37-2+b5"',
     'version = "*"', "apt[0].version"),
    ("S3 pip name with a newline", 'name = "six"',
     'name = "six\\n--index-url http://127.0.0.1:9/"', "pip[1].name"),
    ("S3 pip version with a newline", 'version = "1.16.0"',
     'version = "1.16.0\\n--trusted-host 127.0.0.1"', "pip[1].version"),
    ("S3 pip hash with a newline", '"sha256:' + "a" * 64 + '"',
     '"sha256:' + "a" * 64 + '\\n-e git+http://127.0.0.1:9/x"', "pip[1].hashes[0]"),
    ("S5 credentials in an APT URI", '"http://127.0.0.1:8/debian"',
     '"http://user:secret@127.0.0.1:8/debian"', "has credentials"),
    ("B10 empty apt version", 'version = "5.2.37-2+b5"', 'version = ""',
     "apt[0].version: is empty"),
    ("B10 empty pip version", 'version = "3.10"', 'version = ""', "pip[0].version: is empty"),
    ("B10 NUL in a version", 'version = "5.2.37-2+b5"', 'version = "5.2\\u0000"',
     "apt[0].version"),
    ("B10 space in a version", 'version = "5.2.37-2+b5"', 'version = "5.2 37"',
     "apt[0].version"),
    ("B10 space in a pip version", 'version = "3.10"', 'version = "3.10 "', "pip[0].version"),
    ("B10 non-hex hash", '"sha256:' + "c" * 64 + '"', '"sha256:' + "z" * 64 + '"',
     "pip[0].hashes[0]"),
    ("B10 md5 hash", '"sha256:' + "c" * 64 + '"', '"md5:' + "c" * 32 + '"',
     "pip[0].hashes[0]"),
    ("B10 short hash", '"sha256:' + "c" * 64 + '"', '"sha256:cc"', "pip[0].hashes[0]"),
    ("B10 non-hex deb hash", 'sha256 = "' + "3" * 64 + '"', 'sha256 = "xyz"',
     "apt[0].sha256"),
    ("B10 duplicate apt package", '[[apt]]\nname = "zlib1g"', '[[apt]]\nname = "bash"',
     "apt[1] repeats apt[0]"),
    ("B10 duplicate pip package", '[[pip]]\nname = "six"', '[[pip]]\nname = "idna"',
     "pip[1] repeats pip[0]"),
    ("pip name not normalised", 'name = "six"', 'name = "Six"', "pip[1].name"),
    ("pip name escaping the index folder", 'name = "six"', 'name = "%2e%2e/six"',
     "pip[1].name"),
    ("relative environment", 'env = "/opt/venv"\nrequested = true',
     'env = "../venv"\nrequested = true', "pip[1].env"),
    ("environment with a newline", 'prefix = "/opt/venv"', 'prefix = "/opt/venv\\nRUN id"',
     "python[0].prefix"),
    ("filename escaping the archive", 'filename = "pool/main/b/bash/bash_5.2.37-2+b5_amd64.deb"',
     'filename = "pool/../../../etc/shadow"', "apt[0].filename"),
    ("stage with a newline", 'name = "bash"', 'name = "bash"\nstage = "a\\nb"',
     "apt[0].stage"),
    ("bad platform", 'platform = "linux/amd64"', 'platform = "linux/amd64\\nx"',
     "'platform'"),
    ("bad snapshot date", 'snapshot = "20261101T000000Z"', 'snapshot = "20261341T000000Z"',
     "'snapshot'"),
    ("build-arg name with a newline", 'PY = "3.13"', '"PY\\nRUN" = "3.13"',
     "[input].build_args key"),
    ("build-arg value with a newline", 'PY = "3.13"', 'PY = "3.13\\nRUN id"',
     "[input].build_args.PY"),
    ("template name with an escape sequence", 'dockerfile = "Dockerfile.in"',
     'dockerfile = "Dockerfile.in\\u001b[2J"', "[input].dockerfile"),
    ("distro id with a quote", 'id = "debian"', 'id = "debian\\""', "[distro].id"),
    ("negative stage", "stage = 0", "stage = -1", "base[0].stage"),
]


@pytest.mark.parametrize(("old", "new", "names"), [c[1:] for c in LOCK_CASES],
                         ids=[c[0] for c in LOCK_CASES])
def test_hostile_lock_values_are_refused(tmp_path: Path, old: str, new: str,
                                         names: str) -> None:
    assert GOOD.count(old) >= 1
    bad = tmp_path / "bad.lock"
    bad.write_text(GOOD.replace(old, new, 1))
    good = tmp_path / "good.lock"
    good.write_text(GOOD)
    line = one_line_error(invoke("diff", str(good), str(bad)), f"{bad}: ", names)
    assert "\x1b" not in line


@pytest.mark.parametrize("case", [c[0] for c in LOCK_CASES if c[0][:2] in ("S1", "S2", "S3")])
def test_render_writes_nothing_from_a_hostile_lock(tmp_path: Path, case: str) -> None:
    _, old, new, names = next(c for c in LOCK_CASES if c[0] == case)
    bad = tmp_path / "bad.lock"
    bad.write_text(GOOD.replace(old, new, 1))
    (tmp_path / "Dockerfile.in").write_text("FROM debian:trixie-slim\n")
    out = tmp_path / "out"
    out.mkdir()
    r = invoke("render", "-f", str(tmp_path / "Dockerfile.in"), "--lock", str(bad),
               "-o", str(out / "Dockerfile"), "--force")
    one_line_error(r, names)
    assert files_in(out) == []


def test_deeply_nested_toml(tmp_path: Path) -> None:
    bad = tmp_path / "deep.lock"
    bad.write_text("version = 1\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    one_line_error(invoke("diff", str(bad), str(bad)), "nested too deeply")


def test_dev_zero_as_a_lock() -> None:
    one_line_error(invoke("diff", "/dev/zero", "/dev/zero"),
                   "/dev/zero: cannot read: not a regular file")


def test_fifo_as_a_lock_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "x.lock"
    os.mkfifo(fifo)
    one_line_error(invoke("diff", str(fifo), str(fifo)), "not a regular file")


def test_huge_lock(tmp_path: Path) -> None:
    big = tmp_path / "big.lock"
    with open(big, "wb") as f:
        f.truncate(lockfile.MAX_BYTES + 1)  # sparse: costs no disk
    one_line_error(invoke("diff", str(big), str(big)), "too big for a lock file")


def test_non_utf8_lock(tmp_path: Path) -> None:
    bad = tmp_path / "x.lock"
    bad.write_bytes(GOOD.encode().replace(b'"bash"', b'"ba\xffsh"'))
    one_line_error(invoke("diff", str(bad), str(bad)), "not UTF-8")


def test_diff_of_images_shows_escapes_not_terminal_sequences(tmp_path: Path) -> None:
    """S7: values that reach diff unchecked (an image side) are escaped in text and Markdown."""
    from relock.freeze.sides import Side
    from relock.lock import diffformat
    from relock.lock.diff import diff_locks

    old = lockfile.loads(GOOD)
    evil_name = "bash\x1b]0;pwned\x07\x1b[2J"
    evil_version = "5.2 | **x** |\n### Forged heading\n<img src=x>"
    new = old.__class__(**{**old.__dict__, "apt": (
        old.apt[0].__class__(**{**old.apt[0].__dict__, "name": evil_name}),
        old.apt[1].__class__(**{**old.apt[1].__dict__, "version": evil_version}),
    )})
    d = diff_locks(old, new)
    text = diffformat.format_text(d)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;pwned\\x07" in text
    assert "### Forged" not in text.replace("\\n### Forged", "")
    sides = [Side(label=f"a\nb{i}", kind="file", lock=x) for i, x in enumerate((old, new))]
    md = diffformat.format_markdown(d, sides[0], sides[1])
    assert "\x1b" not in md
    assert not any(line.startswith("### Forged") for line in md.splitlines())
    assert "<img" not in md.replace("\\<img", "")  # shown as text, not HTML
    table = [line for line in md.splitlines() if "zlib1g" in line]
    assert len(table) == 1
    # The row keeps its 4 cells: every '|' from the value is escaped.
    assert table[0].replace("\\|", "").count("|") == 5
    assert md.splitlines()[0].count("\n") == 0 and "a\\nb0" in md.splitlines()[0]


# -- class: Dockerfile ---------------------------------------------------------

def rootfs(tmp_path: Path, files: dict[str, str | bytes] | None = None) -> Path:
    """A small Debian-looking folder tree for ``freeze --rootfs``."""
    root = tmp_path / "root"
    base: dict[str, str | bytes] = {
        "etc/os-release": 'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n',
        "var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\n"
                               "Architecture: amd64\nVersion: 5.2.37-2+b5\n\n",
        "etc/apt/sources.list.d/debian.sources":
            "Types: deb\nURIs: http://127.0.0.1:8/debian\nSuites: trixie\n"
            "Components: main\n",
    }
    for name, body in {**base, **(files or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
    return root


def freeze_rootfs(root: Path, out: Path, *extra: str) -> click.testing.Result:
    return invoke("freeze", "--rootfs", str(root), "--no-index", "-o", str(out),
                  "--snapshot", "20261101T000000Z", *extra)


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
def test_bad_template(tmp_path: Path, content: bytes, message: str) -> None:
    template = tmp_path / "Dockerfile.in"
    template.write_bytes(content)
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(rootfs(tmp_path), out, "-f", str(template)), message)
    assert not out.exists()


def test_dev_zero_as_the_template(tmp_path: Path) -> None:
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(rootfs(tmp_path), out, "-f", "/dev/zero"),
                   "/dev/zero: cannot read: not a regular file")
    assert not out.exists()


def test_newline_in_the_template_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B11/S4: a newline in -f's name must not reach the lock or its header."""
    monkeypatch.chdir(tmp_path)
    template = tmp_path / "Docker\nfile.in"
    template.write_text("FROM debian:trixie-slim\n")
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(rootfs(tmp_path), out, "-f", str(template)),
                   "[input].dockerfile", "contains a control character or newline")
    assert files_in(tmp_path) == sorted(["Docker\nfile.in", "root"])


# -- class: root tree ----------------------------------------------------------

def test_non_utf8_source_file_name_is_skipped_as_apt_does(tmp_path: Path) -> None:
    root = rootfs(tmp_path)
    (root / "etc/apt/sources.list.d").joinpath(os.fsdecode(b"x\xff.list")).write_text(
        "deb http://127.0.0.1:9/other trixie main\n")
    out = tmp_path / "x.lock"
    r = freeze_rootfs(root, out)
    assert r.exit_code == 0, r.output
    assert [s.uris for s in lockfile.read(out).apt_sources] == [("http://127.0.0.1:8/debian",)]


def test_corrupt_packages_list_costs_only_its_hashes(tmp_path: Path) -> None:
    root = rootfs(tmp_path, {"var/lib/apt/lists/h_dists_trixie_main_binary-amd64_Packages.gz":
                             b"\x1f\x8b\x08\x00garbage-not-deflate"})
    out = tmp_path / "x.lock"
    r = freeze_rootfs(root, out)
    assert r.exit_code == 0, r.output
    assert lockfile.read(out).apt[0].sha256 == ""


def test_unbalanced_quote_in_a_sources_line(tmp_path: Path) -> None:
    root = rootfs(tmp_path, {"etc/apt/sources.list": 'deb "http://127.0.0.1:8/x trixie main\n'})
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(root, out), "malformed APT source line")
    assert not out.exists()


def test_apt_credentials_are_not_copied_into_the_lock(tmp_path: Path) -> None:
    """S5: user:password@ in an image's source stays out of the lock."""
    root = rootfs(tmp_path, {"etc/apt/sources.list":
                             "deb http://user:s3cret@127.0.0.1:8/private trixie main\n"})
    out = tmp_path / "x.lock"
    r = freeze_rootfs(root, out)
    assert r.exit_code == 0, r.output
    assert "s3cret" not in out.read_text() and "user:" not in out.read_text()
    assert ("http://127.0.0.1:8/private",) in [s.uris for s in lockfile.read(out).apt_sources]


@pytest.mark.parametrize(("files", "names"), [
    ({"etc/apt/sources.list.d/evil.sources":
      'Types: deb\nURIs: http://127.0.0.1:8/x";APT::Update::Pre-Invoke{"id";};\n'
      "Suites: trixie\n"}, "apt_sources"),
    ({"var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\n"
      "Architecture: amd64\nVersion: 5.2 evil\n\n"}, "apt[0].version"),
    ({"var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\n"
      "Architecture: amd64\nVersion: \n\n"}, "no Version"),
    ({"opt/venv/pyvenv.cfg": "version = 3.13.1\n",
      "opt/venv/lib/python3.13/site-packages/six-1.0.dist-info/METADATA":
      "Name: six\nVersion: 1.0\n 2.0\n",
      "opt/venv/lib/python3.13/site-packages/six-1.0.dist-info/INSTALLER": "pip\n"},
     "pip[0].version"),
    ({"opt/venv/pyvenv.cfg": "version = 3.13.1\n",
      "opt/venv/lib/python3.13/site-packages/six-1.0.dist-info/METADATA":
      "Name: six\nVersion: one point oh\n",
      "opt/venv/lib/python3.13/site-packages/six-1.0.dist-info/INSTALLER": "pip\n"},
     "not a PEP 440 version"),
])
def test_hostile_image_values_are_not_written(tmp_path: Path, files: dict[str, str | bytes],
                                              names: str) -> None:
    out = tmp_path / "locks" / "x.lock"
    one_line_error(freeze_rootfs(rootfs(tmp_path, files), out), names)
    assert not out.parent.exists() or files_in(out.parent) == []


def test_dist_named_to_escape_the_index_folder(tmp_path: Path) -> None:
    """S6 at freeze: a dist-info naming itself %2e%2e/... is refused, never looked up."""
    site = "opt/venv/lib/python3.13/site-packages/"
    root = rootfs(tmp_path, {
        "opt/venv/pyvenv.cfg": "version = 3.13.1\n",
        site + "evil-1.0.dist-info/METADATA": "Name: %2e%2e/secret\nVersion: 1.0\n",
        site + "evil-1.0.dist-info/INSTALLER": "pip\n",
    })
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(root, out), "pip[0].name", "%2e%2e/secret")
    assert not out.exists()


def test_non_utf8_installer_file(tmp_path: Path) -> None:
    site = "opt/venv/lib/python3.13/site-packages/"
    root = rootfs(tmp_path, {
        "opt/venv/pyvenv.cfg": "version = 3.13.1\n",
        site + "six-1.16.0.dist-info/METADATA": "Name: six\nVersion: 1.16.0\n",
        site + "six-1.16.0.dist-info/INSTALLER": b"p\xffp\n",
    })
    r = freeze_rootfs(root, tmp_path / "x.lock")
    assert r.exit_code in (0, 2) and "Traceback" not in r.output


# -- class: output -------------------------------------------------------------

def test_output_on_a_device_node_is_refused(tmp_path: Path) -> None:
    """B3: -o naming a device never replaces the node."""
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    one_line_error(freeze_rootfs(rootfs(tmp_path), node), "not a regular file; not replacing")
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert files_in(tmp_path) == ["null", "root"]


def test_output_on_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "x.lock"
    os.mkfifo(fifo)
    one_line_error(freeze_rootfs(rootfs(tmp_path), fifo), "not a regular file; not replacing")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_output_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.lock"
    real.write_text("old")
    link = tmp_path / "x.lock"
    link.symlink_to(real)
    assert freeze_rootfs(rootfs(tmp_path), link).exit_code == 0
    assert link.is_symlink() and lockfile.read(real).apt[0].name == "bash"


def test_full_disk_keeps_the_old_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B1: -o on a full file system is one line; the old lock stays, no temp file."""
    import errno

    from relock import files

    out = tmp_path / "locks" / "x.lock"
    out.parent.mkdir()
    out.write_text("old lock")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    one_line_error(freeze_rootfs(rootfs(tmp_path), out), str(out), "No space left on device",
                   "the old file is kept")
    assert out.read_text() == "old lock"
    assert files_in(out.parent) == ["x.lock"]


def test_image_id_needs_a_lock_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B11: a full image ID as IMAGE never writes locks/sha256.lock."""
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("freeze", "sha256:" + "a" * 64), "is an image ID", "-o PATH or --name")
    one_line_error(invoke("freeze", "a" * 12), "is an image ID")
    one_line_error(invoke("freeze", "sha256:abc"), "is an image ID")
    assert files_in(tmp_path) == []


# -- class: CLI usage (B14) ----------------------------------------------------

@pytest.mark.parametrize(("args", "fragment"), [
    (["nope"], "No such command 'nope'"),
    (["freeze", "--bogus"], "No such option '--bogus'"),
    (["diff", "a"], "Missing argument 'NEW'"),
    (["diff", "a", "b", "--format", "x"], "Invalid value for '--format'"),
    (["freeze", "--build-arg", "novalue", "x"], "is not KEY=VALUE"),
    (["freeze"], "give either IMAGE or --rootfs DIR"),
])
def test_usage_errors_are_one_line(args: list[str], fragment: str) -> None:
    line = one_line_error(invoke(*args), fragment)
    assert line.endswith("--help')")


def test_an_atomic_write_takes_a_fresh_temporary_name_each_time(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """The temp file beside the target is created O_EXCL under a random name: a file
    already at one name is never opened, the next name is tried."""
    from relock import files

    names: list[str] = []
    real_open = os.open

    def recording_open(path: str, flags: int, mode: int = 0o777) -> int:
        names.append(os.path.basename(path))
        if len(names) == 1:  # the first name is taken, as by a file planted there
            Path(path).write_text("someone else's\n")
        return real_open(path, flags, mode)

    monkeypatch.setattr(files.os, "open", recording_open)
    files.atomic_write_text(tmp_path / "x.lock", "new\n")
    assert len(names) == 2 and names[0] != names[1]
    assert all(n.startswith(".x.lock.") and n.endswith(".tmp") for n in names)
    assert (tmp_path / names[0]).read_text() == "someone else's\n"  # left as it was
    assert (tmp_path / "x.lock").read_text() == "new\n"
    assert (tmp_path / "x.lock").stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / names[1]).exists()


# -- class: signal (real processes) --------------------------------------------

def _python(code: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigterm_in_the_write_window_leaves_no_temp_file(tmp_path: Path) -> None:
    """B4: SIGTERM while the temp file is written: after it, no .NAME.lock.XXXX.tmp."""
    code = f"""
import os, time
from pathlib import Path
from relock import files
real_fsync = os.fsync
def slow_fsync(fd):
    Path({str(tmp_path / "in-window")!r}).touch()
    time.sleep(1.5)
    real_fsync(fd)
files.os.fsync = slow_fsync
files.atomic_write_text(Path({str(tmp_path / "out" / "x.lock")!r}), "new\\n")
print("finished")
"""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.lock").write_text("old\n")
    proc = _python(code, tmp_path)
    deadline = time.monotonic() + 30
    while not (tmp_path / "in-window").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    assert any(n.endswith(".tmp") for n in files_in(tmp_path / "out"))  # in the window
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    assert "finished" not in out
    assert files_in(tmp_path / "out") == ["x.lock"]
    assert (tmp_path / "out" / "x.lock").read_text() in ("old\n", "new\n")


def test_real_process_has_no_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.lock"
    deep.write_text("version = 1\nx = " + "{a=" * 3000 + "}" * 3000 + "\n")
    for args in (["diff", str(deep), str(deep)], ["freeze", "--bogus"],
                 ["diff", "/dev/zero", str(deep)]):
        done = subprocess.run([sys.executable, "-m", "relock", *args], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path, check=False)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("relock: error: ") and done.stderr.count("\n") == 1


# -- class: engine -------------------------------------------------------------

@pytest.mark.parametrize("host", ["tcp://127.0.0.1:99999", "tcp://[::1"])
def test_docker_host_that_cannot_be_an_address(tmp_path: Path, host: str) -> None:
    template = tmp_path / "Dockerfile.in"
    template.write_text("FROM debian:trixie-slim\n")
    out = tmp_path / "x.lock"
    r = invoke("freeze", "img", "-f", str(template), "-o", str(out), "--no-index",
               env={"DOCKER_HOST": host})
    one_line_error(r, "DOCKER_HOST")
    assert not out.exists()


# -- class: index --------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]]] = {}

    def do_GET(self) -> None:
        name = self.path.strip("/").split("/")[-1]
        self.routes[name](self)

    def log_message(self, *args: object) -> None:
        pass


def _send(body: bytes, ctype: str = "application/vnd.pypi.simple.v1+json",
          status: int = 200) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return answer


def _drip(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    try:
        for _ in range(40):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.3)
    except OSError:
        pass


@pytest.fixture(scope="module")
def index_server() -> Iterator[str]:
    files = b'{"files": [{"filename": "ok-1.0.tar.gz", "hashes": {"sha256": "%s"}}]}' % (
        H.encode())
    _Handler.routes = {
        "ok": _send(files),
        "notjson": _send(b"{not json"),
        "alist": _send(b"[1, 2]"),
        "nofilename": _send(b'{"files": [{"hashes": {"sha256": "%s"}}]}' % H.encode()),
        "nofiles": _send(b'{"meta": {}}'),
        "badhash": _send(b'{"files": [{"filename": "badhash-1.0.tar.gz", '
                         b'"hashes": {"sha256": "zz"}}]}'),
        "htmlbadhash": _send(b'<a href="htmlbadhash-1.0.tar.gz#sha256=..%2f">x</a>',
                             "text/html"),
        "drip": _drip,
        "broken": _send(b"no", "text/plain", 500),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()


def test_index_answer_that_is_good(index_server: str) -> None:
    assert Index(IndexConfig((index_server,), timeout=5)).hashes("ok", "1.0") == (
        f"sha256:{H}",)


@pytest.mark.parametrize(("name", "message"), [
    ("notjson", "not valid JSON"),
    ("alist", "not a PEP 691 project page"),
    ("nofiles", "not a PEP 691 project page"),
    ("nofilename", "has no 'filename'"),
    ("badhash", "'zz' is not a sha256 digest"),
    ("htmlbadhash", "is not a sha256 digest"),
    ("broken", "answered HTTP 500"),
])
def test_malformed_index_answers(index_server: str, name: str, message: str) -> None:
    with pytest.raises(IndexError_, match=message) as e:
        Index(IndexConfig((index_server,), timeout=5)).hashes(name, "1.0")
    assert "\n" not in str(e.value)


def test_dripping_index_is_cut_off(index_server: str) -> None:
    """B9: one byte every 0.3 s never trips a 1 s read time-out; the deadline does."""
    index = Index(IndexConfig((index_server,), timeout=1.5))
    start = time.monotonic()
    with pytest.raises(IndexError_, match=r"within 1\.5 s \(timed out\)"):
        index.hashes("drip", "1.0")
    assert time.monotonic() - start < 4


def test_index_password_stays_out_of_messages(index_server: str) -> None:
    """S5: an index URL's password never appears in an error."""
    secret_url = index_server.replace("http://", "http://alice:hunter2@")
    for name in ("broken", "notjson", "missing-everywhere"):
        if name == "missing-everywhere":
            _Handler.routes[name] = _send(b"", "text/html", 404)
        with pytest.raises(IndexError_) as e:
            Index(IndexConfig((secret_url,), timeout=5)).hashes(name, "1.0")
        assert "hunter2" not in str(e.value) and "alice" not in str(e.value), str(e.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(IndexError_, match="unreachable") as e:
        Index(IndexConfig((f"http://alice:hunter2@127.0.0.1:{port}/simple",),
                          timeout=2)).hashes("six", "1.0")
    assert "hunter2" not in str(e.value)


def test_file_index_name_cannot_leave_the_folder(tmp_path: Path) -> None:
    """S6: '%2e%2e/secret' is refused before it becomes a path."""
    secret = tmp_path / "secret" / "index.html"
    secret.parent.mkdir()
    secret.write_text(f'<a href="x-1.0.tar.gz#sha256={H}">x</a>')
    (tmp_path / "simple").mkdir()
    index = Index(IndexConfig(((tmp_path / "simple").as_uri(),)))
    for name in ("%2e%2e/secret", "../secret", "..%2fsecret"):
        with pytest.raises(IndexError_, match="not a normalised"):
            index.hashes(name, "1.0")
    assert index.requests_made == 0


@pytest.mark.parametrize("version", ["1.0\n2.0", "not a version", "1.0 "])
def test_bad_dist_version_with_the_index_on(tmp_path: Path, version: str) -> None:
    """B1: a folded or bad METADATA version is one line, not InvalidVersion."""
    index = Index(IndexConfig(((tmp_path / "simple").as_uri(),)))
    with pytest.raises(IndexError_, match="PEP 440"):
        index.hashes("six", version)


@pytest.mark.parametrize("text", ["abc", "0", "-5", "nan", "inf", ""])
def test_bad_time_out_value(text: str) -> None:
    with pytest.raises(IndexError_, match="not a positive number of seconds"):
        parse_timeout(text)


def test_pip_config_read_through_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11 item 7: pip's files and PIP_* variables, with pip's precedence, no internals."""
    from relock.upstream.index import pip_config

    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:1/simple\n"
                    "extra-index-url = http://127.0.0.1:2/a\n  http://127.0.0.1:3/b\n"
                    "trusted-host = 127.0.0.1:2\ncert = /etc/ssl/x.pem\ntimeout = 7\n"
                    "[install]\nextra-index-url = http://127.0.0.1:4/c\n")
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_CERT", "/etc/ssl/env.pem")
    got = pip_config()
    assert got.urls == ("http://127.0.0.1:1/simple", "http://127.0.0.1:4/c")
    assert got.cert == "/etc/ssl/env.pem"
    assert got.trusted_hosts == ("127.0.0.1:2",)
    assert got.timeout == 7.0
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "soon")
    with pytest.raises(IndexError_, match=r"cannot read pip's configuration .*'soon'") as e:
        pip_config()
    assert "\n" not in str(e.value)


def test_pip_config_without_index_url_takes_pip_s_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.upstream.index import pip_config

    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    got = pip_config()
    assert len(got.urls) == 1 and got.urls[0].startswith("https://")
    assert got.urls[0].endswith("/simple")


# -- class: git ----------------------------------------------------------------

def test_hostile_lock_at_a_git_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "x.lock").write_text(GOOD.replace('name = "bash"', 'name = "bash\\nPin: *"'))
    git("add", "x.lock")
    git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "evil")
    (tmp_path / "x.lock").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("diff", "HEAD:x.lock", "x.lock"), "HEAD:x.lock", "apt[0].name")


def test_reader_error_on_an_unknown_key_is_escaped(tmp_path: Path) -> None:
    bad = tmp_path / "x.lock"
    bad.write_text(GOOD.replace("version = 1", 'version = 1\n"k\\u001b[2J" = 1'))
    with pytest.raises(LockfileError) as e:
        lockfile.read(bad)
    assert "\x1b" not in str(e.value)


def test_rootfs_without_a_template_still_freezes(tmp_path: Path) -> None:
    out = tmp_path / "x.lock"
    r = freeze_rootfs(rootfs(tmp_path), out, "-f", str(tmp_path / "none.in"))
    assert r.exit_code == 0, r.output
    assert lockfile.read(out).input.dockerfile == ""


def test_tampered_index_cache_is_not_trusted(tmp_path: Path) -> None:
    simple = tmp_path / "simple" / "six"
    simple.mkdir(parents=True)
    (simple / "index.html").write_text(f'<a href="six-1.0.tar.gz#sha256={H}">x</a>')
    index = Index(IndexConfig(((tmp_path / "simple").as_uri(),)), tmp_path / "cache")
    assert index.hashes("six", "1.0") == (f"sha256:{H}",)
    [cached] = (tmp_path / "cache").rglob("1.0.json")
    cached.write_text('["sha256:aa\\nRUN id"]')
    again = Index(IndexConfig(((tmp_path / "simple").as_uri(),)), tmp_path / "cache")
    assert again.hashes("six", "1.0") == (f"sha256:{H}",)
    assert again.requests_made == 1


@pytest.mark.parametrize(("metadata", "message"), [
    ("Name: six\nVersion: 1.0\n 2.0\n", "PEP 440"),
    ("Name: %2e%2e/secret\nVersion: 1.0\n", "not a normalised"),
])
def test_freeze_with_the_index_on_refuses_hostile_dists(tmp_path: Path, metadata: str,
                                                        message: str) -> None:
    """B1 and S6 with the index asked: one line, nothing read outside the index folder."""
    site = "opt/venv/lib/python3.13/site-packages/"
    root = rootfs(tmp_path, {
        "opt/venv/pyvenv.cfg": "version = 3.13.1\n",
        site + "x-1.0.dist-info/METADATA": metadata,
        site + "x-1.0.dist-info/INSTALLER": "pip\n",
    })
    simple = tmp_path / "index" / "simple"
    simple.mkdir(parents=True)
    secret = tmp_path / "index" / "secret"
    secret.mkdir()
    (secret / "index.html").write_text(f'<a href="secret-1.0.tar.gz#sha256={H}">x</a>')
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": simple.as_uri(),
            "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = tmp_path / "x.lock"
    r = CliRunner().invoke(cli, ["freeze", "--rootfs", str(root), "-o", str(out),
                                 "--snapshot", "20261101T000000Z"],
                           catch_exceptions=False, env=env)  # type: ignore[arg-type]
    one_line_error(r, message, "not asking the package index")
    assert not out.exists()


def test_non_utf8_environment_prefix(tmp_path: Path) -> None:
    """B1: a venv under a folder whose name is not UTF-8: one line, no lock."""
    root = rootfs(tmp_path)
    site = root / os.fsdecode(b"opt/v\xffenv") / "lib/python3.13/site-packages"
    (site / "six-1.16.0.dist-info").mkdir(parents=True)
    (site.parent.parent.parent / "pyvenv.cfg").write_text("version = 3.13.1\n")
    (site / "six-1.16.0.dist-info/METADATA").write_text("Name: six\nVersion: 1.16.0\n")
    (site / "six-1.16.0.dist-info/INSTALLER").write_text("pip\n")
    out = tmp_path / "x.lock"
    one_line_error(freeze_rootfs(root, out), "python[0].prefix", "is not UTF-8 text")
    assert not out.exists()


@pytest.mark.parametrize("kind", ["fifo", "symlink-to-fifo"])
def test_render_output_on_a_non_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    """B3 for render: the pinned Dockerfile never replaces a FIFO or a device."""
    lock = tmp_path / "x.lock"
    lock.write_text(GOOD)
    template = tmp_path / "Dockerfile.in"
    template.write_text("FROM debian:trixie-slim\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = fifo
    if kind == "symlink-to-fifo":
        out = tmp_path / "out"
        out.symlink_to(fifo)
    r = invoke("render", "-f", str(template), "--lock", str(lock), "-o", str(out), "--force")
    one_line_error(r, "not a regular file; not replacing")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert out == fifo or out.is_symlink()


def test_an_engine_that_never_answers_does_not_hold_relock(tmp_path: Path) -> None:
    """B9: an engine that accepts connections and never answers is cut off, and named."""
    sock_path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # accepted, never answered
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        lock = tmp_path / "good.lock"
        lock.write_text(GOOD)
        r = invoke("verify", "some-image", "--lock", str(lock),
                   env={"DOCKER_HOST": f"unix://{sock_path}", "RELOCK_ENGINE_TIMEOUT": "2"})
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()
    took = time.monotonic() - started
    line = one_line_error(r, "cannot reach the container engine")
    assert "timed out" in line.lower() or "time" in line.lower(), line
    assert held, "the engine was asked"
    assert took < 20, took


# -- class: index and archive deadlines (B9) ----------------------------------

class _Drip:
    """A loopback HTTP server that answers every request slowly, one way or another.

    ``headers``: the status line and headers one byte a second; ``body``:
    headers at once, then the body one byte a second; ``steady``: a 96 KiB
    body in 32 KiB parts, one a second (slow, but keeping pace).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.requests += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                b"Content-Length: %d\r\n\r\n")
        try:
            conn.recv(65536)
            if self.mode == "headers":
                for byte in head % 10:
                    if self.stop.is_set():
                        break
                    conn.sendall(bytes([byte]))
                    time.sleep(1)
            elif self.mode == "body":
                conn.sendall(head % 1000)
                for _ in range(1000):
                    if self.stop.is_set():
                        break
                    conn.sendall(b" ")
                    time.sleep(1)
            else:
                conn.sendall(head % (3 * 32768))
                for _ in range(3):
                    time.sleep(1)
                    conn.sendall(b"x" * 32768)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.server.close()


@pytest.fixture
def drip(request: pytest.FixtureRequest) -> Iterator[_Drip]:
    server = _Drip(request.param)
    yield server
    server.close()


@pytest.mark.parametrize("drip", ["headers", "body"], indirect=True)
def test_freeze_with_a_dripping_index_is_cut_off(tmp_path: Path, drip: _Drip) -> None:
    """B9: an index that drips its headers or its page is cut off at pip's time-out."""
    site = "opt/venv/lib/python3.13/site-packages/"
    root = rootfs(tmp_path, {
        "opt/venv/pyvenv.cfg": "version = 3.13.1\n",
        site + "six-1.16.0.dist-info/METADATA": "Name: six\nVersion: 1.16.0\n",
        site + "six-1.16.0.dist-info/INSTALLER": "pip\n",
    })
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DEFAULT_TIMEOUT": "2",
            "PIP_INDEX_URL": drip.url.replace("http://", "http://alice:hunter2@") + "/simple",
            "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = tmp_path / "locks" / "x.lock"
    started = time.monotonic()
    r = CliRunner().invoke(cli, ["freeze", "--rootfs", str(root), "-o", str(out),
                                 "--snapshot", "20261101T000000Z"],
                           catch_exceptions=False, env=env)  # type: ignore[arg-type]
    took = time.monotonic() - started
    line = one_line_error(r, f"package index {drip.url}/simple", "within 2 s (timed out)")
    assert "hunter2" not in line and "alice" not in line
    assert not out.parent.exists()
    assert drip.requests == 1
    assert took < 12, took  # two pip runs (~1 s each), then the 2 s deadline


def _deb_lock(url: str) -> lockfile.Lock:
    from relock.lock.lockfile import AptPackage, AptSource
    from tests.factories import make_lock

    return make_lock(
        apt_sources=(AptSource("/etc/apt/sources.list", ("deb",), (url + "/debian",),
                               ("trixie",), ("main",)),),
        apt=(AptPackage("pkga", "1.0", "amd64", sha256=H,
                        filename="pool/main/p/pkga/pkga_1.0_amd64.deb"),))


@pytest.mark.parametrize("drip", ["headers", "body"], indirect=True)
def test_fetching_debs_from_a_dripping_archive_is_cut_off(
        tmp_path: Path, drip: _Drip, monkeypatch: pytest.MonkeyPatch) -> None:
    """B9 for a build's fetch of .debs: RELOCK_HTTP_TIMEOUT bounds headers and pace."""
    from relock.build import rebuild
    from relock.errors import ArchiveError
    from relock.upstream import http

    monkeypatch.setenv("RELOCK_HTTP_TIMEOUT", "2")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lock = _deb_lock(drip.url.replace("http://", "http://bob:s3cret@"))
    before = set(http._watcher._watches)  # other tests' requests are not this one's business
    started = time.monotonic()
    with pytest.raises(ArchiveError) as e:
        rebuild.fetch_debs(lock, list(lock.apt), rebuild.RebuildOptions(
            use_snapshot=False, cache_dir=tmp_path / "blobs"), lambda _: None)
    took = time.monotonic() - started
    message = str(e.value)
    assert "\n" not in message
    assert f"{drip.url}/debian/pool/main/p/pkga/pkga_1.0_amd64.deb" in message
    assert "timed out" in message and "2 s" in message and "RELOCK_HTTP_TIMEOUT" in message
    assert "s3cret" not in message and "bob" not in message
    assert took < 8, took
    assert http._watcher._watches <= before  # every request let go of its watch
    blobs = tmp_path / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


@pytest.mark.parametrize("drip", ["headers", "body", "steady"], indirect=True)
def test_http_deadlines(drip: _Drip) -> None:
    """The rule itself: headers have a deadline, a body a pace; slow and steady passes."""
    from relock.upstream import http

    limits = http.Limits(headers=2, stall=2)
    session = http.session()
    before = set(http._watcher._watches)
    started = time.monotonic()
    if drip.mode == "steady":
        with http.watched(drip.url, limits) as watch:
            resp = session.get(drip.url, stream=True, timeout=10)
            watch.answered(resp)
            assert len(resp.content) == 3 * 32768
        return
    with pytest.raises(http.HttpTimeoutError, match=r"within 2 s|in 2 s") as e, \
            http.watched(drip.url, limits) as watch:
        resp = session.get(drip.url, stream=True, timeout=10)
        watch.answered(resp)
        resp.content  # noqa: B018  (reading is the point)
    assert drip.url in str(e.value)
    assert time.monotonic() - started < 5
    assert http._watcher._watches <= before


@pytest.mark.parametrize("drip", ["headers"], indirect=True)
def test_registry_that_drips_is_cut_off(drip: _Drip, monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.upstream.registry import Registry, RegistryUnreachable

    monkeypatch.setenv("RELOCK_HTTP_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(RegistryUnreachable, match=r"within 1 s .*timed out"):
        Registry(drip.url.removeprefix("http://")).manifest("x", "latest")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("text", ["soon", "0", "-1", "nan"])
def test_bad_http_time_out(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.upstream import http

    monkeypatch.setenv("RELOCK_HTTP_TIMEOUT", text)
    with pytest.raises(RelockError, match="RELOCK_HTTP_TIMEOUT"):
        http.Limits.from_env()


# -- class: engine calls past connecting (B9) ----------------------------------

class _SilentEngine:
    """A loopback engine API on a unix socket that answers some calls and never others."""

    IMAGE = "sha256:" + "4" * 64
    CONTAINER = "c" * 64

    def __init__(self, path: Path, hang: str) -> None:
        import json
        import re
        import socketserver

        hang_on = hang
        stop = self.stop = threading.Event()
        image, container = self.IMAGE, self.CONTAINER

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                path = re.sub(r"^/v[0-9.]+", "", self.path.split("?")[0])
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                routes = {
                    "version": ("GET", r"/version", {"ApiVersion": "1.43", "Version": "x"}),
                    "image": ("GET", r"/images/[^/]+/json",
                              {"Id": image, "RootFS": {"Layers": []}, "Os": "linux",
                               "Architecture": "amd64"}),
                    "images": ("GET", r"/images/json", []),
                    "info": ("GET", r"/info", {"RegistryConfig": {"Mirrors": []}}),
                    "pull": ("POST", r"/images/create", {}),
                    "create": ("POST", r"/containers/create", {"Id": container}),
                    "inspect": ("GET", r"/containers/[^/]+/json", {"Id": container}),
                    "export": ("GET", r"/containers/[^/]+/export", None),
                    "remove": ("DELETE", r"/containers/[^/]+", None),
                }
                for name, (method, pattern, body) in routes.items():
                    if method == self.command and re.fullmatch(pattern, path):
                        if name == hang_on:
                            stop.wait(60)  # accepted, never answered
                            return
                        data = json.dumps(body).encode() if body is not None else b""
                        self.send_response(200 if body is not None else 204)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                self.send_error(404)

            do_GET = do_POST = do_DELETE = _answer

            def address_string(self) -> str:
                return "local"

            def log_message(self, *args: object) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(str(path), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("hang", "call"), [
    ("image", "image"), ("images", "images"), ("info", "registry_mirrors"), ("pull", "pull"),
    ("export", "open_rootfs"), ("create", "open_rootfs"),
])
def test_an_engine_that_stops_answering_is_cut_off_on_every_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hang: str, call: str) -> None:
    """B9: past connecting, each engine call relock makes (but a build's log) is bounded."""
    from relock.errors import EngineError
    from relock.image import engine

    sock = tmp_path / "engine.sock"
    fake = _SilentEngine(sock, hang)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    started = time.monotonic()
    try:
        client = engine.connect(timeout=1)
        info = engine.ImageInfo(id=_SilentEngine.IMAGE)
        with pytest.raises(EngineError) as e:
            if call == "open_rootfs":
                client._attrs[info.id] = {}
                with client.open_rootfs(info) as fs:
                    fs.read_bytes("etc/os-release")
            elif call == "pull":
                client.pull("localhost:5000/x:1")
            elif call == "image":
                client.image("x")
            else:
                getattr(client, call)()
    finally:
        fake.close()
    message = str(e.value)
    assert "\n" not in message
    assert "timed out" in message and "within 1 s" in message, message
    assert time.monotonic() - started < 10


def test_a_silent_build_is_said(tmp_path: Path) -> None:
    """B9: a build's log stream has no deadline, but its silence is reported while it lasts."""
    from relock.build import enginebuild as build
    from relock.image.engine import BuildEvent, BuildRequest
    from relock.template import render

    prefix = render.view_prefix("http://127.0.0.1:7781", "ab12")

    class Slow:
        def build(self, request: BuildRequest) -> Iterator[BuildEvent]:
            # As the engine echoes a pinned step: relock's prefix, then the template's command.
            yield BuildEvent("log", f"Step 2/3 : RUN {prefix} make")
            time.sleep(1.3)
            yield BuildEvent("image", "sha256:" + "5" * 64)

    said: list[str] = []
    result = build.build(Slow(), tmp_path, "Dockerfile", progress=said.append, silence=0.5)
    assert result.image_id == "sha256:" + "5" * 64
    assert len(said) == 2, said  # at 0.5 s and at 1.0 s of silence
    assert all("said nothing of the build" in line and "(at Step 2/3 : RUN make)" in line
               for line in said), said


# -- class: output of render (B1, B2, B6, B7) ---------------------------------

def _render(tmp_path: Path, out: Path, template_text: str = "FROM debian:trixie-slim\n"
            ) -> list[str]:
    lock = tmp_path / "x.lock"
    lock.write_text(GOOD)
    template = tmp_path / "Dockerfile.in"
    template.write_text(template_text)
    return ["render", "-f", str(template), "--lock", str(lock), "-o", str(out), "--force"]


def test_render_on_a_full_disk_keeps_the_old_output(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """B1/B2: render's -o on a full file system: one line, the old file stays, no temp."""
    import errno

    from relock import files

    out = tmp_path / "out" / "Dockerfile"
    out.parent.mkdir()
    out.write_text("old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    one_line_error(invoke(*_render(tmp_path, out)), str(out), "No space left on device",
                   "the old file is kept")
    assert out.read_text() == "old\n"
    assert files_in(out.parent) == ["Dockerfile"]


def test_render_into_a_folder_nothing_can_be_written_to(tmp_path: Path) -> None:
    """B1: a read-only output folder for render (as root, /sys is one) is one line."""
    folder = Path("/sys/relock-hostile-test")
    if os.access("/sys", os.W_OK) and not Path("/sys").is_mount():
        pytest.skip("no read-only folder to write into")
    one_line_error(invoke(*_render(tmp_path, folder / "Dockerfile")), str(folder),
                   "cannot write here")
    assert not folder.exists()


def test_eight_renders_to_one_output_at_once(tmp_path: Path) -> None:
    """B2: concurrent renders to one -o: every one exits 0 and the file is whole."""
    out = tmp_path / "out" / "Dockerfile"
    args = _render(tmp_path, out)
    assert invoke(*args).exit_code == 0
    expected = out.read_text()
    out.unlink()
    procs = [subprocess.Popen([sys.executable, "-m", "relock", *args], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "Traceback" not in err, err
    assert out.read_text() == expected
    assert files_in(out.parent) == ["Dockerfile"]


def test_every_form_of_run_reaches_only_the_view(tmp_path: Path) -> None:
    """B6: exec form, sh -c, a heredoc, uv, a script, under '# escape=': each RUN is pinned."""
    template = ("# escape=`\nFROM debian:trixie-slim\nRUN [\"pip\", \"install\", \"six\"]\n"
                "RUN sh -c 'pip install six'\nRUN <<EOT\nuv pip install six\nEOT\n"
                "RUN ./install.sh\n")
    out = tmp_path / "out" / "Dockerfile"
    r = invoke(*_render(tmp_path, out, template))
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


def test_two_venvs_with_one_folder_name_stay_apart(tmp_path: Path) -> None:
    """B7: /root/.venv and /root/venv are two environments in the lock. (The support
    files whose names collided are gone: the locked view serves every environment.)"""
    files: dict[str, str | bytes] = {}
    for env, version in (("root/.venv", "1.16.0"), ("root/venv", "1.17.0")):
        site = f"{env}/lib/python3.13/site-packages/six-{version}.dist-info/"
        files |= {f"{env}/pyvenv.cfg": "version = 3.13.1\n",
                  site + "METADATA": f"Name: six\nVersion: {version}\n",
                  site + "INSTALLER": "pip\n"}
    lock_path = tmp_path / "x.lock"
    r = freeze_rootfs(rootfs(tmp_path, files), lock_path)
    assert r.exit_code == 0, r.output
    lock = lockfile.read(lock_path)
    assert sorted((p.env, p.version) for p in lock.pip) == [
        ("/root/.venv", "1.16.0"), ("/root/venv", "1.17.0")]
    assert sorted(e.prefix for e in lock.python) == ["/root/.venv", "/root/venv"]
