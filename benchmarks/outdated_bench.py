"""Benchmark: ``relock outdated`` of the project lock, warm and cold, vs ``relock diff``.

``relock diff locks/sci.lock locks/sci.lock`` reads the lock twice and
compares: the baseline of a command that only reads the lock. ``relock
outdated --lock locks/sci.lock`` reads it once and asks the lock's APT
sources and the Python index; the ratio shows what those look-ups cost.
Warm: the cache (Release revalidated with ETag, Packages answers by content,
pip answers for an hour) filled by a first run; cold: an empty cache each
run (XDG_CACHE_HOME in a fresh folder). Each command runs as a subprocess,
startup included; medians are printed.

    .venv/bin/python benchmarks/outdated_bench.py [-n 5] [--lock locks/sci.lock]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--lock", default="locks/sci.lock")
    opts = parser.parse_args()
    relock = [sys.executable, "-m", "relock"]
    outdated = [*relock, "outdated", "--lock", opts.lock, "-f", "Dockerfile.in"]
    diff = [*relock, "diff", opts.lock, opts.lock]
    with tempfile.TemporaryDirectory(prefix="relock-outdated-bench-") as tmp:
        warm_env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "warm")}
        _run(outdated, warm_env)  # fills the warm cache
        base, warm, cold = [], [], []
        for i in range(opts.n):
            base.append(_run(diff, warm_env))
            warm.append(_run(outdated, warm_env))
            cold_env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / f"cold{i}")}
            cold.append(_run(outdated, cold_env))
    b, w, c = (statistics.median(x) for x in (base, warm, cold))
    print(f"relock diff {opts.lock} {opts.lock}: {b:.2f} s (median of {opts.n})")
    print(f"relock outdated, warm cache:   {w:.2f} s  ratio {w / b:.1f}")
    print(f"relock outdated, cold cache:   {c:.2f} s  ratio {c / b:.1f}")


if __name__ == "__main__":
    main()
