"""A lock's Python environments as PEP 751 ``pylock.toml`` files.

One file per environment (and platform): each locked distribution with every
file of its version on the configured index that the lock's hashes name,
by URL and sha256, so that ``uv pip install -r pylock.toml`` (or pip)
installs exactly the locked set. The document is built with packaging's own
``packaging.pylock`` classes, so relock never writes one they refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relock.errors import RelockError
from relock.lock.lockfile import Lock, PipPackage, PythonEnv

if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet

    from relock.upstream.index import IndexLink, PackageIndex


class ExportError(RelockError):
    """A lock cannot be exported: no such environment, or its files are not on the index."""


@dataclass(frozen=True)
class Exported:
    """One pylock document: the environment (and platform) it is for, and its text."""

    env: str
    platform: str
    name: str  # "" for pylock.toml, else the NAME of pylock.NAME.toml
    text: str


def environments(lock: Lock, env: str | None = None,
                 platform: str | None = None) -> list[tuple[str, PythonEnv]]:
    """The final image's environments to export, as (platform, environment), in lock order."""
    parts = [lock.for_platform(platform)] if platform else [
        lock.for_platform(p) for p in lock.all_platforms]
    found = [(part.platform, e) for part in parts for e in part.final().python
             if env is None or e.prefix == env]
    if not found:
        have = sorted({e.prefix for e in lock.final().python})
        what = f"no Python environment {env}" if env else "no Python environment"
        raise ExportError(f"the lock has {what} in its final image"
                          + (f" (it has {', '.join(have)})" if have else ""))
    return found


def file_name(env: str, platform: str, several_envs: bool, several_platforms: bool) -> str:
    """The NAME of ``pylock.NAME.toml`` (PEP 751: no dots), "" when one file is all."""
    words = []
    if several_envs:
        words.append(env.strip("/").replace("/", "-") or "root")
    if several_platforms:
        words.append(platform.replace("/", "-"))
    return "-".join(w.replace(".", "-") for w in words)


def marker(python: str, platform: str) -> str:
    """The ``environments`` marker of an image's Python and platform."""
    from relock.lock.platform import python_machine

    parts = []
    if python:
        parts.append(f"python_version == '{python}'")
    os_name, _, _ = platform.partition("/")
    if os_name == "linux":
        parts.append("sys_platform == 'linux'")
    machine = python_machine(platform)
    if machine:
        parts.append(f"platform_machine == '{machine}'")
    return " and ".join(parts)


def export(lock: Lock, index: PackageIndex, *, env: str | None = None,
           platform: str | None = None) -> list[Exported]:
    """Every chosen environment of ``lock`` as pylock text, files found on ``index``."""
    chosen = environments(lock, env, platform)
    several_envs = len({e.prefix for _, e in chosen}) > 1
    several_platforms = len({p for p, _ in chosen}) > 1
    out = []
    for plat, environment in chosen:
        part = lock.for_platform(plat).final()
        dists = [d for d in part.pip if d.env == environment.prefix and d.kind != "build"]
        text = document(environment, plat, dists, index)
        out.append(Exported(environment.prefix, plat,
                            file_name(environment.prefix, plat, several_envs, several_platforms),
                            text))
    return out


def document(environment: PythonEnv, platform: str, dists: Sequence[PipPackage],
             index: PackageIndex) -> str:
    """The pylock text of one environment's distributions."""
    import tomli_w
    from packaging.markers import Marker
    from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    packages = []
    for d in dists:
        files = _files(d, index)
        wheels = [PackageWheel(name=f.filename, url=f.url, hashes={"sha256": f.sha256})
                  for f in files if f.filename.endswith(".whl")]
        sdists = [f for f in files if not f.filename.endswith(".whl")]
        sdist = (PackageSdist(name=sdists[0].filename, url=sdists[0].url,
                              hashes={"sha256": sdists[0].sha256}) if sdists else None)
        requires = next((f.requires_python for f in files if f.requires_python), "")
        packages.append(Package(
            name=canonicalize_name(d.name), version=Version(d.version),
            requires_python=_specifier(requires), wheels=wheels or None, sdist=sdist))
    where = marker(environment.python, platform)
    lock = Pylock(
        lock_version=Version("1.0"),
        environments=[Marker(where)] if where else None,
        requires_python=SpecifierSet(f"=={environment.python}.*") if environment.python
        else None,
        created_by="relock", packages=packages,
        tool={"relock": {"env": environment.prefix, "platform": platform}})
    return tomli_w.dumps(lock.to_dict(), multiline_strings=False, indent=2)


def _specifier(text: str) -> SpecifierSet | None:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(text) if text else None
    except InvalidSpecifier:
        return None  # the index's own field, not the lock's: an odd one is left out


def _files(d: PipPackage, index: PackageIndex) -> list[IndexLink]:
    """The index's files of ``d`` that the lock's hashes name, one per hash, by file name."""
    wanted = {h.removeprefix("sha256:") for h in d.hashes}
    if not wanted:
        raise ExportError(f"{d.name} {d.version} in {d.env}: the lock has no file hashes for it "
                          "(frozen without the index?); re-freeze with the index reachable")
    found: dict[str, IndexLink] = {}
    for link in index.links(d.name):
        if link.sha256 in wanted and link.sha256 not in found:
            found[link.sha256] = link
    if not found:
        raise ExportError(f"{d.name} {d.version}: none of its locked files is on the "
                          "configured package index")
    return sorted(found.values(), key=lambda f: f.filename)
