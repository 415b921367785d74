#!/usr/bin/env python3
"""How quickly ``relock --help`` answers, against Python starting and doing nothing.

Measured twice, side by side, each against ``python -c pass`` of its own venv:

  plain:    relock as a user installs it (``pip install .``, benchmarks/installed.py,
            or the venv given with --venv); the target applies to this one
  editable: the running interpreter's relock (the development venv, whose
            ``pip install -e`` import hook runs in every start of Python, so its
            baseline is slower too)

Paired and interleaved: each round runs both commands of both venvs, so that all
four see the same machine load. Prints the median of each and the ratios.
Target: <= 1.5.

Usage: benchmarks/startup_bench.py [--rounds N (30)] [--venv DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from installed import relock_command

TARGET = 1.5


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def pair(python: Path) -> tuple[list[str], list[str]]:
    """``relock --help`` and ``python -c pass`` of the venv ``python`` belongs to."""
    script = python.parent / "relock"
    relock = [str(script)] if script.exists() else [str(python), "-m", "relock"]
    return [*relock, "--help"], [str(python), "-c", "pass"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--venv", type=Path,
                    help="a venv holding relock installed with `pip install .` "
                         "(default: benchmarks/installed.py's, refreshed from this checkout)")
    args = ap.parse_args()
    if args.venv:
        plain_python = args.venv / "bin" / "python"
    else:
        command = relock_command()
        plain_python = (Path(command[0]).parent / "python" if len(command) == 1
                        else Path(sys.executable))
    sides = {"plain": pair(plain_python), "editable": pair(Path(sys.executable))}
    env = {**os.environ, "COLUMNS": "100"}
    plain_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    envs = {"plain": plain_env, "editable": env}
    times: dict[tuple[str, str], list[float]] = {}
    for name, cmds in sides.items():
        for cmd in cmds:  # warm the page cache and the bytecode caches for all four
            timed(cmd, envs[name])
    for _ in range(args.rounds):
        for name, (relock, baseline) in sides.items():
            times.setdefault((name, "relock"), []).append(timed(relock, envs[name]))
            times.setdefault((name, "python"), []).append(timed(baseline, envs[name]))
    ratios = {}
    for name in sides:
        a = statistics.median(times[(name, "relock")])
        b = statistics.median(times[(name, "python")])
        ratios[name] = a / b
        print(f"{name:<9} relock --help   median {a * 1000:.1f} ms over {args.rounds} runs")
        print(f"{'':<9} python -c pass  median {b * 1000:.1f} ms over {args.rounds} runs")
        print(f"{'':<9} ratio           {a / b:.2f}")
    ok = ratios["plain"] <= TARGET
    print(f"ratio of the plain install {ratios['plain']:.2f} (target <= {TARGET}): "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
