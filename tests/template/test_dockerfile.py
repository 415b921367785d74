"""Parsing Dockerfile.in: stages, ARG-expanded bases, heredocs, bad input."""

from __future__ import annotations

import pytest

from relock.errors import DockerfileError
from relock.template.dockerfile import parse


def test_stages_and_bases() -> None:
    df = parse("ARG B=debian:trixie-slim\nFROM $B AS build\nRUN true\n"
               "FROM build AS two\nFROM scratch\nCOPY --from=two / /\n"
               "FROM --platform=linux/arm64 debian:bookworm-slim\n")
    assert [(s.ref, s.name, s.external) for s in df.stages] == [
        ("debian:trixie-slim", "build", True), ("build", "two", False),
        ("scratch", "", False), ("debian:bookworm-slim", "", True)]


def test_build_args_override_defaults() -> None:
    df = parse("ARG B=debian:trixie-slim\nFROM ${B}\n", build_args={"B": "debian:bookworm-slim"})
    assert df.stages[0].ref == "debian:bookworm-slim"


def test_heredoc_is_one_instruction() -> None:
    df = parse("FROM x\nRUN <<EOF\napt-get install y\nEOF\nUSER 1\n")
    assert [i.instruction for i in df.instructions] == ["FROM", "RUN", "USER"]
    assert df.instructions[1].endline == 3


@pytest.mark.parametrize(("text", "message"), [
    ("RUN true\n", "has no FROM"),
    ("FROM $NOPE\n", "FROM uses ARG NOPE, which has no default"),
])
def test_bad_dockerfiles(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message):
        parse(text)
