"""Dockerfile template + lock -> the pinned Dockerfile.

The pinned Dockerfile means and layers exactly what the template does. Only
these things change:

* every ``FROM`` that names an image names its locked digest
  (``ref@sha256:...``), and so does a ``# syntax=`` line the lock pins the
  frontend of (``pinned_build_args`` pins one a ``BUILDKIT_SYNTAX`` build
  argument names);
* every ``RUN`` first points APT, pip and uv at relock's *locked view*
  (``relock.build.view``), a server on loopback that offers exactly the locked
  packages, each checked against the lock's sha256. The pointer lives in the
  RUN's own environment and in ``/dev/shm`` (a fresh tmpfs in every build
  step, never part of a layer), so nothing of relock's reaches the image and
  the installs stay as written, whatever their form: ``activate`` scripts,
  relative venv paths, requirements files, ``pip install -U pip``, scripts,
  ``uv pip``. A package that is not in the lock is not in the view, and the
  build fails naming it.

A RUN's ``type=cache`` mounts get an id of the lock's own, so that no cache an
unpinned build filled reaches a pinned one. docs/buildkit.md lists every
BuildKit construct and what render does with it.

Everything else (COPY, ENV, USER, comments, continuation lines) is kept byte
for byte.
"""

from __future__ import annotations

import json
import posixpath
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from shlex import quote

from relock.errors import RenderError, StaleLockError
from relock.lock.lockfile import Base, Lock
from relock.template.dockerfile import SYNTAX_ARG, Dockerfile, Instruction, Stage, add_urls
from relock.template.fetches import PlainDownload, plain_downloads

DEFAULT_VIEW_PORT = 7780
DEFAULT_VIEW_URL = f"http://127.0.0.1:{DEFAULT_VIEW_PORT}"
# A fresh tmpfs in every build step (docker, podman and BuildKit all mount one):
# what relock writes there is gone when the step ends and never reaches a layer.
SCRATCH = "/dev/shm/relock"
# Shells whose `-c` string the prefix below is valid in.
_POSIX_SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox"}
_VIEW_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/\-]*)?")


@dataclass(frozen=True)
class RenderOptions:
    """Where the build reaches the locked view, and how strict to be."""

    view_url: str = DEFAULT_VIEW_URL
    force: bool = False
    lock_path: str = "LOCK"
    # What the view serves, in short (view_id): part of every RUN's text, so
    # that the engine's build cache never answers one lock's RUN with a layer
    # built from another lock's packages.
    view_id: str = ""
    # A reproducible build (relock build --reproducible): this SOURCE_DATE_EPOCH in
    # every RUN, and what apt and dpkg write of the moment kept out of the image.
    source_date_epoch: int | None = None


@dataclass(frozen=True)
class Rendered:
    """The pinned Dockerfile and what the user should hear about it."""

    dockerfile: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def check_fresh(df: Dockerfile, lock: Lock, options: RenderOptions) -> None:
    """Refuse a lock frozen from another version of the template (unless forced)."""
    if lock.input.sha256 and df.sha256 != lock.input.sha256 and not options.force:
        raise StaleLockError(
            f"{options.lock_path} was frozen from another {lock.input.dockerfile or df.path} "
            f"(sha256 {lock.input.sha256[:12]}, now {df.sha256[:12]}); re-freeze the image "
            "built from the current file, or pass --force"
        )


def render(df: Dockerfile, lock: Lock, options: RenderOptions | None = None) -> Rendered:
    """Render ``df`` pinned to ``lock``."""
    options = options or RenderOptions()
    check_fresh(df, lock, options)
    served = options.view_id or view_id(lock)
    prefix = view_prefix(options.view_url, served, per_arch=lock.multi,
                         source_date_epoch=options.source_date_epoch)
    escape = escape_char(df.text)
    notes: list[str] = []
    lines = df.text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    _pin_syntax(df, lock, lines, options)
    pieces: list[str] = []
    cursor = 0
    stage_of = df.stage_of_instruction()
    shell_of: dict[int, list[str]] = {}
    adds: dict[int, list[PlainDownload]] = {}
    for d in plain_downloads(df, lock.platform or "linux/amd64"):
        if d.instruction == "ADD":
            adds.setdefault(d.line, []).append(d)
    for n, ins in enumerate(df.instructions):
        pieces.append("".join(lines[cursor:ins.startline]))
        cursor = ins.endline + 1
        original = "".join(lines[ins.startline:ins.endline + 1])
        stage = stage_of[n]
        if ins.instruction == "FROM":
            pieces.append(_pin_from(original, stage, lock, options))
            shell_of[stage.index] = _inherited_shell(df, stage, shell_of)
            continue
        if ins.instruction == "SHELL":
            shell_of[stage.index] = _shell_words(ins, df.path)
        if ins.instruction == "ADD":
            original, more = _pin_add(original, ins, adds.get(ins.startline + 1, []), lock,
                                      options.view_url, df.path)
            notes += more
        if ins.instruction != "RUN":
            pieces.append(original)
            continue
        _check_shell(shell_of.get(stage.index, ["/bin/sh", "-c"]), ins, df.path)
        pieces.append(_prefix_run(original, ins, prefix, df.path, served, escape))
    pieces.append("".join(lines[cursor:]))
    return Rendered(dockerfile=_with_header("".join(pieces), df.path, options.lock_path),
                    notes=tuple(notes))


def _pin_add(original: str, ins: Instruction, found: list[PlainDownload], lock: Lock,
             view_url: str, path: str) -> tuple[str, list[str]]:
    """An ``ADD`` of a URL the lock holds reads it from the view (the engine fetches an
    ``ADD``'s URL itself, outside every RUN's proxy): the same name, the locked bytes. A
    line for each URL, locked or not."""
    locked = {d.url: d for d in lock.download}
    notes = []
    by_word = {d.written: d for d in found}
    for url in add_urls(ins):
        d = by_word.get(url)
        entry = locked.get(d.url) if d is not None else None
        where = f"{_comment(path)}:{ins.startline + 1}: ADD {_comment(url)[:200]}"
        if entry is None:
            notes.append(f"{where} is not in the lock: the engine fetches it itself, so the "
                         "pinned build reaches that host (an offline host cannot build it); "
                         "re-freeze an image built from this template to lock it, or put the "
                         "file in the build context and COPY it")
            continue
        name = posixpath.basename(urllib.parse.urlsplit(entry.url).path) or "download"
        served = (f"{view_url.rstrip('/')}/relock/download/{entry.sha256}/"
                  f"{urllib.parse.quote(name)}")
        original = re.sub(rf"(?<=\s){re.escape(url)}(?=\s)", served.replace("\\", "\\\\"),
                          original, count=1)
        notes.append(f"{where}: from the locked view (sha256 {entry.sha256[:16]}...)")
    return original, notes


def view_id(lock: Lock) -> str:
    """A short digest of what the locked view of ``lock`` serves (its packages)."""
    import hashlib

    h = hashlib.sha256()
    for a in sorted(lock.apt, key=lambda p: (p.name, p.arch, p.version, p.sha256)):
        h.update(f"apt {a.name} {a.version} {a.arch} {a.sha256}\n".encode())
    for p in sorted(lock.pip, key=lambda p: (p.name, p.version)):
        h.update(f"pip {p.name} {p.version} {' '.join(sorted(p.hashes))}\n".encode())
    for d in sorted(lock.download, key=lambda d: d.url):  # none: the digest as before
        h.update(f"download {d.url} {d.sha256}\n".encode())
    return h.hexdigest()[:16]


def view_prefix(view_url: str, served: str = "", per_arch: bool = False,
                source_date_epoch: int | None = None) -> str:
    """The shell words that point one RUN's APT, pip and uv at the locked view.

    ``served`` (a ``view_id``) names what the view serves. With ``per_arch``
    (a lock of several platforms), APT is pointed at the view's repository
    of the architecture dpkg reports in the build, which holds that
    platform's part only. With ``source_date_epoch`` (a reproducible build) the RUN
    has ``SOURCE_DATE_EPOCH`` (Python then compiles ``.pyc`` files checked by hash,
    not by the source's mtime), apt's and dpkg's logs go to relock's scratch folder, not
    the image, and after each dpkg run ldconfig's aux-cache (the host's inode numbers) is
    removed and update-alternatives' new log lines are dated the snapshot time.
    """
    if not _VIEW_URL.fullmatch(view_url):
        raise RenderError(f"--view-url {view_url!r} is not an http(s) URL")
    if not re.fullmatch(r"[0-9a-f]*", served):
        raise RenderError(f"view id {served!r} is not hexadecimal")
    url = view_url.rstrip("/")
    host = urllib.parse.urlsplit(url).hostname or "127.0.0.1"
    apt_conf = (f'Dir::Etc::SourceList "{SCRATCH}/sources.list"; '
                f'Dir::Etc::SourceParts "{SCRATCH}/parts"; '
                f'Acquire::http::Proxy::{host} "DIRECT";')
    scratch = f"{SCRATCH}/parts"
    epoch = hook = ""
    if source_date_epoch is not None:
        if not isinstance(source_date_epoch, int) or source_date_epoch < 0:
            raise RenderError(f"SOURCE_DATE_EPOCH {source_date_epoch!r} is not a time")
        scratch += f" {SCRATCH}/log"
        apt_conf += (f' Dir::Log "{SCRATCH}/log"; DPkg::Options:: "--log={SCRATCH}/dpkg.log";'
                     f' DPkg::Post-Invoke:: "sh {SCRATCH}/post-invoke";')
        epoch = f" SOURCE_DATE_EPOCH={source_date_epoch}"
        hook = f" && echo {quote(_post_invoke(source_date_epoch))} >{SCRATCH}/post-invoke"
    index = f"{url}/pypi/simple/"
    if per_arch:
        # The URL is checked above: nothing in it that double quotes expand.
        source = (f'"deb [trusted=yes] {url}/apt/'
                  '$(dpkg --print-architecture 2>/dev/null || echo none)/ ./"')
    else:
        source = quote(f"deb [trusted=yes] {url}/apt/ ./")
    ca = f"{SCRATCH}/ca.pem"
    # The view's certificate (never its key), fetched by APT's own helper (in every
    # Debian image) onto the step's /dev/shm: no layer keeps it. Without it, https
    # fails in the step and the view names the host.
    fetch = (f" && {{ APT_CONFIG={SCRATCH}/apt.conf {APT_HELPER} -o APT::Sandbox::User=root"
             f" download-file {url}/relock/ca.pem {ca} >/dev/null 2>&1 || :; }}")
    proxies = " ".join(f"{v}={url}" for v in _PROXY_VARS)
    trust = " ".join(f"{v}={ca}" for v in _CA_VARS)
    return (
        f"mkdir -p {scratch}"
        f" && echo {quote(apt_conf)} >{SCRATCH}/apt.conf"
        f" && echo {source} >{SCRATCH}/sources.list{hook}{fetch}"
        f" && export RELOCK_VIEW={served or '-'} APT_CONFIG={SCRATCH}/apt.conf"
        f" PIP_INDEX_URL={index}"
        f" PIP_EXTRA_INDEX_URL= PIP_PROXY={url} PIP_DISABLE_PIP_VERSION_CHECK=1"
        f" UV_INDEX_URL={index} {proxies} no_proxy= NO_PROXY= {trust}"
        f"{epoch}"
        f"{_PREFIX_END}"
    )


APT_HELPER = "/usr/lib/apt/apt-helper"
# Every tool's proxy settings: each RUN reaches the view for http and https alike.
_PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
               "ALL_PROXY")
# Every tool's bundle of trusted authorities (OpenSSL's and uv's, pip's, requests',
# curl's, git's, Node's): the view's authority only, so https reaches nothing else.
# (uv 0.13, the tests', reads SSL_CERT_FILE by itself and calls UV_NATIVE_TLS
# deprecated; a uv that needs it takes it from the template.)
_CA_VARS = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
            "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS")


# update-alternatives logs each change with the moment (local time) it ran.
ALTERNATIVES_LOG = "/var/log/alternatives.log"


def _post_invoke(source_date_epoch: int) -> str:
    """The shell run after each dpkg run of a reproducible build: ldconfig's aux-cache (the
    host's inode numbers) removed, and each line update-alternatives logged after the
    lock's snapshot time dated that time instead (the lines the base image brought, older,
    kept as they are). awk is a required package of Debian; the file keeps its inode."""
    import time

    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(source_date_epoch))
    log = ALTERNATIVES_LOG
    program = ('$1 == "update-alternatives" && ($2 " " substr($3, 1, 8)) > t '
               '{ $0 = "update-alternatives " t ":" substr($0, length($1 " " $2 " " $3) + 1) }'
               ' { print }')
    return (f"rm -f /var/cache/ldconfig/aux-cache; if [ -f {log} ]; then "
            f"awk -v t={quote(when)} {quote(program)} {log} >{SCRATCH}/alternatives.log"
            f" && cat {SCRATCH}/alternatives.log >{log}; fi")


# How the view prefix ends; the RUN's own command follows.
_PREFIX_END = " || exit 1;"


def template_command(command: str) -> str:
    """The template's own command of a RUN command ``view_prefix`` was put before (as
    an engine echoes it in a build's log); any other command as it is."""
    # BuildKit echoes a RUN's --mount flags before its command, the prefix after them.
    start = command.find(f"mkdir -p {SCRATCH}/")
    if start >= 0 and _PREFIX_END in command[start:]:
        return command[:start] + command[start:].split(_PREFIX_END, 1)[1].strip()
    return command


def _with_header(body: str, source: str, lock_path: str) -> str:
    header = (
        f"# Generated by relock from {_comment(source)} and {_comment(lock_path)}; "
        "do not edit.\n"
        "# Each RUN reaches only the lock's packages, served by `relock build` (or\n"
        "# `relock serve`) on loopback: build it with host networking.\n"
    )
    # Parser directives (# syntax=, # escape=) must stay the first lines.
    lines = body.splitlines(keepends=True)
    i = 0
    while i < len(lines) and re.match(r"\ufeff?#\s*(syntax|escape|check)\s*=", lines[i], re.I):
        i += 1
    return "".join(lines[:i]) + header + "".join(lines[i:])


def _comment(text: str) -> str:
    """``text`` made safe for one comment line."""
    return re.sub(r"[\x00-\x1f\x7f]", "?", text)


# -- the frontend -------------------------------------------------------------

def _pin_syntax(df: Dockerfile, lock: Lock, lines: list[str], options: RenderOptions) -> None:
    """Pin the ``# syntax=`` line of ``lines`` (the template's) to the lock's frontend.

    A lock without a frontend leaves the line alone; one whose frontend the template does
    not name the same way is a ``StaleLockError`` (even with ``--force``: the lock cannot
    pin another frontend than it recorded).
    """
    frontend = lock.frontend
    if frontend is None:
        return
    redo = "re-freeze the image built from this template"
    if frontend.build_arg:
        given = df.build_args.get(SYNTAX_ARG, "").strip()
        if given != frontend.ref:
            now = f"--build-arg {SYNTAX_ARG}={given}" if given else f"no {SYNTAX_ARG}"
            raise StaleLockError(
                f"{options.lock_path} pins the frontend {SYNTAX_ARG}={frontend.ref} names, "
                f"but this build has {now}; {redo}")
        return  # pinned_build_args pins it
    syntax = df.syntax
    if SYNTAX_ARG in df.build_args:
        raise StaleLockError(
            f"{options.lock_path} pins the frontend of {df.path}'s '# syntax=' line "
            f"({frontend.ref}), but --build-arg {SYNTAX_ARG} names another; {redo}")
    if syntax is None:
        raise StaleLockError(
            f"{options.lock_path} pins the frontend {frontend.ref} of a '# syntax=' line, "
            f"but {df.path} has none; {redo}")
    if syntax.ref != frontend.ref:
        raise StaleLockError(
            f"{df.path}:{syntax.line + 1}: '# syntax={_comment(syntax.ref)}' names another "
            f"frontend than {options.lock_path} pins ({frontend.ref}); {redo}")
    line = lines[syntax.line]
    lines[syntax.line] = (line[:syntax.start] + frontend.pinned
                          + line[syntax.start + len(syntax.ref):])


def pinned_build_args(lock: Lock, build_args: Mapping[str, str]) -> dict[str, str]:
    """``build_args`` with the frontend ``BUILDKIT_SYNTAX`` names pinned, where the lock
    recorded it from that argument (``render`` checks it names the lock's)."""
    out = dict(build_args)
    frontend = lock.frontend
    if frontend is not None and frontend.build_arg and \
            out.get(SYNTAX_ARG, "").strip() == frontend.ref:
        out[SYNTAX_ARG] = frontend.pinned
    return out


# -- FROM -------------------------------------------------------------------

def _pin_from(original: str, stage: Stage, lock: Lock, options: RenderOptions) -> str:
    if not stage.external:
        return original
    base = base_for(stage, lock.base)
    if base is None:
        raise StaleLockError(
            f"{options.lock_path} has no base image for stage {stage.index} "
            f"(FROM {stage.ref}); re-freeze the image"
        )
    pinned = base.pinned  # base_for found it by the stage's reference
    words = original.split()
    # FROM [--platform=...] REF [AS name]: the reference is the first word
    # after FROM that is not a flag.
    ref_word = next(w for w in words[1:] if not w.startswith("--"))
    start = original.index(ref_word, original.index(words[0]) + len(words[0]))
    return original[:start] + pinned + original[start + len(ref_word):]


def base_for(stage: Stage, bases: tuple[Base, ...]) -> Base | None:
    """The lock's base entry for ``stage``."""
    for b in bases:
        if b.stage == stage.index and b.ref == stage.ref:
            return b
    return next((b for b in bases if b.ref == stage.ref), None)


# -- stages -------------------------------------------------------------------

def _inherited_shell(df: Dockerfile, stage: Stage,
                     done: Mapping[int, list[str]]) -> list[str]:
    by_name = {s.name: s for s in df.stages if s.name}
    if not stage.external and stage.ref in by_name:
        return list(done.get(by_name[stage.ref].index, ["/bin/sh", "-c"]))
    return ["/bin/sh", "-c"]


def _shell_words(ins: Instruction, path: str) -> list[str]:
    try:
        words = json.loads(ins.value)
    except ValueError:
        words = None
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise RenderError(f"{path}:{ins.startline + 1}: SHELL must be a JSON array of strings")
    return words


def _check_shell(shell: list[str], ins: Instruction, path: str) -> None:
    names = [w.rsplit("/", 1)[-1] for w in shell[:2]]
    exe = names[1] if names[0] == "env" and len(names) > 1 else names[0]
    if exe not in _POSIX_SHELLS:
        raise RenderError(
            f"{path}:{ins.startline + 1}: RUN runs through the shell {shell[0]!r}; relock can "
            "point only POSIX shells (sh, bash, ...) at the locked view"
        )


# -- RUN ----------------------------------------------------------------------

# One heredoc word, the whole command (BuildKit then runs its body as the script).
_ONE_HEREDOC = re.compile(r"\d*<<-?[ \t]*([\"']?)[A-Za-z_][A-Za-z0-9_]*\1")


def escape_char(text: str) -> str:
    """The template's escape character: ``\\``, or what its ``# escape=`` directive says."""
    for line in text.removeprefix("\ufeff").splitlines():
        m = re.fullmatch(r"#\s*([A-Za-z]+)\s*=\s*(\S*)\s*", line)
        if m is None:
            break
        if m.group(1).lower() == "escape" and m.group(2) in ("`", "\\"):
            return m.group(2)
    return "\\"


def _gap(text: str, at: int, escape: str) -> int:
    """Where the next word starts: past blanks, line continuations, and the empty and
    comment lines Docker skips inside continuation lines."""
    cont = re.compile(rf"[ \t]*{re.escape(escape)}[ \t]*\r?\n(?:[ \t]*(?:#[^\n]*)?\r?\n)*")
    while True:
        m = cont.match(text, at)
        if m is not None:
            at = m.end()
            continue
        m = re.compile(r"[ \t]+").match(text, at)
        if m is None:
            return at
        at = m.end()


def _word_end(text: str, at: int, escape: str) -> int:
    """The end of the flag word that starts at ``at`` (quotes may hold blanks)."""
    quote = ""
    while at < len(text):
        c = text[at]
        if c in "\r\n" or (c == escape and re.match(r"[ \t]*\r?\n", text[at + 1:])):
            break
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c in " \t":
            break
        at += 1
    return at


def split_run(original: str, escape: str = "\\") -> tuple[str, list[str], str] | None:
    """``original`` RUN as (its text up to where the command starts, the flags in it,
    the command with what follows): flags may stand on continuation lines of their own."""
    m = re.match(r"\s*RUN(?=[ \t]|" + re.escape(escape) + ")", original, re.I)
    if m is None:
        return None
    at, flags = m.end(), []
    while True:
        start = _gap(original, at, escape)
        if start == at or not original.startswith("--", start):
            break
        at = _word_end(original, start, escape)
        flags.append(original[start:at])
    if start == at or start >= len(original) or original[start] in "\r\n":
        return None
    return original[:start], flags, original[start:]


def _prefix_run(original: str, ins: Instruction, prefix: str, path: str,
                served: str = "", escape: str = "\\") -> str:
    """``original`` RUN with the view prefix before its command, and its cache mounts
    made the pinned build's own."""
    parts = split_run(original, escape)
    if parts is None:
        raise RenderError(f"{path}:{ins.startline + 1}: cannot read this RUN instruction")
    head, flags, rest = parts
    for flag in flags:
        pinned = _pinned_mount(flag, served, ins, path)
        if pinned != flag:
            head = head.replace(flag, pinned, 1)
    if rest.startswith("["):
        return head + prefix + " exec " + _exec_words(rest, ins, path) + "\n"
    first, nl, script = rest.partition("\n")
    if _ONE_HEREDOC.fullmatch(first.rstrip()):
        # RUN <<EOT: BuildKit runs the here-document's body as the script, through
        # the shell; the prefix is its first line. A body that starts with #! is
        # run as a file by that interpreter: the prefix can be its second line if
        # the interpreter is a POSIX shell, else the view cannot reach it.
        if script.startswith("#!"):
            bang, nl2, body = script.partition("\n")
            if _shebang_shell(bang) is None:
                raise RenderError(
                    f"{path}:{ins.startline + 1}: a RUN here-document run by its own "
                    f"interpreter ({bang.strip()}) cannot be pointed at the locked view; "
                    f"name the interpreter after the here-document instead "
                    f"(RUN <<EOT {bang[2:].strip() or 'python3'}), which relock can point"
                )
            return head + first + nl + bang + nl2 + prefix + "\n" + body
        return head + first + nl + prefix + "\n" + script
    # Any other command, here-documents in it or not (RUN <<EOT bash, cat <<EOF >f):
    # the shell reads the first line, so the prefix goes before it.
    return head + prefix + " " + rest


def _shebang_shell(bang: str) -> str | None:
    """The POSIX shell a ``#!`` line names, if it names one."""
    words = bang[2:].split()
    if words and words[0].rsplit("/", 1)[-1] == "env":
        words = words[1:]
    if not words:
        return None
    name = words[0].rsplit("/", 1)[-1]
    return name if name in _POSIX_SHELLS else None


def _pinned_mount(flag: str, served: str, ins: Instruction, path: str) -> str:
    """A ``--mount`` flag of a pinned build: a cache mount gets an id of the lock's own.

    A cache an earlier (unpinned) build filled would hand a pinned build packages,
    lists and wheels the lock never saw: APT's lists and archives, pip's and uv's
    caches, any other. ``id=relock-<view id>-<its id or target>`` is a cache only
    pinned builds of this very lock fill, from the locked view; bind, secret, ssh
    and tmpfs mounts stay as written.
    """
    if not flag.lower().startswith("--mount="):
        return flag
    value = flag[len("--mount="):]
    if any(q in value for q in "\"'"):
        if "cache" in value.lower():
            raise RenderError(
                f"{path}:{ins.startline + 1}: cannot read the quoted {flag}; write the cache "
                "mount without quotes (relock gives pinned builds a cache of their own)")
        return flag
    fields = value.split(",")
    keys = [f.partition("=")[0].strip().lower() for f in fields]
    values = {k: f.partition("=")[2] for k, f in zip(keys, fields, strict=True)}
    if values.get("type", "bind").lower() != "cache":
        return flag
    target = values.get("target") or values.get("dst") or values.get("destination") or ""
    own = f"id=relock-{served or '-'}-{values.get('id') or target}"
    if "id" in keys:
        fields[keys.index("id")] = own
    else:
        fields.append(own)
    return flag[:len("--mount=")] + ",".join(fields)


def _exec_words(body: str, ins: Instruction, path: str) -> str:
    try:
        words = json.loads(body)
    except ValueError:
        words = None
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise RenderError(f"{path}:{ins.startline + 1}: RUN [...] must be a JSON array of strings")
    return " ".join(quote(w) for w in words)
