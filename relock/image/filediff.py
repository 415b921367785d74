"""Which files differ between two images, and why: the doctor of a reproducible build.

``compare`` takes two images' merged views (``relock.image.layers.
read_image``) and lists every path that differs by presence, type, content
(sha256; a device's numbers), mode, owner, link target or, when asked,
mtime; each side names the layer that holds the path (the topmost that wrote
it, or whose whiteout removed it) and so the history step that made it.
``format_text``, ``format_markdown`` and ``format_json`` show the list; the
JSON's keys are documented in docs/diff-files-json.md and kept stable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from relock.image.layers import Entry, ImageFiles, Layer

# What may differ, in the order it is said.
ASPECTS = ("presence", "type", "content", "mode", "owner", "link", "mtime")
JSON_VERSION = 1


@dataclass(frozen=True)
class FileSide:
    """A path in one image: its entry (None when absent) and the layer that decided it."""

    entry: Entry | None
    layer: Layer | None  # the layer that holds it, or whose whiteout removed it


@dataclass(frozen=True)
class FileDifference:
    """One path that differs, how (``what``, in ``ASPECTS`` order), and each side."""

    path: str  # absolute: /etc/build-date
    what: tuple[str, ...]
    a: FileSide
    b: FileSide

    def describe(self) -> str:
        """One line: the path, what differs, and the step that wrote B's side (A's if B
        lacks it): ``/etc/build-date: content sha256:… → sha256:… (RUN date > …)``."""
        layer = self.b.layer or self.a.layer
        step = f" ({shown(layer.step)})" if layer is not None and layer.step else ""
        return f"{shown(self.path)}: {_change(self)}{step}"

    @property
    def status(self) -> str:
        """``added`` (only in B), ``removed`` (only in A) or ``changed``."""
        if self.a.entry is None:
            return "added"
        return "removed" if self.b.entry is None else "changed"


def _aspects(x: Entry, y: Entry, mtimes: bool) -> tuple[str, ...]:
    found = []
    if x.kind != y.kind:
        found.append("type")
    elif (x.sha256, x.device) != (y.sha256, y.device):
        found.append("content")
    if x.mode != y.mode:
        found.append("mode")
    if (x.uid, x.gid) != (y.uid, y.gid):
        found.append("owner")
    if x.kind == y.kind and x.link != y.link:
        found.append("link")
    if mtimes and x.mtime_ns != y.mtime_ns:
        found.append("mtime")
    return tuple(found)


def _side(image: ImageFiles, path: str) -> FileSide:
    entry = image.entries.get(path)
    index = entry.layer if entry is not None else image.removed_by(path)
    return FileSide(entry, image.layers[index] if index is not None else None)


def compare(a: ImageFiles, b: ImageFiles, *, mtimes: bool = False) -> list[FileDifference]:
    """Every path whose file differs between ``a`` and ``b``, sorted by path.

    Content is compared by sha256 (a hard link has its target's); mtimes
    only with ``mtimes``. Folders count as files: their presence, mode and
    owner (and mtime) are compared, not what they hold, which is listed
    path by path.
    """
    out = []
    for path in sorted(a.entries.keys() | b.entries.keys()):
        x, y = a.entries.get(path), b.entries.get(path)
        if x is None or y is None:
            what: tuple[str, ...] = ("presence",)
        else:
            what = _aspects(x, y, mtimes)
            if not what:
                continue
        out.append(FileDifference("/" + path, what, _side(a, path), _side(b, path)))
    return out


# -- showing ------------------------------------------------------------------------------


def shown(text: str) -> str:
    """``text`` safe for one line: control characters and undecodable bytes escaped."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def _kind_text(e: Entry) -> str:
    return {"file": "file", "dir": "folder", "symlink": "symlink", "hardlink": "hard link",
            "char": "character device", "block": "block device", "fifo": "fifo"}.get(e.kind,
                                                                                    e.kind)


def _value(aspect: str, e: Entry) -> str:
    if aspect == "type":
        return _kind_text(e)
    if aspect == "content":
        return e.device if e.device else f"sha256:{e.sha256[:12]} ({e.size} B)"
    if aspect == "mode":
        return f"{e.mode:04o}"
    if aspect == "owner":
        return f"{e.uid}:{e.gid}"
    if aspect == "link":
        return shown(e.link)
    import datetime

    seconds, ns = divmod(e.mtime_ns, 1_000_000_000)
    try:
        when = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        when = str(seconds)
    return f"{when}.{ns:09d}Z" if ns else f"{when}Z"


def _change(d: FileDifference) -> str:
    """What differs, said once: ``content sha256:1f… (29 B) → sha256:9a… (29 B), mode ...``."""
    if d.a.entry is None:
        return f"only in B ({_kind_text(_entry(d.b))})"
    if d.b.entry is None:
        return f"only in A ({_kind_text(d.a.entry)})"
    return ", ".join(f"{w} {_value(w, d.a.entry)} → {_value(w, _entry(d.b))}" for w in d.what)


def _entry(side: FileSide) -> Entry:
    assert side.entry is not None
    return side.entry


def _where(side: FileSide, total: int) -> str:
    if side.layer is None:
        return "absent"
    layer = side.layer
    held = "removed by" if side.entry is None else "in"
    step = f": {shown(layer.step)}" if layer.step else ": (no history step)"
    return f"{held} layer {layer.index + 1}/{total} {layer.short}{step}"


def _counts(diffs: list[FileDifference]) -> dict[str, int]:
    counts = {"files": len(diffs), "added": 0, "removed": 0, "changed": 0}
    for d in diffs:
        counts[d.status] += 1
    return counts


def _files(n: int) -> str:
    return "1 file differs" if n == 1 else f"{n} files differ"


def format_text(diffs: list[FileDifference], a: ImageFiles, b: ImageFiles, *,
                stat: bool = False, style: Callable[..., str] | None = None) -> str:
    """The differences for a terminal: each path, what differs, and where each side has it."""
    paint = style or (lambda text, **_: text)
    head = (f"A: {shown(a.label)} ({a.id[:19]}, {len(a.layers)} layers)\n"
            f"B: {shown(b.label)} ({b.id[:19]}, {len(b.layers)} layers)\n")
    if not diffs:
        return head + "The images hold the same files.\n"
    c = _counts(diffs)
    lines = [head + f"{_files(c['files'])}: {c['changed']} changed, {c['added']} only "
             f"in B, {c['removed']} only in A."]
    if not stat:
        for d in diffs:
            lines.append(paint(shown(d.path), bold=True) + f"  {_change(d)}")
            for name, side, image in (("A", d.a, a), ("B", d.b, b)):
                if side.layer is not None or side.entry is not None:
                    lines.append(f"    {name}: {_where(side, len(image.layers))}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return shown(text).replace("|", "\\|").replace("`", "'")


def format_markdown(diffs: list[FileDifference], a: ImageFiles, b: ImageFiles, *,
                    stat: bool = False) -> str:
    """The differences as a Markdown table, for a pull request or an issue."""
    head = (f"**A**: `{_md(a.label)}` ({a.id[:19]}), **B**: `{_md(b.label)}` "
            f"({b.id[:19]})\n\n")
    if not diffs:
        return head + "The images hold the same files.\n"
    c = _counts(diffs)
    out = [head + f"{_files(c['files'])}: {c['changed']} changed, {c['added']} only in "
           f"B, {c['removed']} only in A.\n"]
    if not stat:
        out += ["| path | what differs | A | B |", "| --- | --- | --- | --- |"]
        for d in diffs:
            out.append(f"| `{_md(d.path)}` | {_md(_change(d))} | "
                       f"{_md(_where(d.a, len(a.layers)))} | {_md(_where(d.b, len(b.layers)))} |")
    return "\n".join(out) + "\n"


def _entry_json(e: Entry | None) -> dict[str, object] | None:
    if e is None:
        return None
    return {"type": e.kind, "mode": f"{e.mode:04o}", "uid": e.uid, "gid": e.gid,
            "size": e.size, "sha256": e.sha256 or None, "link": e.link or None,
            "device": e.device or None, "mtime": _seconds(e.mtime_ns), "layer": e.layer}


def _seconds(ns: int) -> int | str:
    """Seconds since the epoch: an integer, or exact decimal text where there is a fraction."""
    whole, part = divmod(ns, 1_000_000_000)
    return whole if not part else f"{whole}.{part:09d}".rstrip("0")


def _image_json(image: ImageFiles) -> dict[str, object]:
    return {"label": image.label, "id": image.id, "layers": [
        {"index": x.index, "diff_id": x.diff_id, "digest": x.digest or None,
         "step": x.step or None} for x in image.layers]}


def to_json(diffs: list[FileDifference], a: ImageFiles, b: ImageFiles, *, mtimes: bool,
            stat: bool = False) -> dict[str, object]:
    """The differences as the JSON value docs/diff-files-json.md describes."""
    out: dict[str, object] = {"version": JSON_VERSION, "identical": not diffs,
                              "mtimes_compared": mtimes, "a": _image_json(a),
                              "b": _image_json(b), "counts": _counts(diffs)}
    if not stat:
        out["files"] = [{"path": d.path, "status": d.status, "differs": list(d.what),
                         "a": _entry_json(d.a.entry), "b": _entry_json(d.b.entry),
                         "a_removed_by": d.a.layer.index if d.a.entry is None and d.a.layer
                         else None,
                         "b_removed_by": d.b.layer.index if d.b.entry is None and d.b.layer
                         else None} for d in diffs]
    return out


def format_json(diffs: list[FileDifference], a: ImageFiles, b: ImageFiles, *, mtimes: bool,
                stat: bool = False) -> str:
    """``to_json`` as text: sorted keys, two-space indent, one final newline."""
    return json.dumps(to_json(diffs, a, b, mtimes=mtimes, stat=stat), indent=2,
                      sort_keys=True) + "\n"
