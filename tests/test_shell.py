"""Shell words with spans, for rewriting RUN lines in place."""

from __future__ import annotations

from relock.shell import commands, replace, strip_assignments, words


def test_words_keep_spans_and_unquote() -> None:
    line = "apt-get install -y 'a b' \"c\\\"d\" e\\ f"
    got = words(line)
    assert [w.text for w in got] == ["apt-get", "install", "-y", "a b", 'c"d', "e f"]
    assert all(line[w.start:w.end] for w in got)
    assert line[got[3].start:got[3].end] == "'a b'"


def test_commands_split_on_operators_and_continuations() -> None:
    line = "apt-get update \\\n && X=1 apt-get install -y tini; echo ok | cat # c\n"
    got = [[w.text for w in c] for c in commands(line)]
    assert got == [["apt-get", "update"], ["X=1", "apt-get", "install", "-y", "tini"],
                   ["echo", "ok"], ["cat"]]
    assert next(w.text for w in strip_assignments(commands(line)[1])) == "apt-get"


def test_replace_edits_from_the_end() -> None:
    line = "install a b"
    ws = words(line)
    assert replace(line, [(ws[1].start, ws[1].end, "a=1"), (ws[2].start, ws[2].end, "b=2")]) \
        == "install a=1 b=2"
