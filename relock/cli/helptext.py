"""``relock --help`` as stored text, so that printing it needs no click.

Made from the click group by ``python -m relock.cli.helptext`` (which
rewrites this file); tests/cli/test_cli.py fails when it is stale.
"""

from __future__ import annotations

TEXT = (
    'Usage: relock [OPTIONS] COMMAND [ARGS]...\n'
    '\n'
    '  Lock a built container image and rebuild it the same way later.\n'
    '\n'
    '  The loop:\n'
    '    docker build -t sci -f Dockerfile.in .   # an ordinary, unpinned build\n'
    '    relock freeze sci                        # record it in locks/sci.lock\n'
    '    relock build --lock locks/sci.lock -t sci:pinned   # rebuild it pinned\n'
    '    relock verify sci:pinned --lock locks/sci.lock     # prove it matches\n'
    '    relock diff locks/old.lock locks/sci.lock          # review what changed\n'
    '\n'
    '  Exit codes: 0 ok or identical, 1 differs (drift, a diff, a failed build), 2\n'
    '  trouble (bad input, unreachable engine or index, unreadable lock).\n'
    '\n'
    'Options:\n'
    '  --version   Show the version and exit.\n'
    '  -h, --help  Show this message and exit.\n'
    '\n'
    'Commands:\n'
    '  attach    Attach the lock (and SBOMs) to an image in its registry.\n'
    "  audit     Match the lock's packages against OSV vulnerability records,...\n"
    '  build     Rebuild the template pinned to a lock, and verify the image.\n'
    '  diff      Show what changed from OLD to NEW.\n'
    "  export    Write the lock's Python environments as PEP 751 lock files.\n"
    "  freeze    Read IMAGE's files into a lock file.\n"
    "  merge     Merge two locks package by package (git's merge driver).\n"
    '  outdated  List the locked packages that have newer versions (no build).\n'
    '  render    Write the pinned Dockerfile for another builder.\n'
    "  sbom      Write the lock's SBOM: every APT package, Python distribution...\n"
    '  serve     Serve the locked view on loopback until interrupted.\n'
    '  store     Look into a store: an OCI image layout folder or...\n'
    '  update    Move only the named packages (and what they need) to their...\n'
    '  vendor    Put every byte a rebuild of the lock needs into a store.\n'
    "  verify    Check that IMAGE's packages and base match a lock.\n"
)


def current() -> str:
    """What click prints for ``relock --help`` on a terminal 80 or more columns wide."""
    import click

    from relock.cli.common import cli

    # click wraps at min(columns, 80) - 2.
    with click.Context(cli, info_name="relock", terminal_width=78,
                       **cli.context_settings) as ctx:
        return cli.get_help(ctx) + "\n"


def _write() -> None:
    from pathlib import Path

    path = Path(__file__)
    text = path.read_text()
    head, _, rest = text.partition("\nTEXT = ")
    tail = rest[rest.index("\n\ndef current"):]
    lines = "".join(f"    {line!r}\n" for line in current().splitlines(keepends=True))
    path.write_text(f"{head}\nTEXT = (\n{lines})\n{tail}")


if __name__ == "__main__":
    _write()
