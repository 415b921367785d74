"""Two images' merged views compared file by file, and the differences shown."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from relock.image import filediff
from relock.image import layers as lay
from tests.fakes import Member, image_archive

BASE: list[Member | str] = [
    Member("etc", kind="dir", mode=0o755), Member("etc/os-release", b"ID=debian\n"),
    Member("bin", kind="dir", mode=0o755),
    Member("bin/sh", kind="symlink", link="dash", mode=0o777),
    Member("bin/dash", b"elf", mode=0o755), Member("var/log/old.log", b"x"),
]


def view(*layers: list[Member | str], steps: list[str] | None = None) -> lay.ImageFiles:
    with lay.archive_layers(io.BytesIO(image_archive(list(layers), steps)), "img") as found:
        return lay.read_image(lay.with_steps(found, lambda c: c.removeprefix("PREFIX; ")))


def test_the_same_files_are_no_difference() -> None:
    a = view(BASE, [Member("etc/build-date", b"same", mtime=1)])
    b = view(BASE, [Member("etc/build-date", b"same", mtime=2)])
    assert filediff.compare(a, b) == []
    (d,) = filediff.compare(a, b, mtimes=True)
    assert d.what == ("mtime",)
    assert "mtime 1970-01-01T00:00:01Z → 1970-01-01T00:00:02Z" in filediff.format_text([d], a, b)
    doc = json.loads(filediff.format_json([d], a, b, mtimes=True))
    assert (doc["files"][0]["a"]["mtime"], doc["files"][0]["b"]["mtime"]) == (1, 2)


def test_a_file_written_at_build_time_is_named_with_its_layer_and_step() -> None:
    steps = ["debian.sh trixie", "/bin/sh -c PREFIX; date > /etc/build-date"]
    a = view(BASE, [Member("etc/build-date", b"Mon 1\n")], steps=steps)
    b = view(BASE, [Member("etc/build-date", b"Tue 2\n")], steps=steps)
    (d,) = filediff.compare(a, b)
    assert (d.path, d.what, d.status) == ("/etc/build-date", ("content",), "changed")
    assert d.a.layer is not None and d.b.layer is not None
    assert d.a.layer.index == d.b.layer.index == 1
    assert d.a.layer.step == "RUN date > /etc/build-date"  # the view prefix left out
    assert d.a.layer.diff_id != d.b.layer.diff_id
    # One line, as a build that did not reproduce its image says it.
    assert re.fullmatch(r"/etc/build-date: content sha256:\S+ \(6 B\) → sha256:\S+ \(6 B\) "
                        r"\(RUN date > /etc/build-date\)", d.describe()), d.describe()


@pytest.mark.parametrize(("change", "what"), [
    (Member("bin/dash", b"elf", mode=0o4755), ("mode",)),
    (Member("bin/dash", b"elf", mode=0o755, uid=1000, gid=1000), ("owner",)),
    (Member("bin/sh", kind="symlink", link="bash", mode=0o777), ("link",)),
    (Member("bin/sh", b"a file now", mode=0o777), ("type",)),
    (Member("bin/dash", b"ELF", mode=0o700), ("content", "mode")),
])
def test_each_aspect_of_a_file_is_compared(change: Member, what: tuple[str, ...]) -> None:
    a, b = view(BASE), view(BASE, [change])
    (d,) = filediff.compare(a, b)
    assert d.path == "/" + change.name and d.what == what


def test_presence_either_way_and_who_removed_it() -> None:
    a = view(BASE)
    b = view(BASE, ["var/log/.wh.old.log", "etc/new"],
             steps=["base", "/bin/sh -c rm /var/log/old.log && touch /etc/new"])
    new, gone = filediff.compare(a, b)
    assert (new.path, new.status, new.what) == ("/etc/new", "added", ("presence",))
    assert (gone.path, gone.status) == ("/var/log/old.log", "removed")
    assert gone.b.entry is None and gone.b.layer is not None and gone.b.layer.index == 1
    assert gone.a.layer is not None and gone.a.layer.index == 0
    # Compared the other way, the roles swap.
    assert [d.status for d in filediff.compare(b, a)] == ["removed", "added"]


def test_the_text_names_the_path_what_differs_and_both_layers() -> None:
    a = view(BASE, [Member("etc/build-date", b"1")], steps=["base", "/bin/sh -c date > x"])
    b = view(BASE, [Member("etc/build-date", b"22", mode=0o600)],
             steps=["base", "/bin/sh -c date > x"])
    found = filediff.compare(a, b)
    text = filediff.format_text(found, a, b)
    assert "1 file differs: 1 changed, 0 only in B, 0 only in A." in text
    assert "/etc/build-date  content sha256:" in text and "mode 0644 → 0600" in text
    assert f"A: in layer 2/2 {a.layers[1].short}: RUN date > x" in text
    assert f"B: in layer 2/2 {b.layers[1].short}: RUN date > x" in text
    assert "etc/build-date" not in filediff.format_text(found, a, b, stat=True)
    assert filediff.format_text([], a, a).endswith("The images hold the same files.\n")


def test_markdown_is_one_table_row_per_file_with_pipes_escaped() -> None:
    a = view(BASE)
    b = view(BASE, [Member("etc/a|b", b"1")], steps=["base", "/bin/sh -c echo | tee a"])
    md = filediff.format_markdown(filediff.compare(a, b), a, b)
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert rows == [f"| `/etc/a\\|b` | only in B (file) | absent | in layer 2/2 "
                    f"{b.layers[1].short}: RUN echo \\| tee a |"]


def test_the_json_is_the_documented_shape() -> None:
    a = view(BASE, [Member("etc/x", b"1")])
    b = view(BASE, [Member("etc/x", b"2", uid=3)], ["var/log/.wh.old.log"])
    doc = json.loads(filediff.format_json(filediff.compare(a, b), a, b, mtimes=False))
    assert doc["version"] == 1 and doc["identical"] is False
    assert doc["mtimes_compared"] is False
    assert doc["counts"] == {"files": 2, "added": 0, "removed": 1, "changed": 1}
    assert [x["index"] for x in doc["b"]["layers"]] == [0, 1, 2]
    assert set(doc["a"]) == {"label", "id", "layers"}
    x, log = doc["files"]
    assert x["path"] == "/etc/x" and x["differs"] == ["content", "owner"]
    assert x["a"]["uid"] == 0 and x["b"]["uid"] == 3 and x["b"]["layer"] == 1
    assert x["a"]["sha256"] != x["b"]["sha256"] and x["a"]["mode"] == "0644"
    assert log["status"] == "removed" and log["b"] is None and log["b_removed_by"] == 2
    assert log["a_removed_by"] is None
    stat = json.loads(filediff.format_json([], a, a, mtimes=True, stat=True))
    assert "files" not in stat and stat["identical"] is True


def test_names_that_could_forge_lines_or_are_not_utf8_are_escaped() -> None:
    assert filediff.shown("a\nb\x1b[31m") == "a\\x0ab\\x1b[31m"
    assert filediff.shown("x\udcffy") == "x\\xffy"
    assert filediff.shown("back\\slash") == "back\\\\slash"
    a = view(BASE)
    b = view(BASE, [Member("etc/evil\nrelock: all good", b"1")])
    text = filediff.format_text(filediff.compare(a, b), a, b)
    assert "\nrelock: all good" not in text and "evil\\x0arelock: all good" in text


DOCS = Path(__file__).resolve().parents[2] / "docs" / "diff-files-json.md"


def _documented() -> dict[str, set[str]]:
    """The keys of each table of docs/diff-files-json.md, by the heading above it."""
    tables: dict[str, set[str]] = {}
    heading = ""
    for line in DOCS.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        m = re.match(r"\| `(\w+)` \|", line)
        if m:
            tables.setdefault(heading, set()).add(m[1])
    return tables


def test_every_key_written_is_documented_and_every_documented_key_written() -> None:
    a = view(BASE, [Member("etc/x", b"1")])
    b = view(BASE, [Member("etc/x", b"2")], ["var/log/.wh.old.log"])
    doc = json.loads(filediff.format_json(filediff.compare(a, b), a, b, mtimes=True))
    written = {"Top level": set(doc), "Images": set(doc["a"]),
               "Layers": set(doc["a"]["layers"][0]), "Counts": set(doc["counts"]),
               "Files": set(doc["files"][0]), "Entries": set(doc["files"][0]["a"])}
    assert written == _documented()
