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
    """``[path/to/relock]``: this checkout, installed as ``pip install .`` installs it.

    When it cannot be installed (no index here), the running interpreter's
    relock, with a line saying so.
    """
    python = VENV / "bin" / "python"
    try:
        if not python.exists():
            print(f"installing this checkout into {VENV.relative_to(ROOT)} ...", flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)],
                           stdout=subprocess.DEVNULL, check=True)
        else:
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                            "--force-reinstall", str(ROOT)], stdout=subprocess.DEVNULL,
                           check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"could not install this checkout into {VENV.relative_to(ROOT)} ({e}); "
              "timing the running interpreter's relock instead", flush=True)
        return [sys.executable, "-m", "relock"]
    return [str(VENV / "bin" / "relock")]
