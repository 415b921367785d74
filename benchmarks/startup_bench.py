#!/usr/bin/env python3
"""How quickly ``relock --help`` answers, against Python starting and doing nothing.

Paired and interleaved: each round runs ``relock --help`` and then
``python -c pass`` with the same interpreter, so that both see the same
machine load. Prints the median of each and the ratio. Target: <= 1.5.

Usage: benchmarks/startup_bench.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 1.5


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    # The console script beside this interpreter; `python -m relock` as a fallback.
    script = Path(sys.executable).parent / "relock"
    relock = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "relock",
                                                              "--help"]
    baseline = [sys.executable, "-c", "pass"]
    env = {**os.environ, "COLUMNS": "100"}
    timed(relock, env)  # warm the page cache and the bytecode caches for both
    timed(baseline, env)
    ours, theirs = [], []
    for _ in range(args.rounds):
        ours.append(timed(relock, env))
        theirs.append(timed(baseline, env))
    a, b = statistics.median(ours), statistics.median(theirs)
    ratio = a / b
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"relock --help    median {a * 1000:.1f} ms over {args.rounds} runs")
    print(f"python -c pass   median {b * 1000:.1f} ms over {args.rounds} runs")
    print(f"ratio            {ratio:.2f} (target <= {TARGET}): {verdict}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
