"""Benchmark: ``relock diff`` of two synthetic locks of 5,000 APT + 2,000 pip entries.

Writes the two locks to a temp folder, runs the whole command (startup
included) as a subprocess N times, and ``relock --help`` N times for the
startup alone, then prints the median wall times, their ratio and PASS/FAIL
against the budget of issue 5 (0.5 s).

    .venv/bin/python benchmarks/diff_bench.py [-n 7] [--apt 5000] [--pip 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relock.lock.lockfile import AptPackage, Base, Distro, Input, Lock, PipPackage, write

BUDGET = 0.5


def _sha(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def synthetic_locks(n_apt: int, n_pip: int, seed: int = 5) -> tuple[Lock, Lock]:
    """Two locks a few months apart: about one entry in ten differs."""
    rnd = random.Random(seed)
    old_apt, new_apt = [], []
    for i in range(n_apt):
        arch = "all" if i % 7 == 0 else "amd64"
        version = f"{rnd.randint(0, 2)}:{rnd.randint(1, 40)}.{i % 13}.{i % 5}-{rnd.randint(1, 9)}"
        pkg = AptPackage(f"lib{i:05d}-pkg", version, arch, source=f"src{i // 3:05d}",
                         source_version=version, auto=i % 3 != 0, sha256=_sha("deb", i))
        old_apt.append(pkg)
        roll = rnd.random()
        if roll < 0.06:
            new_apt.append(AptPackage(**{**pkg.__dict__, "version": version + "+deb12u1",
                                         "sha256": _sha("deb", i, "u1")}))
        elif roll < 0.07:
            new_apt.append(AptPackage(**{**pkg.__dict__, "version": version.replace("-", "~rc1-"),
                                         "sha256": _sha("deb", i, "rc")}))
        elif roll < 0.075:
            new_apt.append(AptPackage(**{**pkg.__dict__, "sha256": _sha("deb", i, "again")}))
        elif roll < 0.08:
            continue  # removed
        else:
            new_apt.append(pkg)
    new_apt += [AptPackage(f"new{i:04d}", "1.0-1", "amd64", sha256=_sha("new", i))
                for i in range(n_apt // 200)]
    old_pip, new_pip = [], []
    for i in range(n_pip):
        env = "/opt/venv" if i % 10 else "/usr"
        version = f"{rnd.randint(0, 30)}.{i % 17}.{rnd.randint(0, 9)}"
        hashes = tuple(f"sha256:{_sha('whl', i, k)}" for k in range(1 + i % 3))
        dist = PipPackage(f"dist-{i:04d}", version, env, requested=i % 4 == 0, hashes=hashes)
        old_pip.append(dist)
        roll = rnd.random()
        if roll < 0.08:
            new_pip.append(PipPackage(dist.name, version + ".post1", env, dist.requested,
                                      (f"sha256:{_sha('whl', i, 'post')}",)))
        elif roll < 0.09:
            new_pip.append(PipPackage(dist.name, version, env, dist.requested,
                                      (f"sha256:{_sha('whl', i, 'again')}",)))
        elif roll < 0.095:
            continue
        else:
            new_pip.append(dist)
    new_pip += [PipPackage(f"fresh-{i:03d}", "1.0", "/opt/venv", hashes=(f"sha256:{_sha(i)}",))
                for i in range(n_pip // 200)]

    def lock(apt: list[AptPackage], pip: list[PipPackage], snapshot: str, digest: str) -> Lock:
        return Lock(input=Input("Dockerfile.in", _sha("in")),
                    distro=Distro("debian", "12", "bookworm"), snapshot=snapshot,
                    snapshot_from="release-date",
                    base=(Base(0, "debian:bookworm-slim", f"sha256:{digest}"),),
                    apt=tuple(apt), pip=tuple(pip))

    return (lock(old_apt, old_pip, "20250101T000000Z", _sha("base", 1)),
            lock(new_apt, new_pip, "20250601T000000Z", _sha("base", 2)))


def _median_wall(cmd: list[str], runs: int, ok: tuple[int, ...]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode not in ok:
            sys.exit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=7)
    parser.add_argument("--apt", type=int, default=5000)
    parser.add_argument("--pip", type=int, default=2000)
    args = parser.parse_args()
    relock = str(Path(sys.executable).parent / "relock")
    old, new = synthetic_locks(args.apt, args.pip)
    with tempfile.TemporaryDirectory(prefix="relock-diff-bench.") as tmp:
        a, b = Path(tmp) / "old.lock", Path(tmp) / "new.lock"
        write(old, a)
        write(new, b)
        summary = subprocess.run([relock, "diff", "--stat", str(a), str(b)],
                                 capture_output=True, text=True, check=False).stdout.strip()
        diff = _median_wall([relock, "diff", str(a), str(b)], args.runs, ok=(1,))
        same = _median_wall([relock, "diff", str(a), str(a)], args.runs, ok=(0,))
        help_ = _median_wall([relock, "--help"], args.runs, ok=(0,))
    print(f"locks: {len(old.apt)}/{len(new.apt)} apt, {len(old.pip)}/{len(new.pip)} pip; "
          f"{summary}")
    print(f"relock --help            median {help_:.3f} s over {args.runs} runs")
    print(f"relock diff OLD NEW      median {diff:.3f} s ({diff / help_:.1f}x --help)")
    print(f"relock diff OLD OLD      median {same:.3f} s ({same / help_:.1f}x --help)")
    verdict = "PASS" if diff < BUDGET else "FAIL"
    print(f"{verdict}: diff {diff:.3f} s against a budget of {BUDGET} s")
    sys.exit(0 if verdict == "PASS" else 1)


if __name__ == "__main__":
    main()
