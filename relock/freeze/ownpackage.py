"""The project's own package: installed from the build context, and what building it needs.

``pip install .`` (or ``-e .``) installs a distribution no index has. The image tells
that it came from a folder (its ``direct_url.json``, PEP 610) and what was built (the
``RECORD`` pip wrote): the inventory reads both, and the lock holds it as
``kind = "context"`` with the sha256 of that RECORD; a pinned build builds it from the
context again.

What the image cannot tell is what building it took: pip fetches the build backend
(``[build-system] requires``: setuptools, hatchling, poetry-core, ...) into an isolated
environment it throws away. This module finds the project's ``pyproject.toml`` in the
build context by the distribution's name, resolves those requirements with pip-compile
against the index pip is configured with (their dependencies too, each file's hash),
and adds them as ``kind = "build"`` entries: the locked view serves them to the pinned
build's pip, and nothing else.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from relock import bounds
from relock.errors import RelockError
from relock.lock.lockfile import Lock, PipPackage
from relock.upstream.pipcompile import Run, parse_compiled, pip_compile, resolver_words

if TYPE_CHECKING:
    from relock.upstream.index import PackageIndex

# PEP 517's fallback for a project without [build-system] (pip's too).
LEGACY_REQUIRES = ("setuptools>=40.8.0",)
_SKIP = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache"}


class OwnPackageError(RelockError):
    """The build requirements of the project's own package cannot be resolved."""


@dataclass(frozen=True)
class Project:
    """A Python project found in the build context."""

    name: str  # normalised
    path: Path  # its pyproject.toml, setup.cfg or setup.py
    requires: tuple[str, ...]


def projects(context: Path) -> Iterator[Project]:
    """The Python projects of ``context``: folders with a pyproject.toml or setup.cfg that
    names the project (symlinks not followed, hidden and virtualenv folders skipped)."""
    seen = 0
    for folder, dirs, files in os.walk(context, followlinks=False):
        depth = len(Path(folder).relative_to(context).parts)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP and not d.startswith(".")
                         and depth < bounds.PROJECT_SEARCH_DEPTH)
        seen += len(files)
        if seen > bounds.PROJECT_SEARCH_ENTRIES:
            return
        found = _project(Path(folder), set(files))
        if found is not None:
            yield found


def _project(folder: Path, files: set[str]) -> Project | None:
    import configparser

    name, requires = "", None
    if "pyproject.toml" in files:
        doc = _toml(folder / "pyproject.toml")
        if doc is not None:
            project = doc.get("project")
            tool = doc.get("tool")
            poetry = tool.get("poetry") if isinstance(tool, dict) else None
            for table in (project, poetry):
                if isinstance(table, dict) and isinstance(table.get("name"), str):
                    name = table["name"]
                    break
            system = doc.get("build-system")
            if isinstance(system, dict) and isinstance(system.get("requires"), list):
                requires = tuple(r for r in system["requires"] if isinstance(r, str))
    if not name and "setup.cfg" in files:
        path = folder / "setup.cfg"
        parser = configparser.ConfigParser(interpolation=None)
        try:
            if not path.is_symlink() and path.stat().st_size <= bounds.PROJECT_FILE:
                parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
                name = parser.get("metadata", "name", fallback="")
        except (OSError, configparser.Error):
            name = ""
    if not name:
        return None
    if requires is None:
        requires = LEGACY_REQUIRES if files & {"setup.py", "setup.cfg", "pyproject.toml"} \
            else ()
    marker = "pyproject.toml" if "pyproject.toml" in files else "setup.cfg"
    return Project(str(canonicalize_name(name)), folder / marker, requires)


def _toml(path: Path) -> dict[str, object] | None:
    import tomli

    try:
        if path.is_symlink() or path.stat().st_size > bounds.PROJECT_FILE:
            return None
        doc = tomli.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomli.TOMLDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def add_build_requirements(lock: Lock, context: Path, index_urls: Sequence[str],
                           run: Run = subprocess.run,
                           sdists: Mapping[tuple[str, str, str], Sequence[str]] | None = None
                           ) -> tuple[Lock, list[str]]:
    """``lock`` with the build requirements of each ``context`` entry, and warnings.

    Each environment with the project's own packages gets one resolution of the union
    of their ``[build-system] requires`` (with ``sdists``: the requirements of the
    distributions pip built from an sdist there, by (env, stage, platform)). A package
    whose project the context does not hold is a warning: a pinned build of it fails,
    naming what pip asked for.
    """
    own = [p for p in lock.pip if p.kind == "context"]
    if not own and not sdists:
        return lock, []
    found = {p.name: p for p in projects(context)} if own and context.is_dir() else {}
    warnings: list[str] = []
    by_env: dict[tuple[str, str, str], list[str]] = {
        key: list(reqs) for key, reqs in (sdists or {}).items()}
    for p in own:
        project = found.get(p.name)
        if project is None:
            warnings.append(
                f"{p.name}=={p.version} in {p.env} was installed from a folder "
                f"({'the build context' if found else 'not found in the build context'}), "
                f"but no pyproject.toml or setup.cfg in {context} names it: its build "
                "requirements are not locked, and a pinned build fails naming them (give "
                "freeze the --context the image was built from)")
            continue
        by_env.setdefault((p.env, p.stage, p.platform), []).extend(project.requires)
    extra: list[PipPackage] = []
    for (env, stage, platform), requires in sorted(by_env.items()):
        if not requires:
            continue
        pins = resolve(sorted(set(requires)), index_urls, run)
        extra += [PipPackage(name=name, version=version, env=env, hashes=hashes, stage=stage,
                             platform=platform, kind="build")
                  for name, (version, hashes) in sorted(pins.items())]
    kept = tuple(p for p in lock.pip if p.kind != "build")
    return replace(lock, pip=kept + tuple(extra)).sorted(), warnings


def resolve(requires: Sequence[str], index_urls: Sequence[str],
            run: Run = subprocess.run) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``requires`` and their dependencies pinned by pip-compile, each with every file's
    hash on the index: normalised name -> (version, hashes)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="relock-build-reqs-") as tmp:
        folder = Path(tmp)
        (folder / "requirements.in").write_text("".join(f"{r}\n" for r in requires))
        try:
            proc = pip_compile(folder, index_urls, "relock freeze", run=run)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise OwnPackageError(f"pip-compile could not run: {e}") from None
        if proc.returncode != 0:
            raise OwnPackageError(f"cannot resolve the build requirements "
                                  f"{', '.join(requires)}: {resolver_words(proc.stderr)}")
        return parse_compiled((folder / "requirements.txt").read_text())


def sdist_requires(index: PackageIndex, name: str, version: str,
                   hashes: Sequence[str]) -> tuple[str, ...] | None:
    """The ``[build-system] requires`` of ``name`` ``version``'s sdist on ``index``, when
    that version has no wheel at all there (pip built it from the sdist); None when it
    has a wheel or no sdist of the locked hashes. The sdist is read, never unpacked."""
    import io
    import tarfile

    from packaging.utils import InvalidSdistFilename, parse_sdist_filename

    locked = {h.split(":", 1)[1] for h in hashes if h.startswith("sha256:")}
    files = [link for link in index.links(name) if link.sha256 in locked]
    if not files or any(f.filename.endswith(".whl") for f in files):
        return None
    sdist = next((f for f in files if f.filename.endswith(".tar.gz")), None)
    if sdist is None:
        return None
    try:
        parse_sdist_filename(sdist.filename)
    except InvalidSdistFilename:
        return None
    stream, _ = index.open(sdist.url)
    with stream:
        data = stream.read(bounds.SDIST + 1)
    if len(data) > bounds.SDIST:
        raise bounds.too_big(sdist.filename, "the sdist", bounds.SDIST)
    if hashlib.sha256(data).hexdigest() != sdist.sha256:
        raise OwnPackageError(f"{sdist.filename} from the index does not match the lock")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            member = next((m for m in tar if m.isfile() and m.name.count("/") == 1
                           and m.name.endswith("/pyproject.toml")), None)
            if member is not None and member.size > bounds.PROJECT_FILE:
                raise bounds.too_big(sdist.filename, "its pyproject.toml", bounds.PROJECT_FILE)
            handle = tar.extractfile(member) if member is not None else None
            text = handle.read() if handle is not None else None
    except (tarfile.TarError, OSError, EOFError):
        raise OwnPackageError(f"{sdist.filename}: not a readable sdist") from None
    if text is None:
        return LEGACY_REQUIRES
    import tomli

    try:
        doc = tomli.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomli.TOMLDecodeError):
        raise OwnPackageError(f"{sdist.filename}: its pyproject.toml is not TOML") from None
    system = doc.get("build-system")
    if not isinstance(system, dict) or not isinstance(system.get("requires"), list):
        return LEGACY_REQUIRES
    return tuple(r for r in system["requires"] if isinstance(r, str))


def sdist_requirements(lock: Lock, index: PackageIndex, cache_dir: Path | None = None,
                       workers: int = 8) -> dict[tuple[str, str, str], list[str]]:
    """The build requirements of the locked distributions pip built from an sdist (a
    version with no wheel on the index), by (env, stage, platform).

    Each answer is cached by the locked hashes (the very files on the index then): a
    freeze again asks the index nothing."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from relock.files import write_cache

    def one(p: PipPackage) -> tuple[str, ...] | None:
        key = hashlib.sha256(" ".join(sorted(p.hashes)).encode()).hexdigest()
        path = cache_dir / "sdist-requires" / f"{key}.json" if cache_dir else None
        if path is not None:
            try:
                cached = json.loads(path.read_text())
                if cached is None or (isinstance(cached, list)
                                      and all(isinstance(r, str) for r in cached)):
                    return tuple(cached) if cached is not None else None
            except (OSError, ValueError):
                pass
        found = sdist_requires(index, p.name, p.version, p.hashes)
        if path is not None:
            write_cache(path, json.dumps(list(found) if found is not None else None))
        return found

    dists = [p for p in lock.pip if not p.kind and p.hashes]
    out: dict[tuple[str, str, str], list[str]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for p, found in zip(dists, pool.map(one, dists), strict=True):
            if found:
                out.setdefault((p.env, p.stage, p.platform), []).extend(found)
    return out
