"""Benchmark: a pinned rebuild (``relock build``) against the unpinned build.

Both build the same Dockerfile.in (APT packages from Debian's archive, pip
packages into a venv from the Python index), cache-cold: ``--no-cache`` for
both, with the base image already in the engine for both. The image is built
and frozen once first; then the unpinned ``docker build`` and the pinned
``relock build`` run interleaved, alternating which goes first, for N rounds.
The pinned time is the whole command a user runs: fetching and checking the
locked files, serving the locked view, the build, and the verification of
the image against the lock. Each pinned round starts with an empty relock
cache (its own ``XDG_CACHE_HOME``), so it downloads what the unpinned build
downloads.

Prints each round, the medians and the overhead ratio against the target: 1.10 for
the classic builder, 1.00 for BuildKit (whose pinned build adds no layer of its own).

    .venv/bin/python benchmarks/build_bench.py [--rounds 2] [--base trixie] [--keep]
                                               [--platform linux/arm64]
                                               [--builder classic|buildkit]

``--builder`` names the builder of both builds: ``classic`` (the default; the
unpinned one is ``DOCKER_BUILDKIT=0 docker build``) or ``buildkit`` (the unpinned
one is ``docker buildx build --load``; relock builds with ``--builder buildkit``).
relock runs as a user installs it (``benchmarks/installed.py``).

With ``--platform`` both builds are for that platform (under emulation on
another machine: scripts/testbed registers qemu) and pull their base for it;
the base is then the test bed's multi-platform debian:<base>-slim named
through its local registry, so that the pulls never move the engine's own
debian:<base>-slim. The template relock freezes and builds pins it by its
index digest; the unpinned builds name the tag (the classic builder keeps
an index digest for one platform's image only).

Needs the test bed (scripts/testbed). Exit 0 when the target is met, 1 when
it is not or a build failed (as benchmarks/run.py expects).
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

TARGETS = {"classic": 1.10, "buildkit": 1.00}
REGISTRY = "127.0.0.1:5000"  # the test bed's local registry (scripts/testbed)

DOCKERFILE_IN = """\
FROM {base}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates python3-venv tini \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir six idna
ENV PATH=/opt/venv/bin:$PATH
"""


def run(cmd: list[str], log: Path, extra_env: dict[str, str] | None = None) -> float:
    """Run ``cmd`` with its output in ``log``; its wall time in seconds."""
    env = {**os.environ, **(extra_env or {})}
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-20:])
        raise SystemExit(f"build_bench: `{' '.join(cmd)}` failed "
                         f"(exit {done.returncode}); last lines of {log}:\n{tail}")
    return elapsed


def platform_base(codename: str) -> str:
    """The local registry's debian:<codename>-slim pinned by its image index digest."""
    import requests

    url = f"http://{REGISTRY}/v2/library/debian/manifests/{codename}-slim"
    accept = ("application/vnd.oci.image.index.v1+json, "
              "application/vnd.docker.distribution.manifest.list.v2+json")
    r = requests.get(url, headers={"Accept": accept}, timeout=10)
    if r.status_code != 200 or "manifests" not in r.json():
        raise SystemExit(f"build_bench: {REGISTRY} has no multi-platform debian:{codename}-slim;"
                         " run scripts/testbed")
    return f"{REGISTRY}/library/debian:{codename}-slim@{r.headers['Docker-Content-Digest']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each build (default 2)")
    parser.add_argument("--base", default="trixie", choices=["trixie", "bookworm"],
                        help="debian:<base>-slim (default trixie)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the images and the work folder")
    parser.add_argument("--platform", help="build for this platform (e.g. linux/arm64)")
    parser.add_argument("--builder", default="classic", choices=sorted(TARGETS),
                        help="the builder of both builds (default classic)")
    args = parser.parse_args()
    target = TARGETS[args.builder]
    relock = relock_command()
    base = platform_base(args.base) if args.platform else f"debian:{args.base}-slim"
    unpinned_platform = ["--pull", "--platform", args.platform] if args.platform else []
    relock_platform = ["--platform", args.platform] if args.platform else []

    work = Path(tempfile.mkdtemp(prefix="relock-bench-"))
    context = work / "ctx"
    context.mkdir()
    (context / "Dockerfile.in").write_text(DOCKERFILE_IN.format(base=base))
    unpinned_file = context / "Dockerfile.in"
    if args.platform:
        unpinned_file = context / "unpinned.Dockerfile"
        unpinned_file.write_text(DOCKERFILE_IN.format(base=base.split("@", 1)[0]))
    lock = work / "bench.lock"
    run_id = uuid.uuid4().hex[:8]
    tags: list[str] = []

    def tag(kind: str, n: int) -> str:
        tags.append(f"relock-bench-{kind}:{run_id}-{n}")
        return tags[-1]

    def unpinned(n: int) -> float:
        if args.builder == "buildkit":
            return run(["docker", "buildx", "build", "--load", "--no-cache", "--network", "host",
                        "--allow", "network.host", "--progress", "plain", *unpinned_platform,
                        "-f", str(unpinned_file), "-t", tag("unpinned", n), str(context)],
                       work / f"unpinned-{n}.log")
        return run(["docker", "build", "--no-cache", "--network", "host", "-q",
                    *unpinned_platform,
                    "-f", str(unpinned_file), "-t", tag("unpinned", n),
                    str(context)], work / f"unpinned-{n}.log", {"DOCKER_BUILDKIT": "0"})

    def pinned(n: int) -> float:
        cache = work / f"cache-{n}"
        return run([*relock, "build", "-f", str(context / "Dockerfile.in"),
                    "--lock", str(lock), "--no-cache", "-q", *relock_platform,
                    "--builder", args.builder,
                    "-t", tag("pinned", n)], work / f"pinned-{n}.log",
                   {"XDG_CACHE_HOME": str(cache)})

    try:
        print(f"build_bench: {base}, {args.platform or 'this platform'}, {args.builder}, "
              f"{args.rounds} round(s), "
              f"cache-cold (--no-cache); work folder {work}", flush=True)
        first = unpinned(0)
        run([*relock, "freeze", tags[-1], "-f", str(context / "Dockerfile.in"),
             *relock_platform, "-o", str(lock)], work / "freeze.log")
        print(f"  first build {first:.1f} s, frozen to {lock.name}", flush=True)
        times: dict[str, list[float]] = {"unpinned": [], "pinned": []}
        for n in range(1, args.rounds + 1):
            order = [("unpinned", unpinned), ("pinned", pinned)]
            if n % 2 == 0:
                order.reverse()
            for kind, fn in order:
                times[kind].append(fn(n))
            print(f"  round {n}: unpinned {times['unpinned'][-1]:6.1f} s   "
                  f"pinned {times['pinned'][-1]:6.1f} s", flush=True)
        last_pinned = next(t for t in reversed(tags) if t.startswith("relock-bench-pinned"))
        verify = run([*relock, "verify", last_pinned, "--lock", str(lock)],
                     work / "verify.log")
        u = statistics.median(times["unpinned"])
        p = statistics.median(times["pinned"])
        ratio = p / u
        print(f"  median:  unpinned {u:6.1f} s   pinned {p:6.1f} s   "
              f"(of which verify about {verify:.1f} s)")
        verdict = "met" if ratio <= target else "NOT met"
        print(f"overhead ratio pinned/unpinned{' for ' + args.platform if args.platform else ''}"
              f" ({args.builder}): {ratio:.3f} (target <= {target:.2f}: {verdict})")
        return 0 if ratio <= target else 1
    finally:
        if not args.keep:
            for t in tags:
                subprocess.run(["docker", "rmi", "-f", t], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
