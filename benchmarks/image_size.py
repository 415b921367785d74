"""Size of the project's scientific image against the original's 943 MB.

    python benchmarks/image_size.py                 build Dockerfile.in as relock-sci:bench
    python benchmarks/image_size.py TAG             measure an image the engine has
    python benchmarks/image_size.py TAG --build     build Dockerfile.in as TAG, then measure
    ... --json                                      one JSON object instead of text

The size is the one ``docker image inspect`` reports (uncompressed, all
layers), in decimal MB as ``docker images`` shows them; the builds use the
classic builder and host networking, like the engine tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_MB = 943.0  # the original Ubuntu + APT image
TARGET_MB = 700.0  # issue 6
DEFAULT_TAG = "relock-sci:bench"


def build(tag: str, dockerfile: str = "Dockerfile.in") -> float:
    """Build ``dockerfile`` from the repo root as ``tag``; seconds it took."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    cmd = ["docker", "build", "--network", "host", "-t", tag, "-f", dockerfile, "."]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"image_size: `{' '.join(cmd)}` failed ({done.returncode})")
    return time.monotonic() - started


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"image_size: docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def measure(tag: str) -> dict[str, object]:
    """The image's size, its ratio to the reference, and its largest layers."""
    size = int(_docker("image", "inspect", "--format", "{{.Size}}", tag).strip())
    layers = []
    history = _docker("image", "history", "--human=false", "--no-trunc",
                      "--format", "{{.Size}}\t{{.CreatedBy}}", tag)
    for line in history.splitlines():
        nbytes, _, created_by = line.partition("\t")
        if nbytes.isdigit() and int(nbytes) >= 1_000_000:
            step = " ".join(created_by.replace("/bin/sh -c ", "").split()) or "(base image)"
            layers.append({"mb": round(int(nbytes) / 1e6, 1), "step": step[:90]})
    mb = size / 1e6
    return {
        "image": tag,
        "bytes": size,
        "mb": round(mb, 1),
        "reference_mb": REFERENCE_MB,
        "ratio": round(mb / REFERENCE_MB, 3),
        "under_target": mb < TARGET_MB,
        "layers": layers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tag", nargs="?", help=f"image to measure (default: build {DEFAULT_TAG})")
    parser.add_argument("--build", action="store_true", help="build Dockerfile.in as TAG first")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    tag = args.tag or DEFAULT_TAG
    seconds = build(tag) if args.build or args.tag is None else None
    result = measure(tag)
    if seconds is not None:
        result["build_seconds"] = round(seconds, 1)

    if args.json:
        print(json.dumps(result))
        return 0
    print(f"image      {tag}")
    if seconds is not None:
        print(f"build      {seconds:.0f} s")
    print(f"size       {result['mb']} MB ({result['bytes']} bytes, docker image inspect)")
    print(f"reference  {REFERENCE_MB:.0f} MB (the original image)")
    print(f"ratio      {result['ratio']:.3f}  (target: under {TARGET_MB:.0f} MB: "
          f"{'met' if result['under_target'] else 'NOT met'})")
    for layer in result["layers"]:  # type: ignore[attr-defined]
        print(f"  {layer['mb']:>7.1f} MB  {layer['step']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
