"""Python environments and the distributions pip installed into them.

Read from files only: ``*.dist-info`` folders (METADATA, INSTALLER,
REQUESTED) under ``lib/python3*/site-packages`` or ``dist-packages``, and
``pyvenv.cfg``. Distributions that dpkg owns belong to APT and are left out.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser

from packaging.utils import canonicalize_name

from relock.apt import dpkg_owned_paths
from relock.lockfile import PythonEnv
from relock.rootfs import RootFS

# Folders that never hold a Python prefix; skipping them keeps the search fast.
_SKIP = frozenset(
    {
        "/proc", "/sys", "/dev", "/run", "/tmp", "/boot", "/etc", "/var/lib/dpkg",
        "/var/cache", "/var/log", "/var/lib/apt", "/usr/share", "/usr/include",
        "/usr/src", "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/lib", "/lib64",
        "/usr/libexec", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
        "/usr/lib/jvm", "/usr/lib/gcc", "/usr/lib/locale", "/usr/lib/firmware",
        "/usr/lib/modules", "/usr/lib/node_modules",
    }
)
_PYDIR = re.compile(r"python3(?:\.\d+)?$")
_MAX_DEPTH = 7


@dataclass(frozen=True)
class Distribution:
    """A distribution found in an environment's site folder."""

    name: str
    version: str
    env: str
    path: str
    installer: str
    requested: bool


def find_site_dirs(fs: RootFS) -> list[str]:
    """Every ``.../lib/python3*/{site,dist}-packages`` folder of the image."""
    found: list[str] = []
    stack: list[tuple[str, int]] = [("/", 0)]
    while stack:
        folder, depth = stack.pop()
        names = fs.listdir(folder) or []
        if posixpath.basename(folder) in ("lib", "lib64"):
            for name in names:
                if _PYDIR.match(name):
                    for site in ("site-packages", "dist-packages"):
                        path = posixpath.join(folder, name, site)
                        if fs.is_dir(path):
                            found.append(path)
        if depth >= _MAX_DEPTH:
            continue
        for name in names:
            child = posixpath.join(folder, name)
            if child in _SKIP or _PYDIR.match(name) or name in ("site-packages", "node_modules"):
                continue
            if name.startswith(".") and name not in (".venv", ".local"):
                continue
            # /lib -> usr/lib on merged-/usr systems: follow only the real folder.
            if fs.is_dir(child) and not fs.is_symlink(child):
                stack.append((child, depth + 1))
    return sorted(set(found))


def env_for_site(fs: RootFS, site: str) -> PythonEnv:
    """The environment a site folder belongs to: its prefix and Python version."""
    libdir = posixpath.dirname(site)  # .../lib/python3.13
    prefix = posixpath.dirname(posixpath.dirname(libdir))
    cfg = fs.read_bytes(posixpath.join(prefix, "pyvenv.cfg"))
    version = ""
    if cfg is not None:
        m = re.search(rb"^\s*version(?:_info)?\s*=\s*(\d+\.\d+)", cfg, re.MULTILINE)
        version = m.group(1).decode() if m else ""
    if not version:
        m2 = re.search(r"python(3\.\d+)$", libdir)
        if m2:
            version = m2.group(1)
    if not version:
        # Debian's /usr/lib/python3/dist-packages serves the one python3.X there is.
        versions = [n[6:] for n in fs.listdir(posixpath.join(prefix, "lib")) or []
                    if re.fullmatch(r"python3\.\d+", n)]
        version = max(versions, key=lambda v: int(v.split(".")[1]), default="")
    return PythonEnv(prefix=prefix or "/", python=version, site=site, venv=cfg is not None)


def distributions(fs: RootFS, site: str, env: str) -> list[Distribution]:
    """The distributions installed in ``site`` (dist-info and egg-info)."""
    out: list[Distribution] = []
    parser = BytesHeaderParser()
    for name in fs.listdir(site) or []:
        path = posixpath.join(site, name)
        if name.endswith(".dist-info"):
            meta = fs.read_bytes(posixpath.join(path, "METADATA"))
        elif name.endswith(".egg-info"):
            meta = fs.read_bytes(posixpath.join(path, "PKG-INFO")) or fs.read_bytes(path)
        else:
            continue
        if meta is None:
            continue
        # Only the header block: the description after it can be long.
        headers = parser.parsebytes(meta.split(b"\n\n", 1)[0])
        dist_name, version = headers.get("Name"), headers.get("Version")
        if not dist_name or not version:
            continue
        installer = (fs.read_bytes(posixpath.join(path, "INSTALLER")) or b"").decode().strip()
        out.append(
            Distribution(
                name=str(canonicalize_name(str(dist_name))),
                version=str(version).strip(),
                env=env,
                path=path,
                installer=installer,
                requested=fs.read_bytes(posixpath.join(path, "REQUESTED")) is not None,
            )
        )
    return out


def pip_installed(fs: RootFS) -> tuple[list[PythonEnv], list[Distribution]]:
    """Environments with pip-installed distributions, and those distributions.

    A distribution whose dist-info dpkg owns came with an APT package; so did
    anything in Debian's own ``/usr/lib/python3*/dist-packages`` that no
    installer claims.
    """
    owned = dpkg_owned_paths(fs, "-info")
    envs: list[PythonEnv] = []
    dists: list[Distribution] = []
    for site in find_site_dirs(fs):
        env = env_for_site(fs, site)
        mine = [
            d for d in distributions(fs, site, env.prefix)
            if d.path not in owned and not (_debian_site(site) and d.installer != "pip")
        ]
        if mine:
            envs.append(env)
            dists += mine
    return envs, dists


def _debian_site(site: str) -> bool:
    return re.fullmatch(r"/usr/lib/python3(\.\d+)?/dist-packages", site) is not None
