"""Showing a ``LockDiff``: aligned text, a Markdown table, or JSON for scripts.

Every function returns a string and prints nothing. Text is styled through
a ``style`` callable with click.style's signature (the CLI passes
click.style and lets click.echo drop the colours when stdout is not a
terminal); the default leaves text plain. The JSON keys are documented in
docs/diff-json.md and are stable: ``version`` changes if they ever do.
Markdown and JSON name the two sides by their label and kind only
(``Labelled``; ``relock.freeze.sides.Side`` is one), so that this module
needs nothing of how a side was loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from relock.lock.diff import (
    BASE_CHANGES,
    CATEGORIES,
    CHANGES,
    BaseChange,
    LockDiff,
    PackageChange,
    SourceChange,
    ValueChange,
)
from relock.lock.grammar import escape_control
from relock.lock.platform import debian_arch

JSON_VERSION = 1


class Labelled(Protocol):
    """How a side of the diff is named: ``label`` as given, ``kind`` file, git or image."""

    @property
    def label(self) -> str: ...

    @property
    def kind(self) -> str: ...


Style = Callable[..., str]


def plain(text: str, **_: object) -> str:
    """A ``style`` that leaves text as it is."""
    return text


# Colours of each kind of change in text; a rebuilt package (same version,
# different bytes) is the red flag.
_COLOURS: dict[str, dict[str, object]] = {
    "added": {"fg": "green"},
    "removed": {"fg": "red"},
    "upgraded": {"fg": "cyan"},
    "downgraded": {"fg": "yellow"},
    "changed": {"fg": "magenta"},
    "rebuilt": {"fg": "red", "bold": True},
}

_ARROW = "→"


# -- the summary -----------------------------------------------------------------


def summary_line(d: LockDiff) -> str:
    """One line: ``apt: 3 upgraded, 1 added · pip: 2 removed · base: digest changed``."""
    parts: list[str] = []
    for category, counts in (("apt", d.counts("apt")), ("pip", d.counts("pip"))):
        if counts and any(counts.values()):
            parts.append(f"{category}: " + _counts_text(counts))
    base = d.counts("base")
    if base and any(base.values()):
        parts.append("base: " + _base_counts_text(base))
    for name in ("distro", "snapshot", "platform"):
        if getattr(d, name) is not None:
            parts.append(f"{name}: changed")
    sources = d.source_counts()
    if sources and any(sources.values()):
        parts.append("apt sources: " + ", ".join(f"{n} {k}" for k, n in sources.items() if n))
    if parts:
        return " · ".join(parts)
    sizes = ", ".join(f"{n} {c}" for c, n in d.sizes.items())
    return f"no differences ({sizes})" if sizes else "no differences"


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in CHANGES if counts.get(k))


def _base_counts_text(counts: dict[str, int]) -> str:
    texts = []
    for kind in BASE_CHANGES:
        n = counts.get(kind, 0)
        if not n:
            continue
        noun = "digest" if n == 1 else "digests"
        texts.append(f"{noun} {kind}" if n == 1 else f"{n} {noun} {kind}")
    return ", ".join(texts)


# -- text ------------------------------------------------------------------------


def format_text(d: LockDiff, *, stat: bool = False, style: Style = plain) -> str:
    """Aligned text for a terminal: one section per category, then the summary."""
    if stat or d.identical:
        return summary_line(d) + "\n"
    blocks: list[list[str]] = []
    if d.base:
        rows = [(_esc(b.ref) + only_on(b, d), _esc(_short(b.old)), _esc(_short(b.new)),
                 b.change) for b in d.base]
        blocks.append([style("base images", bold=True), *_text_rows(rows, style)])
    system = _system_rows(d)
    if system:
        rows = [(name, _esc(v.old), _esc(v.new), "changed") for name, v in system]
        blocks.append([style("system", bold=True), *_text_rows(rows, style, plain_kind=True)])
    if d.sources:
        rows = [(_esc(f"{r.line}  ({r.source.file})"), "", "", r.change) for r in d.sources]
        blocks.append([style("apt sources", bold=True), *_text_rows(rows, style)])
    if d.apt:
        lines = [style("apt", bold=True)]
        lines += _package_lines(d.apt, style, qualify=d.multi_arch, d=d)
        blocks.append(lines)
    if d.pip:
        for env, group in _by_env(d.pip):
            title = f"pip {_esc(env)}" if d.multi_env else "pip"
            blocks.append([style(title, bold=True), *_package_lines(group, style, d=d)])
    body = "\n".join("\n".join(lines) for lines in blocks)
    head = f"{_esc(across_line(d))}\n" if d.across else ""
    return f"{head}{body}\n\n{summary_line(d)}\n"


def across_line(d: LockDiff) -> str:
    """What a diff of two platforms' locks compares, for its header."""
    assert d.across is not None
    old, new = d.across.old, d.across.new
    return (f"{old} against {new}: the packages of each one's own architecture "
            f"({debian_arch(old)}, {debian_arch(new)}) are compared by version")


def only_on(row: PackageChange | BaseChange, d: LockDiff) -> str:
    """`` [linux/arm64]`` for a row that concerns some of the platforms compared only."""
    if not d.platforms or set(row.platforms) == set(d.platforms):
        return ""
    return " [" + " ".join(row.platforms) + "]"


def _package_lines(rows: Sequence[PackageChange], style: Style, qualify: bool = False,
                   d: LockDiff | None = None) -> list[str]:
    cells = [
        (_esc(f"{r.name}:{r.where}" if qualify else r.name) + (only_on(r, d) if d else ""),
         _esc(r.old), "(same version, different hashes)" if r.change == "rebuilt" else _esc(r.new),
         r.change)
        for r in rows
    ]
    return _text_rows(cells, style)


def _text_rows(rows: Sequence[tuple[str, str, str, str]], style: Style,
               plain_kind: bool = False) -> list[str]:
    """``  kind  name  old → new``, each column padded to its widest cell."""
    kind_w = max(len(r[3]) for r in rows)
    name_w = max(len(r[0]) for r in rows)
    old_w = max(len(r[1]) for r in rows)
    out = []
    for name, old, new, kind in rows:
        arrow = _ARROW if old and new and kind != "rebuilt" else " "
        if plain_kind:
            lead = f"  {name:<{name_w}}"
        else:
            kind_cell = style(f"{kind:<{kind_w}}", **_COLOURS.get(kind, {}))
            lead = f"  {kind_cell}  {name:<{name_w}}"
        out.append(f"{lead}  {old:<{old_w}} {arrow} {new}".rstrip())
    return out


def _esc(text: str) -> str:
    """A value from a lock or an image, safe on a terminal: no escape sequences, one line."""
    return escape_control(text)


def _system_rows(d: LockDiff) -> list[tuple[str, ValueChange]]:
    return [(name, v) for name in ("distro", "snapshot", "platform")
            if (v := getattr(d, name)) is not None]


def _by_env(rows: Iterable[PackageChange]) -> list[tuple[str, list[PackageChange]]]:
    groups: dict[str, list[PackageChange]] = {}
    for r in rows:
        groups.setdefault(r.where, []).append(r)
    return sorted(groups.items())


def _short(pin: str) -> str:
    """A digest cut to 12 hex digits, as docker shows image IDs."""
    algo, sep, hexes = pin.rpartition(":")
    return f"{algo}{sep}{hexes[:12]}" if sep and len(hexes) > 12 else pin


# -- Markdown --------------------------------------------------------------------


def format_markdown(d: LockDiff, old: Labelled, new: Labelled, *, stat: bool = False) -> str:
    """Markdown for release notes or a pull request: a summary, then tables."""
    out = [f"### relock diff: {_code(old.label)} {_ARROW} {_code(new.label)}", "",
           *([_md(across_line(d)), ""] if d.across else []),
           f"**Summary:** {_md(summary_line(d))}", ""]
    if stat or d.identical:
        return "\n".join(out)
    if d.base:
        out += ["#### Base images", ""]
        out += _table(("Image", "Change", "Old", "New"),
                      [(_code(b.ref) + _md(only_on(b, d)), b.change, _code(b.old), _code(b.new))
                       for b in d.base])
    system = _system_rows(d)
    if system:
        out += ["#### System", ""]
        out += _table(("", "Old", "New"),
                      [(name.capitalize(), _md(v.old), _md(v.new)) for name, v in system])
    if d.sources:
        out += [f"#### APT sources ({len(d.sources)} changed)", ""]
        out += _table(("Change", "Source", "File"),
                      [(r.change, _code(r.line), _code(r.source.file)) for r in d.sources])
    if d.apt:
        out += [f"#### APT packages ({len(d.apt)} changed)", ""]
        head = ("Package", "Arch", "Change", "Old", "New") if d.multi_arch else (
            "Package", "Change", "Old", "New")
        out += _table(head, [
            (_md(r.name + only_on(r, d)), *((_md(r.where),) if d.multi_arch else ()),
             _md_change(r.change),
             _md(r.old), _md(r.new))
            for r in d.apt
        ])
    if d.pip:
        out += [f"#### pip distributions ({len(d.pip)} changed)", ""]
        head = ("Environment", "Distribution", "Change", "Old", "New") if d.multi_env else (
            "Distribution", "Change", "Old", "New")
        out += _table(head, [
            (*((_code(r.where),) if d.multi_env else ()), _md(r.name + only_on(r, d)),
             _md_change(r.change),
             _md(r.old), _md(r.new))
            for r in d.pip
        ])
    return "\n".join(out)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _md_change(kind: str) -> str:
    # The red flag stands out in a rendered table too.
    return "**rebuilt** (same version, different hashes)" if kind == "rebuilt" else kind


def _md(text: str) -> str:
    """Text safe inside a table cell: one line, no markup, no HTML, no cell break."""
    text = escape_control(text).replace("&", "&amp;")
    for ch in "\\|*_`<>[]~#!":
        text = text.replace(ch, "\\" + ch)
    return text


def _code(text: str) -> str:
    """A code span safe inside a table cell or a heading: one line, no cell break."""
    text = escape_control(text).replace("`", "").replace("|", "\\|")
    return f"`{text}`" if text else ""


# -- JSON ------------------------------------------------------------------------


def to_json(d: LockDiff, old: Labelled, new: Labelled, *, stat: bool = False) -> dict[str, object]:
    """The diff as plain data with the keys documented in docs/diff-json.md."""
    doc: dict[str, object] = {
        "version": JSON_VERSION,
        "old": {"ref": old.label, "kind": old.kind},
        "new": {"ref": new.label, "kind": new.kind},
        "identical": d.identical,
        "summary": _json_summary(d),
    }
    if stat:
        return doc
    doc["platforms"] = list(d.platforms)
    doc["across"] = None if d.across is None else {"old": d.across.old, "new": d.across.new}
    doc["base"] = None if d.base is None else [_base_json(b, d) for b in d.base]
    for name in ("distro", "snapshot", "platform"):
        v = getattr(d, name)
        doc[name] = None if v is None else {"old": v.old, "new": v.new}
    doc["apt_sources"] = None if d.sources is None else [_source_json(r) for r in d.sources]
    doc["apt"] = None if d.apt is None else [_package_json(r, "arch", d) for r in d.apt]
    doc["pip"] = None if d.pip is None else [_package_json(r, "env", d) for r in d.pip]
    return doc


def format_json(d: LockDiff, old: Labelled, new: Labelled, *, stat: bool = False) -> str:
    """``to_json`` as indented text with sorted keys."""
    return json.dumps(to_json(d, old, new, stat=stat), indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"


def _json_summary(d: LockDiff) -> dict[str, object]:
    compared_system = d.apt is not None
    summary: dict[str, object] = {c: d.counts(c) for c in CATEGORIES}
    for name in ("distro", "snapshot", "platform"):
        summary[name] = (getattr(d, name) is not None) if compared_system else None
    summary["apt_by_arch"] = None if d.apt is None else d.apt_counts_by_arch()
    summary["apt_sources"] = d.source_counts()
    summary["line"] = summary_line(d)
    return summary


def _base_json(b: BaseChange, d: LockDiff) -> dict[str, object]:
    return {"ref": b.ref, "change": b.change, "old": b.old or None, "new": b.new or None,
            "platforms": list(b.platforms or d.platforms)}


def _source_json(r: SourceChange) -> dict[str, object]:
    s = r.source
    return {"change": r.change, "file": s.file, "types": list(s.types), "uris": list(s.uris),
            "suites": list(s.suites), "components": list(s.components),
            "options": dict(sorted(s.options.items())), "line": r.line}


def _package_json(r: PackageChange, where: str, d: LockDiff) -> dict[str, object]:
    row: dict[str, object] = {"name": r.name, where: r.where, "change": r.change,
                           "old": r.old or None, "new": r.new or None,
                           "platforms": list(r.platforms or d.platforms)}
    if r.change == "rebuilt":
        row["old_hashes"] = list(r.old_hashes)
        row["new_hashes"] = list(r.new_hashes)
    return row
