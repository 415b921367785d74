"""relock as a user installs it, for the benchmarks that time whole commands.

The README installs with ``pip install .``; a development venv's editable
install (``pip install -e``) adds an import hook to every start of Python
(about 25 ms here), which no user pays. ``relock_command()`` gives the
``relock`` console script of a venv under ``build/bench-venv`` that holds this
checkout installed that way, refreshed on every call (``--no-deps``: the
dependencies come once, from pip's configured index, when the venv is made).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "build" / "bench-venv"


def relock_command() -> list[str]:
    """``[path/to/relock]``: this checkout, installed as ``pip install .`` installs it."""
    python = VENV / "bin" / "python"
    quiet = {"stdout": subprocess.DEVNULL, "check": True}
    if not python.exists():
        print(f"installing this checkout into {VENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], **quiet)
    else:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                        "--force-reinstall", str(ROOT)], **quiet)
    return [str(VENV / "bin" / "relock")]
