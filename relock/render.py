"""Dockerfile.in + lock -> a pinned Dockerfile and its support files.

The pinned Dockerfile stays as close to Dockerfile.in as a reviewer needs to
read the two side by side. Only these change:

* every ``FROM`` names its locked digest (``ref@sha256:...``);
* stages that run APT get the lock's support files (``COPY relock.d/ ...``)
  and ``ARG APT_CONFIG=...``, which points apt at the dated snapshot of the
  image's own sources (through apt's own deb822 ``Snapshot:`` field where the
  image's apt has it, else by rewriting the URIs; or the live sources,
  ``apt_mode="live"``) and pins every locked package to its exact version, so
  dependencies resolve the same way;
  names given to ``apt-get install`` get ``=version`` so that a missing
  version fails loudly;
* every ``pip install`` into a locked environment installs that environment's
  locked set from a requirements file with ``--require-hashes``.

Everything else (COPY, ENV, USER, CMD, heredocs, continuation lines,
comments) is kept byte for byte.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from relock.dockerfile import Dockerfile, Instruction, Stage
from relock.errors import RenderError, StaleLockError
from relock.lockfile import AptSource, Base, Lock, PipPackage, PythonEnv
from relock.shell import Word, commands, quote, replace, strip_assignments

SUPPORT_DIR = "relock.d"
IMAGE_DIR = "/var/lib/relock"
APT_CONFIG = f"{IMAGE_DIR}/apt/apt.conf"

# Where each distro's archive keeps its dated snapshots; the archive's name
# (the last part of the source URI: debian, debian-security, ubuntu) and the
# snapshot id are appended.
SNAPSHOT_URLS = {
    "debian": "https://snapshot.debian.org/archive",
    "ubuntu": "https://snapshot.ubuntu.com",
}

# One-line source options whose deb822 field has another name (sources.list(5)).
_ONE_LINE_OPTIONS = {"arch": "architectures", "lang": "languages", "target": "targets"}
_APT_ARG_OPTIONS = {"-o", "--option", "-c", "--config-file", "-t", "--target-release",
                    "--default-release", "-a", "--host-architecture"}
_PIP_DROP_WITH_ARG = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable"}
_PIP_DROP = {"-U", "--upgrade", "--force-reinstall", "--no-deps", "--require-hashes"}
_PIP_ARG_OPTIONS = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links",
                    "--target", "-t", "--prefix", "--root", "--platform", "--python-version",
                    "--implementation", "--abi", "--cache-dir", "--src", "--upgrade-strategy",
                    "--progress-bar", "--log", "--proxy", "--retries", "--timeout",
                    "--trusted-host", "--cert", "--client-cert", "--global-option",
                    "--config-settings", "-C", "--no-binary", "--only-binary", "--python",
                    "--exists-action", "--keyring-provider", "--report", "--root-user-action"}


@dataclass(frozen=True)
class RenderOptions:
    """How the pinned Dockerfile reaches APT packages."""

    apt_mode: str = "snapshot"  # or "live": the image's own sources, exact pins
    snapshot_url: str | None = None
    # "native": the deb822 Snapshot field; "rewrite": snapshot URIs; "auto": the
    # first where the image's apt supports it (see uses_native_snapshots).
    snapshot_style: str = "auto"
    force: bool = False
    lock_path: str = "LOCK"


@dataclass
class Rendered:
    """The pinned Dockerfile and the files it copies from ``relock.d/``."""

    dockerfile: str
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def render(df: Dockerfile, lock: Lock, options: RenderOptions | None = None) -> Rendered:
    """Render ``df`` pinned to ``lock``."""
    options = options or RenderOptions()
    if lock.input.sha256 and df.sha256 != lock.input.sha256 and not options.force:
        raise StaleLockError(
            f"{options.lock_path} was frozen from another {lock.input.dockerfile or df.path} "
            f"(sha256 {lock.input.sha256[:12]}, now {df.sha256[:12]}); re-freeze the image "
            "built from the current file, or pass --force"
        )
    out = Rendered(dockerfile="")
    envs = {e.prefix: e for e in lock.python}
    pip_by_env: dict[str, list[PipPackage]] = {}
    for p in lock.pip:
        pip_by_env.setdefault(p.env, []).append(p)
    apt_versions = _apt_versions(lock)

    lines = df.text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    pieces: list[str] = []
    cursor = 0
    stage_of = _stage_of_instruction(df)
    apt_stages = _apt_stages(df, stage_of)
    stage_env: dict[int, dict[str, str]] = {}
    used_pip_envs: set[str] = set()
    for n, ins in enumerate(df.instructions):
        pieces.append("".join(lines[cursor:ins.startline]))
        cursor = ins.endline + 1
        original = "".join(lines[ins.startline:ins.endline + 1])
        stage = stage_of[n]
        env = stage_env.setdefault(stage.index, _inherited_env(df, stage, stage_env))
        if ins.instruction == "FROM":
            pieces.append(_pin_from(original, stage, lock, options))
            if stage.index in apt_stages or _stage_has_pip(df, stage, stage_of):
                pieces.append(f"COPY {SUPPORT_DIR}/ {IMAGE_DIR}/\n")
            if stage.index in apt_stages:
                pieces.append(f"ARG APT_CONFIG={APT_CONFIG}\n")
            continue
        if ins.instruction == "ENV":
            env.update(_parse_env(ins.value, env))
        if ins.instruction != "RUN" or _is_exec_form(ins):
            pieces.append(original)
            continue
        # apt is pinned only in stages on the final image's base (_apt_stages).
        versions = apt_versions if stage.index in apt_stages else {}
        text, pip_used = _rewrite_run(original, env, envs, versions, df.path, ins)
        used_pip_envs |= pip_used
        pieces.append(text)
    pieces.append("".join(lines[cursor:]))

    body = "".join(pieces)
    out.dockerfile = _with_header(body, df.path, options.lock_path)
    if apt_stages:
        out.files.update(_apt_files(lock, options))
    for prefix in sorted(used_pip_envs):
        out.files[f"pip/{_slug(prefix)}.txt"] = requirements(pip_by_env.get(prefix, []),
                                                             envs[prefix])
    if not out.files:
        out.files["README"] = "relock support files (none needed for this Dockerfile)\n"
    return out


def _with_header(body: str, source: str, lock_path: str) -> str:
    header = (
        f"# Generated by relock from {source} and {lock_path}; do not edit.\n"
        f"# Remake it with: relock render -f {source} --lock {lock_path}\n"
    )
    # Parser directives (# syntax=, # escape=) must stay the first lines.
    lines = body.splitlines(keepends=True)
    i = 0
    while i < len(lines) and re.match(r"#\s*(syntax|escape|check)\s*=", lines[i], re.I):
        i += 1
    return "".join(lines[:i]) + header + "".join(lines[i:])


# -- FROM -------------------------------------------------------------------

def _pin_from(original: str, stage: Stage, lock: Lock, options: RenderOptions) -> str:
    if not stage.external:
        return original
    base = _base_for(stage, lock.base)
    if base is None:
        raise StaleLockError(
            f"{options.lock_path} has no base image for stage {stage.index} "
            f"(FROM {stage.ref}); re-freeze the image"
        )
    pinned = f"{stage.ref.split('@', 1)[0]}@{base.digest}" if base.digest else base.image_id
    words = original.split()
    # FROM [--platform=...] REF [AS name]: the reference is the first word
    # after FROM that is not a flag.
    ref_word = next(w for w in words[1:] if not w.startswith("--"))
    start = original.index(ref_word, original.index(words[0]) + len(words[0]))
    return original[:start] + pinned + original[start + len(ref_word):]


def _base_for(stage: Stage, bases: tuple[Base, ...]) -> Base | None:
    for b in bases:
        if b.stage == stage.index and b.ref == stage.ref:
            return b
    return next((b for b in bases if b.ref == stage.ref), None)


# -- stages -------------------------------------------------------------------

def _stage_of_instruction(df: Dockerfile) -> list[Stage]:
    out: list[Stage] = []
    current = df.stages[0]
    for n, _ins in enumerate(df.instructions):
        for s in df.stages:
            if s.instruction == n:
                current = s
        out.append(current)
    return out


def _apt_stages(df: Dockerfile, stage_of: list[Stage]) -> set[int]:
    """Stages that run apt and start from the final stage's base image.

    The lock describes the final image; a stage built on another base (another
    distro, say) is left to float rather than pointed at the wrong archive.
    """
    final_root = df.root(df.stages[-1]).ref.split("@")[0]
    out: set[int] = set()
    for n, ins in enumerate(df.instructions):
        if ins.instruction != "RUN":
            continue
        stage = stage_of[n]
        if df.root(stage).ref.split("@")[0] != final_root:
            continue
        for cmd in commands(_run_body(ins.content)):
            words = strip_assignments(cmd)
            if words and posixpath.basename(words[0].text) in ("apt-get", "apt", "aptitude"):
                out.add(stage.index)
    return out


def _stage_has_pip(df: Dockerfile, stage: Stage, stage_of: list[Stage]) -> bool:
    for n, ins in enumerate(df.instructions):
        if stage_of[n].index != stage.index or ins.instruction != "RUN":
            continue
        if any(_pip_call(strip_assignments(c)) for c in commands(_run_body(ins.content))):
            return True
    return False


def _inherited_env(df: Dockerfile, stage: Stage, done: dict[int, dict[str, str]]) -> dict[str, str]:
    by_name = {s.name: s for s in df.stages if s.name}
    if not stage.external and stage.ref in by_name:
        return dict(done.get(by_name[stage.ref].index, {}))
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def _parse_env(value: str, env: Mapping[str, str]) -> dict[str, str]:
    from relock.shell import words

    out: dict[str, str] = {}
    toks = [w.text for w in words(value)]
    if toks and "=" not in toks[0]:
        # ENV KEY value (legacy form): the rest of the line is the value.
        return {toks[0]: _expand(" ".join(toks[1:]), env)}
    for tok in toks:
        key, sep, val = tok.partition("=")
        if sep:
            out[key] = _expand(val, {**env, **out})
    return out


def _expand(value: str, env: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), value)


# -- RUN ----------------------------------------------------------------------

def _is_exec_form(ins: Instruction) -> bool:
    return ins.value.lstrip().startswith("[")


def _run_body(content: str) -> str:
    # Drop "RUN" and any --flags (RUN --mount=...); keep the offsets simple by
    # blanking them rather than cutting.
    m = re.match(r"\s*RUN((?:\s+--\S+)*)\s", content, re.I)
    return " " * m.end() + content[m.end():] if m else content


def _pip_call(cmd: list[Word]) -> tuple[str, int] | None:
    """(the executable, index of 'install') if ``cmd`` is a pip install."""
    if not cmd:
        return None
    exe = cmd[0].text
    base = posixpath.basename(exe)
    rest = 1
    if re.fullmatch(r"python(3(\.\d+)?)?", base):
        if len(cmd) > 2 and cmd[1].text == "-m" and cmd[2].text == "pip":
            rest = 3
        else:
            return None
    elif not re.fullmatch(r"pip(3(\.\d+)?)?", base):
        return None
    for i in range(rest, len(cmd)):
        if cmd[i].text == "install":
            return exe, i
        if not cmd[i].text.startswith("-"):
            return None
    return None


def _rewrite_run(original: str, env: dict[str, str], envs: Mapping[str, PythonEnv],
                 apt_versions: Mapping[str, str], path: str,
                 ins: Instruction) -> tuple[str, set[str]]:
    """Pin the apt and pip installs of one RUN; the new text and the pip envs it uses."""
    body = _run_body(original)
    edits: list[tuple[int, int, str]] = []
    pip_envs: set[str] = set()
    for cmd in commands(body):
        words = strip_assignments(cmd)
        if not words:
            continue
        if posixpath.basename(words[0].text) in ("apt-get", "apt"):
            edits += _pin_apt_install(words, apt_versions)
            continue
        call = _pip_call(words)
        if call is None:
            continue
        exe, at = call
        prefix = _pip_env(exe, words, env, envs, path, ins)
        if prefix is None:
            continue
        pip_envs.add(prefix)
        edits += _pin_pip_install(words, at, prefix)
    return replace(original, edits), pip_envs


def _pin_apt_install(words: list[Word], versions: Mapping[str, str]) -> list[tuple[int, int, str]]:
    texts = [w.text for w in words]
    if "install" not in texts:
        return []
    edits = []
    skip = False
    for w in words[texts.index("install") + 1:]:
        if skip:
            skip = False
            continue
        if w.text.startswith("-"):
            skip = w.text in _APT_ARG_OPTIONS
            continue
        name = re.split(r"[=/]", w.text, maxsplit=1)[0]
        version = versions.get(name) or versions.get(name.split(":")[0])
        if version is None or "*" in name or "?" in name:
            continue
        edits.append((w.start, w.end, quote(f"{name}={version}")))
    return edits


def _pip_env(exe: str, words: list[Word], env: Mapping[str, str],
             envs: Mapping[str, PythonEnv], path: str, ins: Instruction) -> str | None:
    texts = [w.text for w in words]
    for flag in ("--target", "-t", "--prefix", "--root"):
        if flag in texts or any(t.startswith(flag + "=") for t in texts):
            return None  # installs outside any environment the lock knows
    if "/" in exe:
        prefix = posixpath.dirname(posixpath.dirname(exe))
        if prefix in envs:
            return prefix
        if prefix in ("/usr", "/usr/local", ""):
            return _system_env(envs)
        raise RenderError(
            f"{path}:{ins.startline + 1}: `{exe}` installs into {prefix}, which the lock has "
            "no pip packages for; re-freeze the image"
        )
    venv = env.get("VIRTUAL_ENV")
    if venv and venv in envs:
        return venv
    for folder in env.get("PATH", "").split(":"):
        prefix = posixpath.dirname(folder.rstrip("/"))
        if folder.endswith("/bin") and prefix in envs and envs[prefix].venv:
            return prefix
    return _system_env(envs)


def _system_env(envs: Mapping[str, PythonEnv]) -> str | None:
    system = [p for p, e in envs.items() if not e.venv]
    if len(system) == 1:
        return system[0]
    if "/usr/local" in system:
        return "/usr/local"
    return None


def _pin_pip_install(words: list[Word], at: int, prefix: str) -> list[tuple[int, int, str]]:
    """Rewrite one pip install command as a single line installing the locked set."""
    kept = [w.text for w in words[:at]]
    options: list[str] = []
    drop_next = keep_next = False
    for w in words[at + 1:]:
        text = w.text
        if keep_next:
            keep_next = False
            options.append(text)
            continue
        if drop_next:
            drop_next = False
            continue
        option = text.split("=", 1)[0]
        if option in _PIP_DROP_WITH_ARG:
            drop_next = "=" not in text
        elif option in _PIP_DROP or not text.startswith("-"):
            continue  # requirements and upgrade flags: the lock says what to install
        else:
            options.append(text)
            keep_next = option in _PIP_ARG_OPTIONS and "=" not in text
    target = f"{IMAGE_DIR}/pip/{_slug(prefix)}.txt"
    line = " ".join(quote(t) for t in [*kept, "install", *options, "--require-hashes",
                                        "-r", target])
    return [(words[0].start, words[-1].end, line)]


# -- support files --------------------------------------------------------------

def _slug(prefix: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", prefix).strip("-") or "root"


def requirements(packages: list[PipPackage], env: PythonEnv) -> str:
    """A requirements file with hashes for one environment's locked set."""
    lines = [f"# relock: locked pip set of {env.prefix} (Python {env.python})\n"]
    for p in sorted(packages, key=lambda p: p.name):
        if not p.hashes:
            raise RenderError(
                f"{p.name}=={p.version} in {env.prefix} has no hashes in the lock; "
                "re-freeze without --no-index"
            )
        hashes = " ".join(f"--hash={h}" for h in p.hashes)
        lines.append(f"{p.name}=={p.version} {hashes}\n")
    return "".join(lines)


def _apt_versions(lock: Lock) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in lock.apt:
        out.setdefault(p.name, p.version)
        out[f"{p.name}:{p.arch}"] = p.version
    return out


def snapshot_uri(uri: str, snapshot: str, base_url: str) -> str:
    """Where ``uri``'s archive stood at ``snapshot`` on a snapshot service."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return f"{base_url.rstrip('/')}/{name}/{snapshot}/"


def _apt_files(lock: Lock, options: RenderOptions) -> dict[str, str]:
    if not lock.apt_sources:
        raise RenderError(f"{options.lock_path} records no APT sources to pin; re-freeze")
    base_url = ""
    if options.apt_mode == "snapshot":
        if not lock.snapshot:
            raise RenderError(
                f"{options.lock_path} has no snapshot time; re-freeze with --snapshot, or "
                "render with --apt-live"
            )
        base_url = options.snapshot_url or SNAPSHOT_URLS.get(lock.distro.id, "")
        if not base_url:
            raise RenderError(
                f"no snapshot service known for distro {lock.distro.id!r}; pass "
                "--apt-snapshot-url or --apt-live"
            )
    native = options.apt_mode == "snapshot" and uses_native_snapshots(lock, options)
    stanzas = []
    hosts: set[str] = set()
    for src in lock.apt_sources:
        if "deb" not in src.types:
            continue
        if native:
            stanzas.append(_deb822(src, src.uris, snapshot=lock.snapshot))
            hosts |= {urllib.parse.urlsplit(u).hostname or "" for u in src.uris}
        elif options.apt_mode == "snapshot":
            uris = tuple(snapshot_uri(u, lock.snapshot, base_url) for u in src.uris)
            stanzas.append(_deb822(src, uris))
        else:
            stanzas.append(_deb822(src, src.uris))
    # apt's own snapshot support maps each host to a snapshot server; say
    # which, so that any mirror the image names works, not only those apt knows.
    snapshot_hosts = "".join(
        f'Acquire::Snapshots::URI::Host::{host} "{base_url.rstrip("/")}/@PATH@/@SNAPSHOTID@/";\n'
        for host in sorted(hosts - {""})
    )
    conf = (
        "// relock: apt reads only these sources and pins; the image's own stay as they are.\n"
        f'Dir::Etc::SourceList "{IMAGE_DIR}/apt/sources.list";\n'
        f'Dir::Etc::SourceParts "{IMAGE_DIR}/apt/sources.list.d";\n'
        f'Dir::Etc::Preferences "{IMAGE_DIR}/apt/preferences";\n'
        # An empty folder of ours: the image's own preferences.d must not undo the pins.
        f'Dir::Etc::PreferencesParts "{IMAGE_DIR}/apt/preferences.d";\n'
        # Snapshots keep their old Valid-Until dates.
        'Acquire::Check-Valid-Until "false";\n'
        + snapshot_hosts
    )
    prefs = []
    seen: set[tuple[str, str]] = set()
    for p in lock.apt:
        if (p.name, p.version) in seen:
            continue
        seen.add((p.name, p.version))
        prefs.append(f"Package: {p.name}\nPin: version {p.version}\nPin-Priority: 1001\n")
    return {
        "apt/apt.conf": conf,
        "apt/sources.list": "# relock: see sources.list.d/relock.sources\n",
        "apt/sources.list.d/relock.sources": "\n".join(stanzas),
        "apt/preferences": "\n".join(prefs),
        "apt/preferences.d/relock.pref": "",
    }


def uses_native_snapshots(lock: Lock, options: RenderOptions) -> bool:
    """Whether the image's apt reads dated snapshots itself (deb822 ``Snapshot:``).

    apt 2.7 and later can (Debian 13, Ubuntu 23.10 on); it maps a source's host
    to ``<snapshot-url>/<path>/<id>/``, which is the snapshot services' layout
    when the source's path is the archive's name (``/debian``, ``/ubuntu``).
    Otherwise, and for older releases, relock rewrites the source URIs.
    """
    if options.snapshot_style != "auto":
        return options.snapshot_style == "native"
    version = tuple(int(x) for x in re.findall(r"\d+", lock.distro.version_id)[:2])
    supported = ((lock.distro.id == "debian" and version >= (13,))
                 or (lock.distro.id == "ubuntu" and version >= (23, 10)))
    single = all(
        len([p for p in urllib.parse.urlsplit(u).path.split("/") if p]) == 1
        for src in lock.apt_sources for u in src.uris
    )
    return supported and single


def _deb822(src: AptSource, uris: tuple[str, ...], snapshot: str = "") -> str:
    fields = [
        ("Types", " ".join(src.types)),
        ("URIs", " ".join(uris)),
        ("Suites", " ".join(src.suites)),
    ]
    if snapshot:
        fields.append(("Snapshot", snapshot))
    if src.components:
        fields.append(("Components", " ".join(src.components)))
    for key, value in sorted(src.options.items()):
        if snapshot and key == "snapshot":
            continue
        key = _ONE_LINE_OPTIONS.get(key, key)
        name = "-".join(part.capitalize() for part in key.split("-"))
        fields.append((name.replace("Uris", "URIs").replace("Pdiffs", "PDiffs"), value))
    return "".join(f"{k}: {v}\n" for k, v in fields)
