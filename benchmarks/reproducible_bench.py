"""Benchmark: ``relock build --reproducible`` against a plain pinned ``relock build``.

Both build one template (APT packages from Debian's archive, pip packages into a venv)
with BuildKit, cache-cold (``--no-cache``), from one warm relock cache (the locked files
fetched once before the rounds), so that the difference is what reproducibility costs:
the OCI export with rewritten timestamps and its ``docker load``, against ``--load``.
The template is built with ``docker buildx build`` and frozen once first; then the two
run interleaved, alternating which goes first, for N rounds. relock runs as a user
installs it (``benchmarks/installed.py``). Every reproducible round must give the digest
the first one recorded.

Prints each round, the medians and the ratio against the 1.10 target.

    .venv/bin/python benchmarks/reproducible_bench.py [--rounds 2] [--keep]

Needs the test bed (scripts/testbed: BuildKit and the containerd image store). Exit 0
when the target is met, 1 when it is not or a build failed (as benchmarks/run.py expects).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from installed import relock_command

TARGET = 1.10

DOCKERFILE_IN = """\
FROM debian:trixie-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates python3-venv tini \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir six idna
ENV PATH=/opt/venv/bin:$PATH
"""


def run(cmd: list[str], log: Path, env: dict[str, str]) -> tuple[float, str]:
    """Run ``cmd`` with its output in ``log``; its wall time and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    elapsed = time.perf_counter() - start
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "".join((done.stdout + done.stderr).splitlines(keepends=True)[-20:])
        raise SystemExit(f"reproducible_bench: `{' '.join(cmd)}` failed "
                         f"(exit {done.returncode}); last lines:\n{tail}")
    return elapsed, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each build (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the images and the work folder")
    args = parser.parse_args()
    relock = relock_command()
    work = Path(tempfile.mkdtemp(prefix="relock-repro-bench-"))
    context = work / "ctx"
    context.mkdir()
    (context / "Dockerfile.in").write_text(DOCKERFILE_IN)
    lock = work / "bench.lock"
    env = {"XDG_CACHE_HOME": str(work / "cache")}
    run_id = uuid.uuid4().hex[:8]
    tags: list[str] = []

    def tag(kind: str, n: int) -> str:
        tags.append(f"relock-bench-{kind}:{run_id}-{n}")
        return tags[-1]

    def build(kind: str, n: int) -> float:
        extra = ["--reproducible"] if kind == "reproducible" else ["--builder", "buildkit"]
        took, out = run([*relock, "build", "--lock", str(lock), "--no-cache", "-q", *extra,
                         "-t", tag(kind, n)], work / f"{kind}-{n}.log", env)
        if kind == "reproducible" and n > 0 and "reproduced sha256:" not in out:
            raise SystemExit(f"reproducible_bench: round {n} did not reproduce:\n{out}")
        return took

    try:
        print(f"reproducible_bench: {args.rounds} round(s), cache-cold builds (--no-cache), "
              f"warm relock cache; work folder {work}", flush=True)
        raw = tag("raw", 0)
        first, _ = run(["docker", "buildx", "build", "--network", "host", "--load", "-q",
                        "-t", raw, "-f", str(context / "Dockerfile.in"), str(context)],
                       work / "raw.log", {})
        run([*relock, "freeze", raw, "-f", str(context / "Dockerfile.in"), "-o", str(lock)],
            work / "freeze.log", env)
        # Fills relock's cache and records the digest in the lock.
        build("reproducible", 0)
        print(f"  first build {first:.1f} s, frozen and recorded in {lock.name}", flush=True)
        times: dict[str, list[float]] = {"pinned": [], "reproducible": []}
        for n in range(1, args.rounds + 1):
            order = ["pinned", "reproducible"]
            if n % 2 == 0:
                order.reverse()
            for kind in order:
                times[kind].append(build(kind, n))
            print(f"  round {n}: pinned {times['pinned'][-1]:6.1f} s   "
                  f"reproducible {times['reproducible'][-1]:6.1f} s (reproduced)", flush=True)
        p = statistics.median(times["pinned"])
        r = statistics.median(times["reproducible"])
        ratio = r / p
        print(f"  median:  pinned {p:6.1f} s   reproducible {r:6.1f} s")
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"ratio reproducible/pinned: {ratio:.3f} (target <= {TARGET:.2f}: {verdict})")
        return 0 if ratio <= TARGET else 1
    finally:
        if not args.keep:
            for t in tags:
                subprocess.run(["docker", "rmi", "-f", t], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
