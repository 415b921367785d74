"""``relock audit``: the lock against OSV vulnerability records, offline."""

from __future__ import annotations

from pathlib import Path

import click

from relock.cli.common import cli, dockerfile_option, lock_option, user_errors
from relock.errors import EXIT_DIFFERS


@cli.command()
@lock_option
@click.option("--osv", "osv_path", required=True, metavar="PATH",
              type=click.Path(path_type=Path),
              help="A folder (searched below) or zip of OSV JSON records, as OSV publishes "
                   "them per ecosystem (Debian:13, PyPI).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True,
              help="text for a terminal, markdown for an issue, json for scripts.")
@click.option("--fixes", is_flag=True,
              help="Also ask the lock's APT sources and the package index (as relock "
                   "outdated does) whether each fixed version is there now, and which "
                   "relock update takes it.")
@dockerfile_option
def audit(lock_path: Path | None, osv_path: Path, fmt: str, fixes: bool,
          dockerfile: Path) -> None:
    """Match the lock's packages against OSV vulnerability records, offline.

    Debian records by source package and Debian version order (a binNMU is
    its source's version), PyPI records by normalised name, PEP 440 ranges
    and listed versions; withdrawn records are skipped. Each finding names
    the package, its locked version, the record and its aliases, and the
    first fixed version. With --fixes (online), whether that fix is in the
    lock's sources now, as relock outdated sees them (the template's pip
    specifiers may hold one back), and the relock update that takes it.

    Exits 0 when nothing is found, 1 on findings, 2 on trouble (an unreadable
    lock or record).

    \b
    Examples:
      relock audit --lock locks/sci.lock --osv osv/
      relock audit --osv Debian-all.zip --format markdown
      relock audit --osv osv/ --fixes
    """
    from relock.supply import audit as core
    from relock.supply.command import AuditRequest, run_audit

    with user_errors():
        report = run_audit(AuditRequest(osv=osv_path, lock_path=lock_path, fixes=fixes,
                                        dockerfile=dockerfile))
    formats = {"json": core.format_json, "markdown": core.format_markdown}
    click.echo(formats.get(fmt, core.format_text)(report), nl=False)
    if report.findings:
        raise SystemExit(EXIT_DIFFERS)
