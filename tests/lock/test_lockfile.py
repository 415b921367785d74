"""The lock model: round trips, determinism, the strict reader, the schema doc."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from relock import files
from relock.errors import LockfileError, OutputError
from relock.lock import lockfile
from relock.lock.lockfile import (
    AptPackage,
    AptSource,
    Base,
    Lock,
    PipPackage,
    PythonEnv,
)
from tests.factories import make_lock

ROOT = Path(__file__).resolve().parents[2]


def sample() -> Lock:
    return make_lock(
        snapshot="20261101T000000Z",
        snapshot_from="release-date",
        base=(Base(0, "debian:trixie-slim", "sha256:" + "1" * 64),),
        apt_sources=(
            AptSource("/etc/apt/sources.list.d/debian.sources", ("deb",), ("http://m/debian",),
                      ("trixie", "trixie-updates"), ("main",),
                      {"signed-by": "/usr/share/keyrings/debian-archive-keyring.gpg"}),
        ),
        python=(PythonEnv("/opt/venv", "3.13", "/opt/venv/lib/python3.13/site-packages", True),),
        apt=(
            AptPackage("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", "amd64", "zlib",
                       "1:1.3.dfsg+really1.3.1-1", auto=True),
            AptPackage("bash", "5.2.37-2+b5", "amd64"),
        ),
        pip=(
            PipPackage("six", "1.16.0", "/opt/venv", True,
                       ("sha256:" + "b" * 64, "sha256:" + "a" * 64)),
            PipPackage("idna", "3.10", "/opt/venv", False, ("sha256:" + "c" * 64,)),
        ),
    )


def test_round_trip_gives_the_sorted_lock() -> None:
    lock = sample()
    assert lockfile.loads(lockfile.dumps(lock)) == lock.sorted()


def test_bytes_do_not_depend_on_input_order() -> None:
    lock = sample()
    shuffled = dataclasses.replace(lock, apt=lock.apt[::-1], pip=lock.pip[::-1])
    assert lockfile.dumps(lock) == lockfile.dumps(shuffled)


def test_version_is_the_first_key_and_file_ends_with_newline() -> None:
    text = lockfile.dumps(sample())
    first = next(line for line in text.splitlines() if line and not line.startswith("#"))
    assert first == "version = 2"
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "do not edit" in text.splitlines()[0]


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "x.lock"
    lockfile.write(sample(), path)
    assert lockfile.read(path) == sample().sorted()
    assert [p.name for p in path.parent.iterdir()] == ["x.lock"]


def test_failed_write_keeps_the_old_lock(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.lock"
    path.write_text("old")

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OutputError, match="disk full; the old file is kept"):
        lockfile.write(sample(), path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.lock"]


GOOD = lockfile.dumps(sample())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no 'version' key"),
        ("version = 3\n", "newer than this relock"),
        ("version = 0\n", "unknown lock schema version 0"),
        ('version = "1"\n', "'version' must be an integer"),
        (GOOD.replace("version = 2", "version = 2\nextra = 3"), "unknown key 'extra'"),
        (GOOD.replace('name = "bash"', 'name = "bash"\ncolour = "red"'),
         "apt[0]: unknown key 'colour'"),
        (GOOD.replace('requested = true', 'requested = "yes"'), "pip[1].requested: wrong type"),
        (GOOD.replace('[distro]\nid = "debian"', '[distro]\nversion_id = "13"')
            .replace('\nversion_id = "13"\nversion_id = "13"', '\nversion_id = "13"'),
         "[distro]: missing key 'id'"),
        (GOOD[: len(GOOD) // 2] + "[[apt", "not valid TOML"),
        (GOOD.replace("[input]", "[inputs]"), "unknown key 'inputs'"),
    ],
)
def test_strict_reader_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(LockfileError) as e:
        lockfile.loads(text, "locks/x.lock")
    assert str(e.value).startswith("locks/x.lock")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="no such lock file"):
        lockfile.read(tmp_path / "nope.lock")


def _doc_sections() -> dict[str, list[tuple[str, str]]]:
    """(key or grammar name, second column) rows of each of docs/lockfile.md's tables."""
    doc = (ROOT / "docs" / "lockfile.md").read_text()
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in doc.splitlines():
        if line.startswith("## "):
            heading = re.match(r"## (?:`\[\[?(\w+)\]\]?`|(Top level)|(Value grammar))", line)
            current = ""
            if heading:
                current = heading.group(1) or ("top" if heading.group(2) else "grammar")
                sections[current] = []
        row = re.match(r"\| `(\w[\w-]*)` \| ((?:[^|\\]|\\.)*) \|(?: ([^|]*) \|)?", line)
        if row and current:
            cell = row.group(2) if current == "grammar" else (row.group(3) or "")
            sections[current].append((row.group(1), cell.strip()))
    return sections


def _documented_keys() -> dict[str, list[str]]:
    return {name: [key for key, _ in rows] for name, rows in _doc_sections().items()
            if name != "grammar"}


def test_schema_document_matches_the_model() -> None:
    documented = _documented_keys()
    assert documented.pop("top") == ["version", "platform", "platforms", "snapshot",
                                     "snapshot_from"]
    model = {name: [f.name for f in dataclasses.fields(cls)]
             for name, cls in lockfile.TABLES.items()}
    assert documented == model


def test_schema_document_states_the_reader_s_grammar() -> None:
    """Each key's grammar column is the reader's, and each grammar is defined as coded."""
    from relock.lock.grammar import GRAMMARS

    sections = _doc_sections()
    defined = {name: text.replace("\\|", "|") for name, text in sections.pop("grammar")}
    assert defined == {g.name: g.text for g in GRAMMARS.values()}
    for table, rows in sections.items():
        for key, cell in rows:
            spec = lockfile.GRAMMAR.get(table, {}).get(key)
            if spec is None:
                assert cell == "-", (table, key)
                continue
            assert re.findall(r"`([a-z0-9-]+)`", cell) == spec.split(": "), (table, key)
            assert cell.endswith(", or empty") == lockfile.empty_ok(table, key), (table, key)
    assert set(lockfile.GRAMMAR) == {"top", *lockfile.TABLES}


GOOD_VALUES = {
    "sha256-digest": ["sha256:" + "0a" * 32],
    "sha256-hex": ["f" * 64],
    "image-ref": ["debian:trixie-slim", "localhost:5000/a/b_c:1.0",
                  "ghcr.io/x/y@sha256:" + "1" * 64],
    "stage-name": ["builder", "Build.2"],
    "stage": ["builder", "0", "12"],
    "platform": ["linux/amd64", "linux/arm/v7", "linux/x86_64"],
    "snapshot-id": ["20261101T000000Z"],
    "snapshot-from": ["release-date", "image-created", "user"],
    "pip-kind": ["context", "build"],
    "text": ["Dockerfile.in", "dir with space/Dockerfile", "värde"],
    "build-arg-name": ["PY_VERSION", "http_proxy"],
    "os-release-word": ["debian", "22.04", "opensuse-leap"],
    "abs-path": ["/", "/opt/venv", "/usr/lib/python3/dist-packages"],
    "apt-type": ["deb", "deb-src"],
    "download-url": ["https://files.example/v1.2/tool-linux-amd64.tar.gz",
                     "http://127.0.0.1:8080/data/model.bin?x=1"],
    "apt-uri": ["http://deb.example/debian", "https://h:8080/x/", "file:/srv/archive",
                "mirror+file:/etc/apt/mirrors.txt", "http://[::1]:3142/debian"],
    "apt-suite": ["trixie", "trixie-updates", "./", "stable/updates", "$(ARCH)/"],
    "apt-option-key": ["signed-by", "arch", "arch-", "Check-Valid-Until"],
    "apt-option-value": ["/usr/share/keyrings/k.gpg", "amd64,i386", "yes"],
    "debian-name": ["libc6", "g++", "libstdc++6", "x11-common"],
    "debian-version": ["1:1.3.dfsg+really1.3.1-1+b1", "5.2.37-2+b5", "2.0~rc1", "1.0",
                       "1.2-3-4", "2:1.0"],
    "debian-arch": ["amd64", "all", "musl-linux-arm64"],
    "archive-path": ["pool/main/b/bash/bash_5.2.37-2+b5_amd64.deb",
                     "pool/main/z/zlib/zlib1g_1%3a1.3_amd64.deb"],
    "python-version": ["3.13"],
    "pep503-name": ["six", "zope-interface", "a"],
    "pep440-version": ["1.16.0", "2.0rc1", "1.0.post1", "1!2.0", "2.3.0+cpu"],
}

BAD_VALUES = {
    "sha256-digest": ["sha256:aa", "md5:" + "a" * 32, "sha256:" + "g" * 64,
                      "sha256:" + "A" * 64, "sha256:" + "a" * 64 + "\nRUN id"],
    "sha256-hex": ["a" * 63, "a" * 64 + "\n"],
    "image-ref": ["debian\nRUN id", "Debian:x", "debian:a b", "-x", "debian:tag@sha256:1"],
    "stage-name": ["1st", "a b", "a\n"],
    "stage": ["-1", "a b"],
    "platform": ["linux", "linux/amd64\n", "linux/AMD64", "linux/a/b/c"],
    "snapshot-id": ["20261301T000000Z", "2026-11-01", "20261101T000000Z\n"],
    "snapshot-from": ["now"],
    "pip-kind": ["local", "Build", ""],
    "text": ["a\nb", "a\x1b[31m", "a\x00", "a\u2028b"],
    "build-arg-name": ["A=B", "A B", "A\n"],
    "os-release-word": ["debian 13", "a\"b"],
    "abs-path": ["opt/venv", "/opt/venv/", "/opt/../etc", "//x", "/opt/\nvenv", "/opt/./v"],
    "apt-type": ["rpm", "deb "],
    "download-url": ["ftp://h/x", "https://u:p@h/x", "https:///x", "https://h/a b",
                     "https://h/$V/x", "https://h/" + "x" * 2048, "files.example/x"],
    "apt-uri": ["http://u:p@host/debian", "http://u@host/x", "ftp://h/x",
                'http://h/x";\nAPT::Update::Pre-Invoke {"id";};', "http://h/a b",
                "http://h/$(id)", "javascript:alert(1)", "http://h/x\n"],
    "apt-suite": ["trixie main", "a;b", "$(id)", "x\n"],
    "apt-option-key": ["-x", "a b", "a=b"],
    "apt-option-value": ['x";', "x]", "a\nb", "a{b"],
    "debian-name": ["a", "Bash", "-x", "a b", "a_b", "bash\n"],
    "debian-version": ["1.0 ", "1.0\x00", "1.0-", "a:1.0", ":1.0", "1.0-1_2", "1.0\n"],
    "debian-arch": ["AMD64", "amd64 ", "-x"],
    "archive-path": ["/pool/x.deb", "pool/../../etc/passwd", "pool//x", "./x.deb",
                     "pool/a b.deb", "pool/x\n"],
    "python-version": ["3", "3.13.1", "3.x"],
    "pep503-name": ["Six", "zope.interface", "zope_interface", "%2e%2e/x", "-a"],
    "pep440-version": ["1.0 ", " 1.0", "one", "1.0\n", "1.0 ; rm"],
}


def test_grammar_cases_cover_every_grammar() -> None:
    from relock.lock.grammar import GRAMMARS

    assert set(GOOD_VALUES) == set(GRAMMARS) == set(BAD_VALUES)


@pytest.mark.parametrize(("grammar", "value"),
                         [(g, v) for g, vs in GOOD_VALUES.items() for v in vs])
def test_grammar_accepts(grammar: str, value: str) -> None:
    from relock.lock.grammar import problem

    assert problem(grammar, value) == ""


@pytest.mark.parametrize(("grammar", "value"),
                         [(g, v) for g, vs in BAD_VALUES.items() for v in [*vs, ""]])
def test_grammar_refuses(grammar: str, value: str) -> None:
    from relock.lock.grammar import problem

    assert problem(grammar, value)


def test_the_image_a_reproducible_build_gave_is_recorded_per_platform() -> None:
    from relock.lock.lockfile import ImageDigest

    made = ImageDigest("sha256:" + "9" * 64, "sha256:" + "8" * 64)
    lock = sample().with_image(made)
    text = lockfile.dumps(lock)
    assert text.rstrip().endswith(f'[[image]]\nconfig = "{made.config}"\n'
                                  f'manifest = "{made.manifest}"')
    assert lockfile.loads(text) == lock.sorted() and lockfile.loads(text).image_digest() == made
    assert sample().image_digest() is None
    # Recorded again: replaced, not repeated.
    again = lock.with_image(dataclasses.replace(made, config="sha256:" + "e" * 64))
    assert [d.config for d in again.image] == ["sha256:" + "e" * 64]
    # A lock of two platforms keeps each platform's own; its parts give them back.
    arm = dataclasses.replace(sample(), platform="linux/arm64").with_image(
        dataclasses.replace(made, config="sha256:" + "f" * 64))
    both = lock.with_part(arm)
    assert {d.platform for d in both.image} == {"linux/amd64", "linux/arm64"}
    assert both.for_platform("linux/arm64").image_digest().config == "sha256:" + "f" * 64
    assert lockfile.loads(lockfile.dumps(both)) == both.sorted()
    with pytest.raises(LockfileError, match=r"image\[1\] repeats image\[0\]"):
        lockfile.loads(text + f'\n[[image]]\nconfig = "{made.config}"\n')
    with pytest.raises(LockfileError, match=r"image\[0\]\.config"):
        lockfile.loads(text.replace(made.config, "sha256:nothex"))


def test_the_inputs_of_a_lock_leave_out_the_image_it_gave() -> None:
    from relock.lock.lockfile import ImageDigest

    plain = lockfile.dumps(sample()).encode()
    assert lockfile.inputs_text(plain) == plain
    recorded = lockfile.dumps(sample().with_image(
        ImageDigest("sha256:" + "9" * 64, "sha256:" + "8" * 64))).encode()
    assert recorded != plain and lockfile.inputs_text(recorded) == plain


# -- [frontend] -------------------------------------------------------------------

FRONTEND = lockfile.Frontend("docker/dockerfile:1", "sha256:" + "f" * 64)


def test_a_frontend_round_trips_after_distro() -> None:
    lock = dataclasses.replace(sample(), frontend=FRONTEND)
    text = lockfile.dumps(lock)
    assert lockfile.loads(text) == lock.sorted()
    assert ('[distro]\nid = "debian"\nversion_id = "13"\ncodename = "trixie"\n\n'
            '[frontend]\nref = "docker/dockerfile:1"\ndigest = "sha256:' + "f" * 64
            + '"\nbuild_arg = false\n\n[[base]]') in text


def test_a_lock_without_a_frontend_still_reads_and_writes_none() -> None:
    assert "[frontend]" not in GOOD
    assert lockfile.loads(GOOD).frontend is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[frontend]\nref = "docker/dockerfile:1"\n', "[frontend]: missing key 'digest'"),
        ('[frontend]\nref = "docker/dockerfile:1"\ndigest = "sha256:1"\n',
         "[frontend].digest: 'sha256:1' not"),
        ('[frontend]\nref = "docker/dockerfile:1\\nRUN id"\ndigest = "sha256:' + "f" * 64
         + '"\n', "[frontend].ref:"),
        ('[frontend]\nref = "docker/dockerfile:1"\ndigest = "sha256:' + "f" * 64
         + '"\ncolour = "red"\n', "[frontend]: unknown key 'colour'"),
        ('[frontend]\nref = "docker/dockerfile:1"\ndigest = "sha256:' + "f" * 64
         + '"\nbuild_arg = "yes"\n', "[frontend].build_arg: wrong type"),
        ('frontend = "docker/dockerfile:1"\n', "[frontend]: must be a table"),
    ],
)
def test_the_frontend_table_is_read_strictly(table: str, message: str) -> None:
    text = GOOD.replace("[[base]]", table + "\n[[base]]", 1)
    if not table.startswith("["):  # a key, not a table: before the first table
        text = GOOD.replace("[input]", table + "\n[input]", 1)
    with pytest.raises(LockfileError) as e:
        lockfile.loads(text, "locks/x.lock")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_a_platform_part_added_keeps_the_frontend() -> None:
    amd = dataclasses.replace(sample(), frontend=FRONTEND)
    arm = dataclasses.replace(amd, platform="linux/arm64")
    both = amd.with_part(arm)
    assert both.frontend == FRONTEND
    assert both.for_platform("linux/arm64").frontend == FRONTEND
    assert lockfile.loads(lockfile.dumps(both)).frontend == FRONTEND
    assert lockfile.Frontend("docker/dockerfile:1", FRONTEND.digest).pinned \
        == "docker/dockerfile:1@" + FRONTEND.digest
