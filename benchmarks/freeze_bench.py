#!/usr/bin/env python3
"""Freeze's inventory phase against reading the same facts by running the image.

Side by side in one run, interleaved:
  relock:   relock freeze IMAGE --no-index   (reads the image's files; no index)
  baseline: docker run --rm IMAGE sh -c 'dpkg-query -W; python3 -m pip list'
Prints the median of each and the ratio relock/baseline. Target: <= 0.35,
aim <= 0.25. A second table shows the index phase: a cold cache against a
warm one (the warm one must not ask the index at all).

Usage: benchmarks/freeze_bench.py [IMAGE] [--rounds N]
IMAGE defaults to relock-sci:latest, built from Dockerfile.in if missing.
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

ROOT = Path(__file__).resolve().parent.parent
RELOCK = [sys.executable, "-m", "relock"]
TARGET = 0.35


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - start


def ensure_image(image: str) -> None:
    found = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
    if found.returncode != 0:
        print(f"building {image} from Dockerfile.in ...", flush=True)
        subprocess.run(["docker", "build", "--network", "host", "-q", "-t", image, "-f",
                        "Dockerfile.in", "."], cwd=ROOT, check=True,
                       env={**os.environ, "DOCKER_BUILDKIT": "0"})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", nargs="?", default="relock-sci:latest")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    ensure_image(args.image)
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "bench.lock")
        freeze = [*RELOCK, "freeze", args.image, "-f", str(ROOT / "Dockerfile.in"), "-o", out]
        baseline = ["docker", "run", "--rm", "--network", "host", "--entrypoint", "sh",
                    args.image, "-c", "dpkg-query -W; python3 -m pip list"]
        ours, theirs = [], []
        timed([*freeze, "--no-index"])  # warm the page cache for both sides alike
        timed(baseline)
        for _ in range(args.rounds):
            ours.append(timed([*freeze, "--no-index"]))
            theirs.append(timed(baseline))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"inventory  relock freeze --no-index  median {a:.3f} s over {args.rounds} runs")
        print(f"baseline   docker run dpkg-query+pip  median {b:.3f} s over {args.rounds} runs")
        verdict = "PASS" if a / b <= TARGET else "FAIL"
        print(f"ratio      {a / b:.2f} (target <= {TARGET:.2f}, aim <= 0.25): {verdict}")

        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        cold = timed(freeze, env)
        warm = timed(freeze, env)
        print(f"index      cold cache {cold:.3f} s, warm cache {warm:.3f} s "
              f"({warm / cold:.2f}x)")
    return 0 if a / b <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
