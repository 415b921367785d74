"""Plain downloads a template makes: files fetched by URL that no lock holds.

A ``RUN curl -fsSL https://...`` or ``wget https://...``, or an ``ADD https://...``,
puts a file in the image that is neither an APT nor a Python package: the image's
files do not say where it came from, so a freeze cannot lock it, and the pinned build
fails naming the URL (the locked view serves only the lock's files; an ``ADD`` the
engine fetches itself). Freeze says so up front, one warning per URL, with what helps.
"""

from __future__ import annotations

import re

from relock.template.dockerfile import Dockerfile, add_urls

# A URL a curl or wget command of one shell command fetches (up to ; & | or a newline).
_FETCH = re.compile(r"(?<![\w-])(?:curl|wget)\b[^;&|\n]*?(https?://[^\s'\"`;&|)]+)")


def plain_downloads(dockerfile: Dockerfile) -> list[tuple[int, str, str]]:
    """(1-based line, instruction, URL) of each plain download of ``dockerfile``."""
    out: list[tuple[int, str, str]] = []
    for ins in dockerfile.instructions:
        if ins.instruction == "RUN":
            for m in _FETCH.finditer(ins.value):
                out.append((ins.startline + 1, "RUN", m.group(1)))
                # Further URLs of the same curl command (curl -O A -O B).
                rest = ins.value[m.end():].split(";", 1)[0].split("&&", 1)[0]
                out += [(ins.startline + 1, "RUN", u) for u in re.findall(
                    r"https?://[^\s'\"`;&|)]+", rest)]
        elif ins.instruction == "ADD":
            out += [(ins.startline + 1, "ADD", u) for u in add_urls(ins)]
    return out


def warnings(dockerfile: Dockerfile) -> list[str]:
    """One line per plain download: the lock will not hold it, and what helps."""
    from pathlib import Path

    name = Path(dockerfile.path).name
    return [f"{name} line {line} downloads {url[:200]} ({what}): relock locks APT and "
            "Python packages, not plain downloads, and a pinned build fails naming the URL "
            "(or, for ADD, needs that host); put the file in the build context and COPY it"
            for line, what, url in plain_downloads(dockerfile)]
