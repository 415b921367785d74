"""The plain downloads a template makes: the URLs its ``curl``, ``wget`` and ``ADD`` fetch.

Read from the template's words alone (never run): each URL with the build arguments,
``ARG`` and ``ENV`` defaults and BuildKit's platform arguments put in, and where its file
lands when the template says (``curl -o``/``-O``/``--output-dir``, ``wget -O``/``-P``/its
default name, ``> file``, the ``ADD`` destination, each relative to the ``WORKDIR`` and a
``cd`` of the same ``RUN``). ``relock.freeze.downloads`` locks them; render points an
``ADD`` of a locked URL at the view.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from relock.template.dockerfile import Dockerfile, Instruction, add_urls


@dataclass(frozen=True)
class PlainDownload:
    """One URL a template's instruction fetches, and where its file lands if known."""

    line: int  # 1-based
    instruction: str  # RUN or ADD
    url: str  # variables put in
    path: str  # absolute path in the image, "" when the template does not keep it
    stage: int  # 0-based index of its stage
    unresolved: str = ""  # a variable no ARG, ENV or build argument gives
    written: str = ""  # the URL as the template writes it


_URL = re.compile(r"https?://\S+")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_OPERATORS = {";", "&&", "||", "|", "&", "|&", "(", ")", ";;"}
# curl's and wget's short options that take a value (the value may follow in the word).
_CURL_VALUE = set("oHduxAemwKECrTXbcFUYyztQP")
_CURL_LONG_VALUE = {
    "--output", "--output-dir", "--header", "--data", "--data-raw", "--data-binary",
    "--user", "--proxy", "--retry", "--retry-delay", "--retry-max-time", "--max-time",
    "--connect-timeout", "--user-agent", "--cacert", "--capath", "--cert", "--key",
    "--write-out", "--config", "--range", "--request", "--cookie", "--cookie-jar", "--form",
    "--referer", "--limit-rate", "--max-filesize", "--continue-at", "--proto",
    "--proto-redir", "--resolve", "--connect-to", "--interface", "--dns-servers",
    "--tls-max", "--ciphers", "--url", "--create-file-mode", "--time-cond",
}
_WGET_VALUE = set("OPoaetTwUiBQlARDXIY")
_WGET_LONG_VALUE = {
    "--output-document", "--directory-prefix", "--output-file", "--append-output",
    "--tries", "--timeout", "--wait", "--user-agent", "--input-file", "--base", "--quota",
    "--level", "--accept", "--reject", "--domains", "--header", "--user", "--password",
    "--ca-certificate", "--ca-directory", "--certificate", "--private-key", "--execute",
}


def platform_args(platform: str) -> dict[str, str]:
    """The build arguments BuildKit gives every build for ``platform`` (``os/arch[/v]``)."""
    os_, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    values = {"PLATFORM": platform, "OS": os_, "ARCH": arch, "VARIANT": variant}
    return {f"{side}{k}": v for side in ("TARGET", "BUILD") for k, v in values.items()}


def plain_downloads(dockerfile: Dockerfile, platform: str = "linux/amd64"
                    ) -> list[PlainDownload]:
    """Each plain download of ``dockerfile`` built for ``platform``, in template order."""
    out: list[PlainDownload] = []
    stage_of = dockerfile.stage_of_instruction()
    starts = {s.instruction for s in dockerfile.stages}
    auto = platform_args(platform)
    meta: dict[str, str] = {}  # the ARGs before the first FROM
    scope: dict[str, str] = {}
    workdir = "/"
    first = min(starts) if starts else 0
    for n, ins in enumerate(dockerfile.instructions):
        if n in starts:
            scope, workdir = {}, "/"  # ARG and ENV are a stage's own
        stage = stage_of[n].index
        kind = ins.instruction
        if kind == "ARG":
            for word in _words(ins.value):
                name, sep, default = word.partition("=")
                given = dockerfile.build_args.get(name)
                if given is None:
                    given = _expand(default, scope)[0] if sep else meta.get(
                        name, auto.get(name, ""))
                (meta if n < first else scope)[name] = given
        elif kind == "ENV":
            scope.update(_env_pairs(ins.value, scope))
        elif kind == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, _expand(ins.value, scope)[0]))
        elif kind == "RUN":
            for url, path in run_fetches(ins.value, workdir):
                out.append(_one(ins, "RUN", url, path, stage, scope))
        elif kind == "ADD":
            out += [_one(ins, "ADD", url, path, stage, scope)
                    for url, path in _add_targets(ins, workdir, scope)]
    return out


def _one(ins: Instruction, kind: str, url: str, path: str, stage: int,
         scope: Mapping[str, str]) -> PlainDownload:
    expanded, missing = _expand(url, scope)
    where, _ = _expand(path, scope)
    return PlainDownload(ins.startline + 1, kind, expanded, where, stage, missing, url)


def _expand(text: str, scope: Mapping[str, str]) -> tuple[str, str]:
    """``text`` with ``$NAME`` and ``${NAME}`` put in; the first name not known."""
    missing: list[str] = []

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in scope:
            missing.append(name)
            return m.group(0)
        return scope[name]

    return _VAR.sub(value, text), missing[0] if missing else ""


def _words(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def _env_pairs(value: str, scope: Mapping[str, str]) -> dict[str, str]:
    words = _words(value)
    if len(words) >= 2 and "=" not in words[0]:  # ENV NAME value (the old form)
        return {words[0]: _expand(" ".join(words[1:]), scope)[0]}
    return {k: _expand(v, scope)[0] for k, sep, v in (w.partition("=") for w in words) if sep}


def _tokens(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote: the words as they stand
        return command.split()


def _commands(tokens: list[str]) -> Iterator[tuple[list[str], str]]:
    """Each simple command's words and the operator after it (``|`` pipes its output)."""
    words: list[str] = []
    for tok in tokens:
        if tok in _OPERATORS:
            yield words, tok
            words = []
        else:
            words.append(tok)
    yield words, ""


def run_fetches(command: str, workdir: str) -> list[tuple[str, str]]:
    """(URL, absolute path of the file or "") of each curl or wget URL of a shell command."""
    if command.lstrip().startswith("["):  # exec form: one program, its words in JSON
        try:
            words = json.loads(command)
        except ValueError:
            return []
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            return []
        command = shlex.join(words)
    cwd = workdir
    out: list[tuple[str, str]] = []
    tokens = _tokens(command)
    while tokens and tokens[0].startswith("--"):  # RUN's own flags (--mount=..., --network=...)
        tokens = tokens[1:]
    for words, _after in _commands(tokens):
        words, redirect = _redirect(words)
        while words and (("=" in words[0] and not words[0].startswith(("-", "=")))
                         or words[0] in ("sudo", "exec", "command", "env", "time")):
            words = words[1:]
        if not words:
            continue
        program = posixpath.basename(words[0])
        if program == "cd" and len(words) >= 2:
            cwd = posixpath.normpath(posixpath.join(cwd, words[1]))
            continue
        if program == "curl":
            found = _curl(words[1:], cwd)
        elif program == "wget":
            found = _wget(words[1:], cwd)
        else:
            continue
        if len(found) == 1 and not found[0][1] and redirect:
            found = [(found[0][0], _join(cwd, redirect))]
        # Output to stdout ("" or "-") is piped on or printed: no file in the image.
        out += [(url, "" if path == "-" else path) for url, path in found]
    return out


def _redirect(words: list[str]) -> tuple[list[str], str]:
    """The words without ``> FILE`` (or ``>FILE``), and that file."""
    kept, target, i = [], "", 0
    while i < len(words):
        w = words[i]
        if w in (">", ">>") and i + 1 < len(words):
            target, i = words[i + 1], i + 2
            continue
        if w.startswith(">") and len(w) > 1 and w[1] != ">":
            target, i = w[1:], i + 1
            continue
        kept.append(w)
        i += 1
    return kept, target


def _join(cwd: str, path: str) -> str:
    if path in ("", "-") or path.startswith("/dev/"):
        return ""
    return posixpath.normpath(posixpath.join(cwd, path))


def _basename(url: str) -> str:
    return posixpath.basename(urllib.parse.urlsplit(url).path)


def _options(words: list[str], short_value: set[str], long_value: set[str]
             ) -> Iterator[tuple[str, str]]:
    """(option, value) of each option word, ("", url) of each URL, in order."""
    i = 0
    while i < len(words):
        w = words[i]
        i += 1
        if w.startswith("--"):
            name, sep, value = w.partition("=")
            if not sep and name in long_value and i < len(words):
                value, i = words[i], i + 1
            yield name, value
        elif w.startswith("-") and len(w) > 1:
            for j, letter in enumerate(w[1:], 1):
                if letter in short_value:
                    value = w[j + 1:]
                    if not value and i < len(words):
                        value, i = words[i], i + 1
                    yield "-" + letter, value
                    break
                yield "-" + letter, ""
        elif _URL.match(w) or w.startswith("$"):  # a URL, or a variable that holds one
            yield "", w


def _curl(words: list[str], cwd: str) -> list[tuple[str, str]]:
    urls: list[str] = []
    outputs: list[str] = []  # a path, or "\0" for -O (the URL's own name)
    folder, remote_all = "", False
    for name, value in _options(words, _CURL_VALUE, _CURL_LONG_VALUE):
        if name == "" or name == "--url":
            urls.append(value)
        elif name in ("-o", "--output"):
            outputs.append(value)
        elif name in ("-O", "--remote-name"):
            outputs.append("\0")
        elif name == "--remote-name-all":
            remote_all = True
        elif name == "--output-dir":
            folder = value
    base = _join(cwd, folder) if folder else cwd
    found = []
    for k, url in enumerate(urls):
        out = outputs[k] if k < len(outputs) else ("\0" if remote_all else "")
        path = _join(base, _basename(url)) if out == "\0" else _join(base, out) if out else ""
        found.append((url, path))
    return found


def _wget(words: list[str], cwd: str) -> list[tuple[str, str]]:
    urls: list[str] = []
    document, folder = None, ""
    for name, value in _options(words, _WGET_VALUE, _WGET_LONG_VALUE):
        if name == "":
            urls.append(value)
        elif name in ("-O", "--output-document"):
            document = value
        elif name in ("-P", "--directory-prefix"):
            folder = value
    base = _join(cwd, folder) if folder else cwd
    if document is not None:  # every URL into one file (or standard output)
        path = "" if len(urls) != 1 else _join(cwd, document)
        return [(url, path) for url in urls]
    return [(url, _join(base, _basename(url)) if _basename(url) else "") for url in urls]


def _add_targets(ins: Instruction, workdir: str, scope: Mapping[str, str]
                 ) -> list[tuple[str, str]]:
    urls = [u for u in add_urls(ins) if u.startswith(("http://", "https://"))]
    words = [w for w in ins.value.split() if not w.startswith("--")]
    if not urls or len(words) < 2:
        return []
    dest = _expand(words[-1], scope)[0]
    into = dest.endswith("/") or len(words) > 2
    base = posixpath.normpath(posixpath.join(workdir, dest))
    return [(u, posixpath.join(base, _basename(u)) if into else base) for u in urls]
