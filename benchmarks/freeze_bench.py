#!/usr/bin/env python3
"""Freeze's inventory phase against reading the same facts by running the image.

Side by side in one run, interleaved:
  relock:   relock freeze IMAGE --no-index   (reads the image's files; no index),
            installed as a user installs it (benchmarks/installed.py); the
            editable development venv's figure is printed beside it
  baseline: docker run --rm IMAGE sh -c 'dpkg-query -W; python3 -m pip list'
Prints the median of each and the ratio relock/baseline. Target: <= 0.35,
aim <= 0.25. A second table shows the index phase: a cold cache against a
warm one (the warm one must not ask the index at all). A third compares an
image that keeps its APT lists (apt-get update, ~20 MB of indexes) with the
same image without them: freeze, verify and diff must stay within 2x
(issue 9, item 11).

Usage: benchmarks/freeze_bench.py [IMAGE] [--rounds N (15)] [--no-lists]
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

from installed import relock_command

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


LISTS = {
    "relock-bench-lists:kept": "RUN rm -f /etc/apt/apt.conf.d/docker-clean && apt-get update",
    "relock-bench-lists:removed": "RUN apt-get update && rm -rf /var/lib/apt/lists/*",
}


def lists_ratio(rounds: int, tmp: Path) -> bool:
    """Freeze, verify and diff of an image with APT lists against one without."""
    times: dict[str, dict[str, float]] = {}
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "lists-cache")}
    for tag, run in LISTS.items():
        ctx = tmp / tag.replace(":", "-")
        ctx.mkdir()
        (ctx / "Dockerfile.in").write_text(f"FROM debian:trixie-slim\n{run}\n")
        if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode:
            subprocess.run(["docker", "build", "--network", "host", "-q", "-t", tag, "-f",
                            "Dockerfile.in", "."], cwd=ctx, check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "DOCKER_BUILDKIT": "0"})
        lock = str(ctx / "x.lock")
        commands = {
            "freeze": [*RELOCK, "freeze", tag, "-f", str(ctx / "Dockerfile.in"), "-o", lock,
                       "--no-index"],
            "verify": [*RELOCK, "verify", tag, "--lock", lock],
            "diff": [*RELOCK, "diff", tag, tag],
        }
        timed(commands["freeze"], env)  # the lock verify reads; warms the caches
        times[tag] = {
            name: statistics.median(timed(cmd, env) for _ in range(rounds))
            for name, cmd in commands.items()
        }
    kept, removed = times.values()
    ok = True
    for name in ("freeze", "verify", "diff"):
        ratio = kept[name] / removed[name]
        ok = ok and ratio <= 2.0
        print(f"apt lists  {name:<6} kept {kept[name]:.3f} s, removed {removed[name]:.3f} s: "
              f"ratio {ratio:.2f} (target <= 2.00)")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", nargs="?", default="relock-sci:latest")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-lists", action="store_true",
                    help="skip the APT-lists comparison (it builds two small images)")
    args = ap.parse_args()
    ensure_image(args.image)
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "bench.lock")
        args_ = ["freeze", args.image, "-f", str(ROOT / "Dockerfile.in"), "-o", out]
        freeze = [*RELOCK, *args_]
        installed = [*relock_command(), *args_, "--no-index"]
        baseline = ["docker", "run", "--rm", "--network", "host", "--entrypoint", "sh",
                    args.image, "-c", "dpkg-query -W; python3 -m pip list"]
        ours, dev, theirs = [], [], []
        for cmd in (installed, [*freeze, "--no-index"], baseline):
            timed(cmd)  # warm the page cache for every side alike
        for _ in range(args.rounds):
            ours.append(timed(installed))
            dev.append(timed([*freeze, "--no-index"]))
            theirs.append(timed(baseline))
        a, d, b = statistics.median(ours), statistics.median(dev), statistics.median(theirs)
        how = "pip install ." if "bench-venv" in installed[0] else "the running relock"
        print(f"inventory  relock freeze --no-index  median {a:.3f} s over {args.rounds} runs "
              f"({how})")
        print(f"           the same, editable venv   median {d:.3f} s ({d / b:.2f} of baseline)")
        print(f"baseline   docker run dpkg-query+pip  median {b:.3f} s over {args.rounds} runs")
        verdict = "PASS" if a / b <= TARGET else "FAIL"
        print(f"ratio      {a / b:.2f} (target <= {TARGET:.2f}, aim <= 0.25): {verdict}")

        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        cold = timed(freeze, env)
        warm = timed(freeze, env)
        print(f"index      cold cache {cold:.3f} s, warm cache {warm:.3f} s "
              f"({warm / cold:.2f}x)")
        lists_ok = args.no_lists or lists_ratio(args.rounds, Path(tmp))
    return 0 if a / b <= TARGET and lists_ok else 1


if __name__ == "__main__":
    sys.exit(main())
