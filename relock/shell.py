"""Just enough of the POSIX shell grammar to find and rewrite commands in RUN.

``words`` splits a RUN line into words with their character spans, so that a
rewrite can replace one word and keep every quote, continuation line and
comment of the original around it. Words are unquoted as the shell would.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

OPERATORS = ("&&", "||", ";;", ";", "|", "&", "(", ")")


@dataclass(frozen=True)
class Word:
    """A shell word (or an operator) and where it stands in the text."""

    text: str
    start: int
    end: int
    operator: bool = False


def words(line: str) -> list[Word]:
    """Split ``line`` into words and operators, with their spans."""
    out: list[Word] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] == "\n":
            i += 2
            continue
        if c in " \t\n":
            i += 1
            continue
        if c == "#" and (i == 0 or line[i - 1] in " \t\n"):
            while i < n and line[i] != "\n":
                i += 1
            continue
        op = next((o for o in OPERATORS if line.startswith(o, i)), None)
        if op:
            out.append(Word(op, i, i + len(op), operator=True))
            i += len(op)
            continue
        start = i
        text: list[str] = []
        while i < n:
            c = line[i]
            if c in " \t\n" or any(line.startswith(o, i) for o in OPERATORS):
                break
            if c == "\\" and i + 1 < n:
                if line[i + 1] == "\n":
                    i += 2
                    break
                text.append(line[i + 1])
                i += 2
            elif c == "'":
                end = line.find("'", i + 1)
                end = n if end < 0 else end
                text.append(line[i + 1:end])
                i = end + 1
            elif c == '"':
                j = i + 1
                while j < n and line[j] != '"':
                    if line[j] == "\\" and j + 1 < n and line[j + 1] in '"\\$`\n':
                        if line[j + 1] != "\n":
                            text.append(line[j + 1])
                        j += 2
                        continue
                    text.append(line[j])
                    j += 1
                i = j + 1
            else:
                text.append(c)
                i += 1
        out.append(Word("".join(text), start, min(i, n)))
    return out


def commands(line: str) -> list[list[Word]]:
    """The simple commands of ``line``: runs of words between operators."""
    out: list[list[Word]] = [[]]
    for w in words(line):
        if w.operator:
            if out[-1]:
                out.append([])
        else:
            out[-1].append(w)
    return [c for c in out if c]


def strip_assignments(cmd: list[Word]) -> list[Word]:
    """``cmd`` without leading ``NAME=value`` words (and ``env``/``sudo``)."""
    i = 0
    while i < len(cmd):
        text = cmd[i].text
        name, sep, _ = text.partition("=")
        wrapper = text in ("env", "sudo", "exec", "nice", "command") and i + 1 < len(cmd)
        if (sep and name.isidentifier()) or wrapper:
            i += 1
        else:
            break
    return cmd[i:]


def quote(text: str) -> str:
    """Quote ``text`` for the shell only when it needs it."""
    return shlex.quote(text)


def replace(line: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply (start, end, new text) edits to ``line``; spans must not overlap."""
    for start, end, new in sorted(edits, reverse=True):
        line = line[:start] + new + line[end:]
    return line
