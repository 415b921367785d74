"""Python environments and the distributions pip installed into them.

Read from files only: ``*.dist-info`` folders (METADATA, INSTALLER,
REQUESTED) under ``lib/python3*/site-packages`` or ``dist-packages``, and
``pyvenv.cfg``. Distributions that dpkg owns belong to APT and are left out.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import NamedTuple

from relock import bounds
from relock.image.rootfs import RootFS
from relock.inventory.apt import dpkg_owned_paths
from relock.lock.lockfile import PythonEnv

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
# Folder names, at any depth, that hold no Python prefix: version control,
# bytecode, other languages' packages, pip's download cache.
_SKIP_NAMES = frozenset(
    {"site-packages", "dist-packages", "node_modules", "__pycache__", ".git", ".hg", ".svn",
     ".npm", ".cargo", ".rustup"}
)
_SKIP_SUFFIXES = ("/.cache/pip",)


def _is_pydir(name: str) -> bool:
    """``python3`` or ``python3.N``: the folder under ``lib`` that holds a site folder."""
    return name == "python3" or (name.startswith("python3.") and name[8:].isdigit())


class Distribution(NamedTuple):
    """A distribution found in an environment's site folder."""

    name: str
    version: str
    env: str
    path: str
    installer: str
    requested: bool
    # Installed from a folder (``pip install .``, ``pip install -e .``): that folder, as
    # direct_url.json names it, and the sha256 of the RECORD pip wrote (what was built).
    local_dir: str = ""
    record_sha256: str = ""


def find_site_dirs(fs: RootFS) -> list[str]:
    """Every ``.../lib/python3*/{site,dist}-packages`` folder of the image.

    Every real folder is searched, however deep and whether hidden or not
    (``/srv/a/b/c/d/e/venv``, ``~/.pyenv/versions/3.12.1``), except those
    that never hold a Python prefix. Symlinks are not followed: on a
    merged-/usr system ``/lib`` is ``usr/lib``, found once.
    """
    found: list[str] = []
    stack = ["/"]
    while stack:
        folder = stack.pop()
        subdirs = fs.subdirs(folder) or []
        if posixpath.basename(folder) in ("lib", "lib64"):
            for name in fs.listdir(folder) or []:
                if _is_pydir(name):
                    for site in ("site-packages", "dist-packages"):
                        path = posixpath.join(folder, name, site)
                        if fs.is_dir(path):
                            found.append(path)
        for name in subdirs:
            child = posixpath.join(folder, name)
            if (child in _SKIP or name in _SKIP_NAMES or _is_pydir(name)
                    or child.endswith(_SKIP_SUFFIXES)):
                continue
            stack.append(child)
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
        dist_name, version = _name_and_version(meta)
        if not dist_name or not version:
            continue
        # One listing answers for INSTALLER and REQUESTED (an egg-info file has neither).
        inside = fs.listdir(path) or []
        installer = ""
        if "INSTALLER" in inside:
            installer = (fs.read_bytes(posixpath.join(path, "INSTALLER")) or b"").decode(
                "utf-8", "replace").strip()
        local_dir = record = ""
        if "direct_url.json" in inside:
            local_dir = _local_dir(fs.read_bytes(posixpath.join(path, "direct_url.json")))
        if local_dir and "RECORD" in inside:
            data = fs.read_bytes(posixpath.join(path, "RECORD")) or b""
            record = hashlib.sha256(data).hexdigest()
        out.append(
            Distribution(
                name=canonical_name(dist_name),
                version=version,
                env=env,
                path=path,
                installer=installer,
                requested="REQUESTED" in inside,
                local_dir=local_dir,
                record_sha256=record,
            )
        )
    return out


def _local_dir(data: bytes | None) -> str:
    """The folder a distribution was installed from, per its direct_url.json (PEP 610):
    a ``file://`` URL with ``dir_info``; "" for anything else (an archive, VCS, bad JSON)."""
    import json
    import urllib.parse

    if not data or len(data) > bounds.DIRECT_URL:
        return ""
    try:
        info = json.loads(data)
    except ValueError:
        return ""
    if not isinstance(info, dict) or not isinstance(info.get("dir_info"), dict):
        return ""
    url = info.get("url")
    if not isinstance(url, str) or not url.startswith("file://"):
        return ""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    return path if path.startswith("/") and "\x00" not in path else ""


def canonical_name(name: str) -> str:
    """A distribution's name normalised as PEP 503 defines it (``Foo.Bar_baz`` -> ``foo-bar-baz``).

    The same as ``packaging.utils.canonicalize_name``, whose import brings
    ``packaging.tags`` (``platform``, ``subprocess``) into every freeze.
    """
    return _RUNS.sub("-", name).lower()


_RUNS = re.compile(r"[-_.]+")


def _name_and_version(meta: bytes) -> tuple[str, str]:
    """``Name`` and ``Version`` from the header block of core metadata (RFC 822 style).

    Both are one-line fields; the first of each counts, as with the email
    parser, which is much slower to start for two fields.
    """
    fields: dict[bytes, bytes] = {}
    current = b""
    for line in meta.split(b"\n\n", 1)[0].splitlines():
        if line[:1] in (b" ", b"\t"):
            # A folded line continues the field before it (RFC 822): a version
            # folded over two lines is one value, and not a valid one.
            if current:
                fields[current] += b" " + line.strip()
            continue
        if len(fields) == 2:
            break  # both found, and the last of them is not folded on: the rest is not read
        key, sep, value = line.partition(b":")
        if not sep:
            current = b""
            continue
        key = key.strip().lower()
        current = b""
        if key in (b"name", b"version") and key not in fields:
            fields[key] = value.strip()
            current = key
    return (fields.get(b"name", b"").decode("utf-8", "replace"),
            fields.get(b"version", b"").decode("utf-8", "replace"))


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
