"""pip-compile, as relock starts it: one resolution against the configured index.

``relock update`` (an environment's new pins) and ``relock freeze`` (the build
requirements of the project's own package and of sdists) both resolve with pip-tools'
``pip-compile --generate-hashes``: the same command line, the same reading of its output
(``parse_compiled``) and of its complaints (``resolver_words``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

# How pip-compile is started: ``subprocess.run`` (its keywords), or a test's stand-in.
Run = Callable[..., "subprocess.CompletedProcess[str]"]

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def pip_compile(folder: Path, index_urls: Sequence[str], caller: str,
                extra: Sequence[str] = (), run: Run = subprocess.run
                ) -> subprocess.CompletedProcess[str]:
    """pip-compile ``folder/requirements.in`` into ``folder/requirements.txt`` (kept pins
    there are kept), every file's hash, against ``index_urls``; ``extra`` options before
    the input; ``caller`` names the relock command in the output's header."""
    args = [sys.executable, "-m", "piptools", "compile", "--quiet", "--no-header",
            "--no-annotate", "--generate-hashes", "--allow-unsafe", "--no-emit-index-url",
            "--strip-extras", "--output-file", "requirements.txt"]
    for i, url in enumerate(index_urls):
        args += ["--index-url" if i == 0 else "--extra-index-url", url]
    args += [*extra, "requirements.in"]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "CUSTOM_COMPILE_COMMAND": caller}
    return run(args, cwd=folder, capture_output=True, text=True, env=env, timeout=600)


def parse_compiled(text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """pip-compile's output: normalised name -> (version, sorted sha256 hashes)."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = _PIN.match(line)
        if m:
            current = str(canonicalize_name(m.group(1)))
            out[current] = (m.group(3), ())
        if current:
            hashes = _HASH.findall(line)
            if hashes:
                version, have = out[current]
                out[current] = (version, tuple(sorted({*have, *hashes})))
    return out


def resolver_words(stderr: str) -> str:
    """What pip-compile said of a failure, in one line (its last words, no traceback)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.startswith(("WARNING", "Traceback", "File "))]
    text = " ".join(keep[-6:]) if keep else "pip-compile failed"
    return text if len(text) <= 600 else text[:597] + "..."
