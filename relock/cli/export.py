"""``relock export``: the lock's Python environments as PEP 751 pylock.toml files."""

from __future__ import annotations

from pathlib import Path

import click

from relock.cli.common import PLATFORM, cli, lock_option, progress, user_errors


@cli.command()
@lock_option
@click.option("--format", "fmt", type=click.Choice(["pylock"]), default="pylock",
              show_default=True, help="pylock: PEP 751, for pip and uv.")
@click.option("--env", metavar="PATH",
              help="Only this environment (its prefix, /opt/venv). [default: every one]")
@click.option("--platform", metavar="OS/ARCH", type=PLATFORM,
              help="Only this platform's part of a multi-platform lock. [default: every "
                   "platform]")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default="pylock.toml", show_default=True,
              help="The file to write; with several environments or platforms, "
                   "pylock.NAME.toml files beside it.")
def export(lock_path: Path | None, fmt: str, env: str | None, platform: str | None,
           output: Path) -> None:
    """Write the lock's Python environments as PEP 751 lock files.

    Each distribution with its files (URLs on the index pip is configured
    with, as relock freeze found its hashes) and sha256 hashes, the
    environment's requires-python and an environments marker for the
    image's Python and platform. Install one with uv pip install -r
    pylock.toml (or pip, where it reads pylock files). Exits 0, or 2 on
    trouble (a locked file not on the index).

    \b
    Examples:
      relock export --lock locks/sci.lock -o pylock.toml
      relock export --env /opt/venv --platform linux/arm64 -o pylock.toml
    """
    from relock.supply.command import ExportRequest, run_export

    request = ExportRequest(output=output, lock_path=lock_path, env=env, platform=platform,
                            fmt=fmt)
    with user_errors():
        written = run_export(request)
    for path in written:
        progress(f"wrote {path}")
