"""Reading Dockerfile.in: its instructions, stages and base images, and naming its stages
(which a freeze records, which a build can ``--target``).

Instructions come from dockerfile-parse; heredocs (``RUN <<EOF``), which it
does not know, are folded back into the instruction that opens them.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from relock import bounds
from relock.errors import DockerfileError
from relock.files import read_regular

BOM = "\ufeff"
# Far more than any real template; /dev/zero given as -f is refused, not read.
MAX_BYTES = bounds.TEMPLATE

_HEREDOC = re.compile(r"<<-?\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\1")

# The build argument that names the frontend instead of (and before) a "# syntax=" line.
SYNTAX_ARG = "BUILDKIT_SYNTAX"
# A parser directive as BuildKit's directive parser reads one (frontend/dockerfile/parser/
# directives.go): the lines from the top (a "#!" first line skipped), up to the first line
# that is not one of a known directive.
_DIRECTIVE = re.compile(r"#[ \t\f\r]*([a-zA-Z][a-zA-Z0-9]*)[ \t\f\r]*=[ \t\f\r]*(.+?)[ \t\f\r]*")
DIRECTIVES = ("syntax", "escape", "check")


@dataclass(frozen=True)
class Syntax:
    """A template's ``# syntax=`` parser directive: the frontend the build runs."""

    line: int  # 0-based line of the template
    value: str  # the frontend's reference, perhaps followed by words BuildKit passes it
    start: int  # where ``value`` starts in that line (past a byte order mark)

    @property
    def ref(self) -> str:
        """The frontend's image reference: the value up to its first space, as BuildKit."""
        return self.value.split(" ", 1)[0]


def syntax_directive(text: str) -> Syntax | None:
    """The ``# syntax=`` directive among ``text``'s parser directives, if it has one."""
    lines = text.split("\n")
    first = 1 if lines and lines[0].removeprefix(BOM).startswith("#!") else 0
    for n in range(first, len(lines)):
        line = lines[n].removeprefix(BOM) if n == 0 else lines[n]
        m = _DIRECTIVE.fullmatch(line.removesuffix("\r"))
        if m is None or m.group(1).lower() not in DIRECTIVES:
            return None
        if m.group(1).lower() == "syntax":
            return Syntax(n, m.group(2), m.start(2) + len(lines[n]) - len(line))
    return None


@dataclass(frozen=True)
class Instruction:
    """One instruction, with its 0-based line span in the file."""

    instruction: str
    startline: int
    endline: int
    content: str
    value: str


@dataclass(frozen=True)
class Stage:
    """One FROM: its position, the image it starts from, its name."""

    index: int
    ref: str
    name: str
    instruction: int  # index into Dockerfile.instructions
    external: bool  # False for FROM <earlier stage> and FROM scratch


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile."""

    path: str
    text: str
    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    # The --build-arg values it was parsed with (recorded in the lock).
    build_args: Mapping[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def syntax(self) -> Syntax | None:
        """Its ``# syntax=`` directive, if any."""
        return syntax_directive(self.text)

    def stage_of_instruction(self) -> list[Stage]:
        """The stage each instruction belongs to (instructions before the first FROM: stage 0)."""
        out: list[Stage] = []
        current = self.stages[0]
        starts = {s.instruction: s for s in self.stages}
        for n in range(len(self.instructions)):
            current = starts.get(n, current)
            out.append(current)
        return out

    def root(self, stage: Stage) -> Stage:
        """The stage whose FROM names the image ``stage`` is ultimately built on."""
        by_name = {s.name: s for s in self.stages if s.name}
        seen = 0
        while not stage.external and stage.ref in by_name and seen < len(self.stages):
            stage = by_name[stage.ref]
            seen += 1
        return stage


# -- naming stages -------------------------------------------------------------

def add_urls(ins: Instruction) -> list[str]:
    """The URLs an ``ADD`` instruction fetches (http, https, git): its sources that are
    URLs, the last word being the destination."""
    words = [w for w in ins.value.split() if not w.startswith("--")]
    return [w for w in words[:-1] if _ADD_URL.match(w)]


_ADD_URL = re.compile(r"(?:https?|git)://|git@")


def stage_label(stage: Stage) -> str:
    """How the lock names a stage: its name, else its 0-based index."""
    return stage.name or str(stage.index)


def stages_to_freeze(df: Dockerfile) -> list[Stage]:
    """Every stage but the final one that runs something."""
    stage_of = df.stage_of_instruction()
    runs = {stage_of[n].index for n, ins in enumerate(df.instructions)
            if ins.instruction == "RUN"}
    return [s for s in df.stages[:-1] if s.index in runs]


def targetable(df: Dockerfile) -> str:
    """The template with a name on every stage, so that any stage can be a --target."""
    lines = df.text.splitlines(keepends=True)
    for stage in df.stages:
        if stage.name:
            continue
        at = df.instructions[stage.instruction].endline
        line = lines[at]
        body = line.rstrip("\r\n")
        lines[at] = f"{body} AS relock-stage-{stage.index}{line[len(body):] or chr(10)}"
    return "".join(lines)


def target_name(stage: Stage) -> str:
    """The ``--target`` that builds ``stage`` from ``targetable``'s text."""
    return stage.name or f"relock-stage-{stage.index}"


def load(path: Path, build_args: dict[str, str] | None = None) -> Dockerfile:
    """Read and parse ``path``; a missing file or one with no FROM is an error."""
    try:
        text = read_regular(path, MAX_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise DockerfileError(f"{path}: no such file (pass -f to name the Dockerfile.in)") from None
    except OSError as e:
        raise DockerfileError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise DockerfileError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse(text, str(path), build_args)


def parse(text: str, path: str = "Dockerfile.in",
          build_args: dict[str, str] | None = None) -> Dockerfile:
    """Parse Dockerfile text."""
    # Docker accepts a UTF-8 byte order mark at the start; the parser does not.
    # ``text`` keeps it, so the template's sha256 stays that of its bytes.
    body = text.removeprefix(BOM)
    parser = DockerfileParser(fileobj=io.BytesIO(body.encode("utf-8")),
                              build_args=build_args or {})
    instructions = _fold_heredocs(
        _without_inner_comments(
            [Instruction(s["instruction"], s["startline"], s["endline"], s["content"], s["value"])
             for s in parser.structure]),
        body.splitlines(keepends=True),
    )
    froms = [i for i, ins in enumerate(instructions) if ins.instruction == "FROM"]
    if not froms:
        raise DockerfileError(f"{path}: has no FROM instruction")
    _check_from_args(instructions[:froms[0]], [instructions[i] for i in froms],
                     build_args or {}, path)
    parents = _parent_images(parser, len(froms), path)
    stages: list[Stage] = []
    names: set[str] = set()
    for index, (at, ref) in enumerate(zip(froms, parents, strict=True)):
        words = instructions[at].value.split()
        name = words[-1] if len(words) >= 3 and words[-2].lower() == "as" else ""
        external = ref.lower() != "scratch" and ref not in names
        stages.append(Stage(index, ref, name, at, external))
        if name:
            names.add(name)
    return Dockerfile(path, text, tuple(instructions), tuple(stages), dict(build_args or {}))


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(:?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")


def _check_from_args(before: list[Instruction], froms: list[Instruction],
                     build_args: Mapping[str, str], path: str) -> None:
    """Every ARG a FROM uses has a default before the first FROM, or a --build-arg."""
    known = set(build_args)
    for ins in before:
        if ins.instruction == "ARG":
            name, sep, _ = ins.value.strip().partition("=")
            if sep:
                known.add(name.strip())
    for ins in froms:
        for m in _VAR.finditer(ins.value):
            name = m.group(1) or m.group(3)
            if name not in known and not m.group(2):
                raise DockerfileError(
                    f"{path}:{ins.startline + 1}: FROM uses ARG {name}, which has no default; "
                    f"pass --build-arg {name}=VALUE (relock records it in the lock)"
                )


def _parent_images(parser: DockerfileParser, count: int, path: str) -> list[str]:
    try:
        parents = [str(p) for p in parser.parent_images]
    except Exception as e:  # dockerfile-parse raises bare errors on odd input
        raise DockerfileError(f"{path}: cannot read its FROM lines: {e}") from None
    if len(parents) != count or any(not p or "$" in p for p in parents):
        bad = next((p for p in parents if not p or "$" in p), "?")
        raise DockerfileError(
            f"{path}: FROM {bad!r} uses an ARG with no default; give it a default or pass "
            "--build-arg"
        )
    # FROM --platform=... ref: dockerfile-parse keeps the flag out already.
    return parents


def _without_inner_comments(items: list[Instruction]) -> list[Instruction]:
    """Drop comment lines inside another instruction's continuation lines.

    dockerfile-parse reports them as instructions of their own, before the
    instruction that holds them; they belong to that instruction's text.
    """
    spans = [(i.startline, i.endline) for i in items if i.instruction != "COMMENT"]
    return [i for i in items if i.instruction != "COMMENT"
            or not any(a < i.startline <= b for a, b in spans)]


def _fold_heredocs(items: list[Instruction], lines: list[str]) -> list[Instruction]:
    out: list[Instruction] = []
    skip_until = -1
    for ins in items:
        if ins.startline <= skip_until:
            continue
        terminators = [m.group(2) for m in _HEREDOC.finditer(ins.content)]
        if not terminators or ins.instruction not in ("RUN", "COPY", "ADD"):
            out.append(ins)
            continue
        end = ins.endline
        for word in terminators:
            end += 1
            while end < len(lines) and lines[end].strip() != word:
                end += 1
        end = min(end, len(lines) - 1)
        content = "".join(lines[ins.startline:end + 1])
        out.append(Instruction(ins.instruction, ins.startline, end, content,
                               content.split(None, 1)[1] if " " in content else ""))
        skip_until = end
    return out
