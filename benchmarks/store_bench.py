"""Benchmark: the store, against building the ordinary way.

Three figures for one small template (APT packages from Debian's archive, a
venv with pip packages from the Python index), built and frozen once first:

1. a cold ``relock vendor`` (empty store, empty relock cache) against a cold
   ``docker build --no-cache`` of the same template: both download the
   locked .debs and Python files (vendor also copies the base image from the
   registry; the build has it in the engine). Target: ratio <= 1.0.
2. ``relock build --store`` on the offline second host (scripts/secondhost:
   a network namespace with only loopback, its own engine and registry)
   against ``relock build`` online on the first host, both ``--no-cache``
   with an empty relock cache and the base already in the engine (the first
   offline round publishes it from the store first). Target: ratio <= 1.0.
3. the store's size (the lock's files and the base image) against the
   image's size.

    .venv/bin/python benchmarks/store_bench.py [--rounds 2] [--project] [--keep]

``--project`` measures the project's own image (Dockerfile.in at the top of
the repository, its folder as the context) instead of the small template.

Needs the test bed (scripts/testbed); part 2 needs the second host up
(sudo scripts/secondhost start) and root (relock is run inside its
namespace), else it is skipped and said so. Exit 0 when the targets that
were measured are met, 1 when not or when a command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET = 1.0
NETNS = Path("/var/run/netns/relock-secondhost")
SECOND = "unix:///run/relock-secondhost/docker.sock"

DOCKERFILE_IN = """\
FROM debian:trixie-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates python3-venv tini \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir six idna markupsafe
ENV PATH=/opt/venv/bin:$PATH
"""


def run(cmd: list[str], log: Path, extra_env: dict[str, str] | None = None,
        cwd: Path | None = None) -> float:
    """Run ``cmd`` with its output in ``log``; its wall time in seconds."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0", **(extra_env or {})}
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-20:])
        raise SystemExit(f"store_bench: `{' '.join(cmd)}` failed "
                         f"(exit {done.returncode}); last lines of {log}:\n{tail}")
    return elapsed


def relock(*args: str) -> list[str]:
    return [sys.executable, "-m", "relock", *args]


def second_host_up() -> str:
    """"" if relock can run on the second host here, else why not."""
    if os.geteuid() != 0:
        return "not root (relock runs inside the second host's namespace)"
    if not NETNS.exists():
        return "the second host is not up (sudo scripts/secondhost start)"
    done = subprocess.run(["docker", "version"], env={**os.environ, "DOCKER_HOST": SECOND},
                          capture_output=True, check=False)
    return "" if done.returncode == 0 else "the second host's engine does not answer"


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def ratio_line(name: str, mine: float, theirs: float, what: str) -> tuple[str, bool]:
    ratio = mine / theirs
    ok = ratio <= TARGET
    return (f"  {name:<34} {mine:7.1f} s vs {theirs:7.1f} s  ratio {ratio:5.2f} "
            f"(target <= {TARGET:.1f}: {'met' if ok else 'NOT met'}; {what})", ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each (default 2)")
    parser.add_argument("--project", action="store_true",
                        help="the project image (./Dockerfile.in) instead of a small one")
    parser.add_argument("--keep", action="store_true", help="keep images and work folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="relock-store-bench-"))
    if args.project:
        context = Path(__file__).resolve().parent.parent
        template = context / "Dockerfile.in"
    else:
        context = work / "ctx"
        context.mkdir()
        template = context / "Dockerfile.in"
        template.write_text(DOCKERFILE_IN)
    lock = work / "bench.lock"
    run_id = uuid.uuid4().hex[:8]
    tags: list[str] = []
    second_tags: list[str] = []

    def tag(kind: str, n: int, second: bool = False) -> str:
        made = f"relock-bench-store-{kind}:{run_id}-{n}"
        (second_tags if second else tags).append(made)
        return made

    def docker_build(n: int) -> float:
        return run(["docker", "build", "--no-cache", "--network", "host", "-q", "-f",
                    str(template), "-t", tag("unpinned", n), str(context)],
                   work / f"docker-{n}.log")

    def vendor(n: int) -> float:
        return run(relock("vendor", "--lock", str(lock), "--store", str(work / f"store-{n}"),
                          "--apt-live"), work / f"vendor-{n}.log",
                   {"XDG_CACHE_HOME": str(work / f"vcache-{n}")})

    def online(n: int) -> float:
        return run(relock("build", "-f", str(template), "--lock", str(lock), "--no-cache",
                          "-q", "-t", tag("online", n)), work / f"online-{n}.log",
                   {"XDG_CACHE_HOME": str(work / f"ocache-{n}")})

    def offline(n: int) -> float:
        return run(["nsenter", f"--net={NETNS}",
                    *relock("build", "-f", str(template), "--lock", str(lock), "--store",
                            str(work / "store-1"), "--no-cache", "-q",
                            "-t", tag("offline", n, second=True))],
                   work / f"offline-{n}.log",
                   {"XDG_CACHE_HOME": str(work / f"fcache-{n}"), "DOCKER_HOST": SECOND})

    results: list[tuple[str, bool]] = []
    try:
        print(f"store_bench: {'the project image' if args.project else 'a small image'}, "
              f"{args.rounds} round(s), cache-cold; work folder {work}", flush=True)
        first = docker_build(0)
        run(relock("freeze", tags[-1], "-f", str(template), "-o", str(lock)),
            work / "freeze.log")
        print(f"  first build {first:.1f} s, frozen to {lock.name}", flush=True)

        times: dict[str, list[float]] = {"docker": [], "vendor": []}
        for n in range(1, args.rounds + 1):
            order = [("docker", docker_build), ("vendor", vendor)]
            if n % 2 == 0:
                order.reverse()
            for kind, fn in order:
                times[kind].append(fn(n))
            print(f"  round {n}: docker build {times['docker'][-1]:6.1f} s   "
                  f"relock vendor {times['vendor'][-1]:6.1f} s", flush=True)
        results.append(ratio_line("cold relock vendor / docker build",
                                  statistics.median(times["vendor"]),
                                  statistics.median(times["docker"]), "medians"))

        why_not = second_host_up()
        if why_not:
            print(f"  offline rebuild: skipped: {why_not}")
        else:
            times = {"online": [], "offline": []}
            for n in range(1, args.rounds + 1):
                order = [("online", online), ("offline", offline)]
                if n % 2 == 0:
                    order.reverse()
                for kind, fn in order:
                    times[kind].append(fn(n))
                print(f"  round {n}: relock build online {times['online'][-1]:6.1f} s   "
                      f"relock build --store offline {times['offline'][-1]:6.1f} s",
                      flush=True)
            results.append(ratio_line("relock build --store (offline) / online",
                                      statistics.median(times["offline"]),
                                      statistics.median(times["online"]), "medians"))

        size = json.loads(subprocess.run(["docker", "image", "inspect", tags[0]],
                                         capture_output=True, check=True).stdout)[0]["Size"]
        stored = du(work / "store-1" / "blobs")
        print(f"  store {stored / 1e6:.1f} MB (lock's files + base image, compressed) vs "
              f"image {size / 1e6:.1f} MB: {stored / size:.2f} of the image")
        print("ratios:")
        for line, _ in results:
            print(line)
        return 0 if all(ok for _, ok in results) else 1
    finally:
        if not args.keep:
            for t in tags:
                subprocess.run(["docker", "rmi", "-f", t], capture_output=True, check=False)
            for t in second_tags:
                subprocess.run(["docker", "rmi", "-f", t], capture_output=True, check=False,
                               env={**os.environ, "DOCKER_HOST": SECOND})
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
