"""The use cases of ``relock sbom``, ``relock export`` and ``relock audit``.

Each takes one frozen request (what the command line says) and returns what
the CLI prints or has written; nothing here prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relock.lock.lockfile import Lock
    from relock.supply.audit import Report


@dataclass(frozen=True)
class SbomRequest:
    """What ``relock sbom``'s options say."""

    fmt: str
    lock_path: Path | None = None
    platform: str | None = None
    output: Path | None = None
    image: str = ""  # the root component's name; default: the image the lock's header names
    supplier: str = ""


@dataclass(frozen=True)
class SbomOutcome:
    """The SBOM's text, and where it was written (None: for stdout)."""

    text: str
    written: Path | None


def read_lock(lock_path: Path | None) -> tuple[Lock, str, Path]:
    """The lock (found as every command finds it), its text and its path."""
    from relock.lock import lockfile
    from relock.lock.locate import default_lock

    path = default_lock(lock_path)
    text = lockfile.read_text(path)
    return lockfile.loads(text, str(path)), text, path


def run_sbom(request: SbomRequest) -> SbomOutcome:
    """The lock's SBOM in CycloneDX 1.6 or SPDX 2.3 JSON, written to ``output`` if given."""
    from relock.errors import UsageError
    from relock.files import atomic_write_text
    from relock.lock.grammar import problem, show
    from relock.supply import sbom

    lock, text, path = read_lock(request.lock_path)
    for what, value in (("--image", request.image), ("--supplier", request.supplier)):
        if value and problem("text", value):
            raise UsageError(f"{what} {show(value)}: {problem('text', value)}")
    image = request.image or sbom.image_of_header(text)
    out = sbom.render(lock, request.fmt, image=image, name=path.stem,
                      platform=request.platform, supplier=request.supplier)
    if request.output is not None:
        atomic_write_text(request.output, out)
    return SbomOutcome(out, request.output)


@dataclass(frozen=True)
class ExportRequest:
    """What ``relock export``'s options say."""

    output: Path
    lock_path: Path | None = None
    env: str | None = None
    platform: str | None = None
    fmt: str = "pylock"


def run_export(request: ExportRequest) -> tuple[Path, ...]:
    """The lock's Python environments as PEP 751 files (the files' URLs and hashes from the
    index pip is configured with); the paths written."""
    from relock.errors import UsageError
    from relock.files import atomic_write_text
    from relock.supply import pylock
    from relock.upstream.index import Index, pip_config

    if request.fmt != "pylock":
        raise UsageError(f"unknown export format {request.fmt!r} (pylock)")
    lock, _, _ = read_lock(request.lock_path)
    pylock.environments(lock, request.env, request.platform)  # before asking pip
    documents = pylock.export(lock, Index(pip_config()), env=request.env,
                              platform=request.platform)
    paths = tuple(request.output if not d.name else
                  request.output.parent / f"pylock.{d.name}.toml" for d in documents)
    for path, d in zip(paths, documents, strict=True):
        atomic_write_text(path, d.text)
    return paths


@dataclass(frozen=True)
class AuditRequest:
    """What ``relock audit``'s options say."""

    osv: Path
    lock_path: Path | None = None
    fixes: bool = False  # ask the lock's sources and the index whether each fix is there
    dockerfile: Path = Path("Dockerfile.in")  # its pip specifiers may hold a fix back


def run_audit(request: AuditRequest) -> Report:
    """The lock's final image against the OSV records at ``osv`` (a folder or a zip); with
    ``fixes``, each finding's fix looked up as ``relock outdated`` does."""
    from relock.supply import audit, osv

    lock, _, _ = read_lock(request.lock_path)
    report = audit.audit(lock, osv.read_all(request.osv))
    if not request.fixes or not report.findings:
        return report
    from relock.update import outdated
    from relock.upstream.archive import Archive
    from relock.upstream.archive import default_cache_dir as apt_cache_dir

    index = None
    if any(f.ecosystem == "PyPI" for f in report.findings):
        from relock.upstream.index import Index, pip_config

        index = Index(pip_config())
    return audit.check_fixes(
        report, lock, archive=Archive(apt_cache_dir()), index=index,
        template=outdated.template_requirements(request.dockerfile),
        keyrings=outdated.local_keyrings(lock.apt_sources),
        pip_cache=outdated.default_cache_dir())
