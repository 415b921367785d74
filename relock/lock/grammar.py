"""The grammar of every value a lock holds, checked when a lock is read.

A lock arrives in pull requests and is rarely read line by line, yet its
values end up in a Dockerfile, in apt's files and in pip's requirements. So
each value is parsed against a strict grammar on entry: a digest is 64 hex
digits, a Debian version obeys Debian policy, a URI has a known scheme and no
credentials, a path is absolute and has no control characters. Anything else
is refused with one line naming the value. docs/lockfile.md states the same
grammars; ``tests/lock/test_lockfile.py`` keeps the two in step.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from collections.abc import Callable
from typing import NamedTuple

from relock.lock.reference import DIGEST, PATH_COMPONENT, TAG

# Control characters (C0, DEL, C1), the line and paragraph separators that
# some tools treat as newlines, and the bidi marks and overrides that make
# text read differently from what it is ("Trojan Source").
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")

_HEX64 = "[0-9a-f]{64}"
_DEB_NAME = r"[a-z0-9][a-z0-9+.-]+"
_DEB_VERSION = r"(?:[0-9]+:)?[A-Za-z0-9][A-Za-z0-9.+~-]*"
_SUITE_CHARS = r"(?:[A-Za-z0-9._/+~-]|\$\(ARCH\))+"
_STAGE_NAME = r"[A-Za-z][A-Za-z0-9_.-]*"
# An image reference, of the parts relock.lock.reference checks.
_DOCKER_REF = (
    rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{PATH_COMPONENT}(?:/{PATH_COMPONENT})*"
    rf"(?::{TAG})?(?:@{DIGEST})?"
)
URI_SCHEMES = ("http", "https", "file", "copy", "mirror", "mirror+http", "mirror+https",
               "mirror+file", "tor+http", "tor+https")
# RFC 3986 characters minus quotes, backslash, whitespace, braces, '$' and '`':
# nothing that could end a quoted string in apt.conf or a shell word.
_URI_BODY = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+")


class Grammar(NamedTuple):
    """A named rule for one kind of value; ``check`` says what is wrong, or ''."""

    name: str
    text: str
    check: Callable[[str], str]


def _pattern(regex: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        return "" if compiled.fullmatch(value) else f"not {what}"

    return check


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        return "contains a control character or newline"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not UTF-8 text"
    return ""


def _text_first(check: Callable[[str], str]) -> Callable[[str], str]:
    """``check``, for a value that must first be text (no control characters, UTF-8)."""

    def checked(value: str) -> str:
        return _no_control(value) or check(value)

    return checked


def _debian_version(value: str) -> str:
    if not re.fullmatch(_DEB_VERSION, value) or value.endswith("-"):
        return "not a Debian version ([epoch:]upstream[-revision], policy 5.6.12)"
    upstream = value.split(":", 1)[-1]
    if "-" in upstream and not re.fullmatch(r"[A-Za-z0-9.+~]+", upstream.rsplit("-", 1)[1]):
        return "not a Debian version (bad revision)"
    return ""


def _pep440(value: str) -> str:
    from packaging.version import InvalidVersion, Version

    if value != value.strip() or any(c.isspace() for c in value):
        return "not a PEP 440 version (contains white space)"
    try:
        Version(value)
    except InvalidVersion:
        return "not a PEP 440 version"
    return ""


def _pep503(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", value):
        return "not a normalised (PEP 503) distribution name"
    return ""


@_text_first
def _abs_path(value: str) -> str:
    if not value.startswith("/") or value.startswith("//"):
        return "not an absolute path"
    if posixpath.normpath(value) != value:
        return "not a normalised path (no '.', '..', '//' or trailing '/')"
    return ""


def _relative_file(value: str) -> str:
    parts = value.split("/")
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return "not a relative path inside the archive (no leading '/', '.', '..' or '//')"
    if not all(re.fullmatch(r"[A-Za-z0-9._+~%:-]+", p) for p in parts):
        return "not a path of letters, digits and ._+~%:-"
    return ""


def _uri(value: str) -> str:
    scheme, sep, rest = value.partition(":")
    if not sep or scheme not in URI_SCHEMES:
        return f"not an APT URI (scheme must be one of {', '.join(URI_SCHEMES)})"
    return _url_shape(value, rest, "an APT URI", "white space, quotes or other unsafe characters",
                      "has credentials (user:password@); keep them in apt's auth.conf")


def _url_shape(value: str, body: str, what: str, unsafe: str, credentials: str,
               host: bool = False) -> str:
    """What is wrong with the URL ``value`` past its scheme (``body``), or ""."""
    if not _URI_BODY.fullmatch(body):
        return f"not {what} ({unsafe})"
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError as e:
        return f"not {what} ({e})"
    if host and not parts.hostname:
        return f"not {what} (no host)"
    if "@" in parts.netloc:
        return credentials
    return ""


def _download_url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https"):
        return "not an http:// or https:// URL"
    if len(value) > 2048:
        return "longer than 2048 characters"
    return _url_shape(value, rest, "a URL", "white space, quotes, $ or other unsafe characters",
                      "has credentials (user:password@)", host=True)


def _snapshot(value: str) -> str:
    from datetime import datetime

    if not re.fullmatch(r"[0-9]{8}T[0-9]{6}Z", value):
        return "not a snapshot id YYYYMMDDTHHMMSSZ"
    try:  # the fields by position: strptime's import and regex would cost more
        datetime(int(value[:4]), int(value[4:6]), int(value[6:8]),
                 int(value[9:11]), int(value[11:13]), int(value[13:15]))
    except ValueError:
        return "not a snapshot id YYYYMMDDTHHMMSSZ (no such date)"
    return ""


def _text(value: str) -> str:
    return _no_control(value)


@_text_first
def _build_arg_name(value: str) -> str:
    if not value or "=" in value or any(c.isspace() for c in value):
        return "not a build argument name (no '=' or white space)"
    return ""


@_text_first
def _option_value(value: str) -> str:
    if re.search(r"[\"'`\\\[\]{};#]", value):
        return "contains a character apt's files cannot hold (quotes, \\, [], {}, ;, #)"
    return ""


_GRAMMARS = [
    Grammar("sha256-digest", "`sha256:` and 64 lower-case hex digits",
            _pattern(f"sha256:{_HEX64}", "sha256: and 64 lower-case hex digits")),
    Grammar("sha256-hex", "64 lower-case hex digits",
            _pattern(_HEX64, "64 lower-case hex digits")),
    Grammar("image-ref", "an image reference `[host[:port]/]path[:tag][@sha256:hex]` "
            "(lower-case path components, as docker spells them)",
            _pattern(_DOCKER_REF, "an image reference")),
    Grammar("stage-name", "a letter, then letters, digits, `_`, `.` or `-`",
            _pattern(_STAGE_NAME, "a stage name")),
    Grammar("stage", "a stage name (`stage-name`) or a 0-based stage index",
            _pattern(rf"{_STAGE_NAME}|[0-9]+", "a stage name or index")),
    Grammar("platform", "`os/arch[/variant]`, lower-case letters, digits and `_`",
            _pattern(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?", "os/arch[/variant]")),
    Grammar("snapshot-id", "`YYYYMMDDTHHMMSSZ`, a real UTC date and time", _snapshot),
    Grammar("pip-kind", "one of `context`, `build`",
            _pattern("context|build", "context or build")),
    Grammar("snapshot-from", "one of `release-date`, `image-created`, `user`",
            _pattern("release-date|image-created|user", "release-date, image-created or user")),
    Grammar("text", "any text without control characters, newlines or bidi overrides",
            _text),
    Grammar("build-arg-name", "text without `=`, white space or control characters",
            _build_arg_name),
    Grammar("os-release-word", "letters, digits and `._~+-` (os-release(5) values)",
            _pattern(r"[A-Za-z0-9._~+-]+", "an os-release word")),
    Grammar("abs-path", "an absolute, normalised path (no `.`, `..`, `//` or trailing "
            "`/`) without control characters", _abs_path),
    Grammar("apt-type", "`deb` or `deb-src`", _pattern("deb|deb-src", "deb or deb-src")),
    Grammar("apt-uri", f"`scheme:rest` with scheme one of {', '.join(URI_SCHEMES)}; rest of "
            "RFC 3986 characters other than quotes, `\\`, `$`, braces and white space; no "
            "`user:password@`", _uri),
    Grammar("download-url", "an `http://` or `https://` URL with a host, at most 2048 "
            "characters of RFC 3986 other than quotes, `\\`, `$`, braces and white space; no "
            "`user:password@`", _download_url),
    Grammar("apt-suite", "letters, digits, `._/+~-` and the variable `$(ARCH)`",
            _pattern(_SUITE_CHARS, "a suite or component")),
    Grammar("apt-option-key", "a letter or digit, then letters, digits and `._-`, "
            "optionally ending in `+` or `-`",
            _pattern(r"[A-Za-z0-9][A-Za-z0-9._-]*[+-]?", "an APT option name")),
    Grammar("apt-option-value", "text without control characters, quotes, `\\`, `[]`, "
            "`{}`, `;` or `#`", _option_value),
    Grammar("debian-name", "a Debian package name (policy 5.6.1): at least two of "
            "`a-z0-9+.-`, starting with a letter or digit",
            _pattern(_DEB_NAME, "a Debian package name (policy 5.6.1)")),
    Grammar("debian-version", "a Debian version (policy 5.6.12): `[epoch:]upstream"
            "[-revision]`, epoch digits, upstream of letters, digits and `.+~-` starting "
            "with a letter or digit, revision of letters, digits and `.+~`", _debian_version),
    Grammar("debian-arch", "a Debian architecture: lower-case letters and digits, "
            "words joined by `-` (`amd64`, `all`, `musl-linux-arm64`)",
            _pattern(r"[a-z0-9]+(?:-[a-z0-9]+)*", "a Debian architecture")),
    Grammar("archive-path", "a relative path below the archive's URI (`pool/...`): "
            "segments of letters, digits and `._+~%:-`, no `.` or `..`", _relative_file),
    Grammar("python-version", "`major.minor`",
            _pattern(r"[0-9]+\.[0-9]+", "major.minor")),
    Grammar("pep503-name", "a normalised distribution name (PEP 503): lower-case letters "
            "and digits in words joined by `-`", _pep503),
    Grammar("pep440-version", "a version PEP 440 accepts, without white space", _pep440),
]

GRAMMARS: dict[str, Grammar] = {g.name: g for g in _GRAMMARS}


def problem(grammar: str, value: str) -> str:
    """What is wrong with ``value`` under ``grammar``, or '' if it is fine."""
    if not value:
        return "is empty"
    return GRAMMARS[grammar].check(value)


def escape_control(text: str) -> str:
    """``text`` with newlines, escape sequences and other control characters as escapes."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def show(value: str, limit: int = 60) -> str:
    """``value`` quoted for a one-line message: escapes shown, long values cut."""
    text = repr(value[:limit])
    return text + ("..." if len(value) > limit else "")
