"""The contract every hostile case holds, and the inputs the cases share.

A hostile input ends in exit 2 (trouble), one line ``relock: error: ...`` on
stderr, no traceback, and no output file written, replaced or half-left.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from relock.cli import cli

DATA = Path(__file__).resolve().parent
GOOD = (DATA / "good.lock").read_text()
H = "1" * 64


def invoke(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    """relock's command line in this process; an exception it lets through fails the test."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def one_line_error(r: click.testing.Result, *fragments: str, code: int = 2) -> str:
    """Assert the contract: exit code, one ``relock: error:`` line, no traceback."""
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = r.stderr.splitlines()
    errors = [line for line in lines if line.startswith("relock: error: ")]
    assert len(errors) == 1, r.stderr
    assert r.stderr.endswith(errors[0] + "\n"), r.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def files_in(folder: Path) -> list[str]:
    """What a folder holds, by name, to show nothing was left or half-written there."""
    return sorted(p.name for p in folder.iterdir())


def rootfs(tmp_path: Path, files: dict[str, str | bytes] | None = None) -> Path:
    """A small Debian-looking folder tree for ``freeze --rootfs``."""
    root = tmp_path / "root"
    base: dict[str, str | bytes] = {
        "etc/os-release": 'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n',
        "var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\n"
                               "Architecture: amd64\nVersion: 5.2.37-2+b5\n\n",
        "etc/apt/sources.list.d/debian.sources":
            "Types: deb\nURIs: http://127.0.0.1:8/debian\nSuites: trixie\n"
            "Components: main\n",
    }
    for name, body in {**base, **(files or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
    return root


def freeze_rootfs(root: Path, out: Path, *extra: str) -> click.testing.Result:
    """``relock freeze --rootfs`` of ROOT to OUT, offline and on a fixed snapshot."""
    return invoke("freeze", "--rootfs", str(root), "--no-index", "-o", str(out),
                  "--snapshot", "20261101T000000Z", *extra)


def render_args(tmp_path: Path, out: Path, template_text: str = "FROM debian:trixie-slim\n"
                ) -> list[str]:
    """``relock render`` of the good lock and TEMPLATE_TEXT to OUT, its files made in TMP_PATH."""
    lock = tmp_path / "x.lock"
    lock.write_text(GOOD)
    template = tmp_path / "Dockerfile.in"
    template.write_text(template_text)
    return ["render", "-f", str(template), "--lock", str(lock), "-o", str(out), "--force"]
