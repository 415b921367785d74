"""Every limit on what relock reads from outside, in one place ([limits.md](../docs/limits.md)).

A lock, a template, a store, a registry, an APT archive, a package index and
an image are input that relock does not control: each read of one is
bounded here, by size, count, depth or pages, and past a limit it stops with
one line that names the limit and the source (``LimitError``, exit 2),
before anything is written. docs/limits.md lists each limit, its value and
what happens past it; ``tests/test_bounds.py`` holds that page to this module.

The helpers read within the limits: ``load_json`` (no nesting deeper than
``JSON_DEPTH``, never a RecursionError), ``decompress`` (xz, gzip or lz4, at
most so many bytes out: a bomb stops at the limit, not at the end of memory)
and ``over`` (the one wording of a limit passed).
"""

from __future__ import annotations

import json
from typing import Any

from relock.errors import LimitError

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

# -- files a user names ------------------------------------------------------------
LOCK_FILE = 64 * MiB  # a lock file (a lock is a few MiB at most)
TEMPLATE = 16 * MiB  # a Dockerfile.in
KEYRING = 8 * MiB  # a keyring file a lock's Signed-By names on this machine

# -- JSON from any source ----------------------------------------------------------
JSON_DEPTH = 64  # nesting of arrays and objects (an OCI manifest needs 4)

# -- registries and stores ---------------------------------------------------------
MANIFEST = 4 * MiB  # a manifest, an image index, a referrers page (the OCI spec's size)
CONFIG = 16 * MiB  # an image config
STORE_INDEX = 16 * MiB  # a folder store's index.json (some 300 bytes a tag)
STORE_LAYOUT = 4 * KiB  # a folder store's oci-layout file
TOKEN_ANSWER = 1 * MiB  # a registry token service's answer (a token is a few KiB)
TAG_PAGE = 16 * MiB  # one page of a registry's tag list
TAG_PAGES = 1000  # pages of a tag list followed (its Link headers)
REFERRER_PAGES = 16  # pages of a referrers answer followed
REFERRERS = 10_000  # referrers of one image
ERROR_BODY = 64 * KiB  # the body of a registry's error answer, read for its message
ANSWER = 1 * MiB  # any other answer read whole (an upload's, a HEAD's)
REDIRECTS = 10  # redirects followed by one HTTP request (index, archive, registry)

# -- APT archives ------------------------------------------------------------------
RELEASE = 16 * MiB  # an InRelease, Release or Release.gpg file
PACKAGES = 512 * MiB  # a Packages index, as fetched and decompressed

# -- the Python package index ------------------------------------------------------
INDEX_PAGE = 128 * MiB  # a project page (the biggest projects' are a few MiB)
SDIST = 64 * MiB  # an sdist read for its [build-system] (pip built it; no wheel on the index)
PROJECT_FILE = 1 * MiB  # a pyproject.toml or setup.cfg, of the build context or in an sdist
PROJECT_SEARCH_DEPTH = 4  # folders below the build context searched for a project's file
PROJECT_SEARCH_ENTRIES = 5000  # files seen in that search
DIRECT_URL = 64 * KiB  # an installed distribution's direct_url.json (PEP 610: some 100 bytes)

# -- plain downloads ------------------------------------------------------------------
DOWNLOAD = 4 * GiB  # one file a template downloads by URL (curl, wget, ADD), as fetched
DOWNLOADS = 256  # plain downloads of one template that a freeze locks

# -- images: layers, archives, configs -----------------------------------------------
LAYER_BYTES = 32 * GiB  # decompressed bytes of all of one image's layers
LAYER_ENTRIES = 4_000_000  # tar entries of all of one image's layers
TAR_NAME = 4 * KiB  # bytes of one path in a layer
IMAGE_ARCHIVE = 32 * GiB  # an image archive spooled to disk (docker save)
ARCHIVE_ENTRIES = 1_000_000  # entries of an image archive's own tar (not its layers')
LAYER_FILE = 256 * MiB  # one file of a layer read into memory (dpkg's status, METADATA)

# -- what the builder and the engine write -----------------------------------------
BUILD_STATUS = 8 * MiB  # one BuildKit status object
OCI_ARCHIVE_JSON = 4 * MiB  # index.json or a manifest of the OCI archive BuildKit wrote

# -- OSV records -------------------------------------------------------------------
OSV_RECORD = 8 * MiB  # one OSV record
OSV_RECORDS = 2_000_000  # records in one folder or zip


def size_text(n: int) -> str:
    """``n`` bytes as the limits are written: ``4 MiB``, ``64 KiB``, ``32 GiB``."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if n >= unit and n % unit == 0:
            return f"{n // unit} {name}"
    return f"{n} bytes"


def over(source: str, what: str, limit: str) -> str:
    """The one line for a limit passed: the source, what, and the limit (docs/limits.md)."""
    return f"{source}: {what} is over {limit} (relock's limit, see docs/limits.md); refused"


def too_big(source: str, what: str, limit: int) -> LimitError:
    """``LimitError`` for ``what`` of ``source`` bigger than ``limit`` bytes."""
    return LimitError(over(source, what, size_text(limit)))


class JSONTooDeep(ValueError):
    """JSON nested deeper than ``JSON_DEPTH``."""

    def __init__(self, depth: int) -> None:
        super().__init__(f"nested deeper than {depth} levels (relock's limit, see "
                         "docs/limits.md)")


def load_json(data: bytes | str, depth: int = JSON_DEPTH) -> Any:  # Any: JSON of any shape
    """``json.loads(data)``, refusing nesting deeper than ``depth``.

    Raises ``JSONTooDeep`` (a ``ValueError``) past the depth, ``ValueError``
    when ``data`` is not JSON (or not UTF-8); never ``RecursionError``.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise JSONTooDeep(depth) from None
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 (byte {e.start})") from None
    # Containers one level at a time (no recursion): stop at the first too deep.
    level: list[Any] = [value]
    for _ in range(depth):
        below: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                below.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                below.extend(v for v in item if isinstance(v, dict | list))
        if not below:
            return value
        level = below
    raise JSONTooDeep(depth)


def decompress(data: bytes, name: str, limit: int, source: str) -> bytes:
    """The bytes of ``data`` decompressed as ``name`` says (``.xz``, ``.gz``, ``.lz4``,
    else as they are), at most ``limit`` of them.

    Past ``limit`` (a bomb, or an index far bigger than any): ``LimitError``
    naming ``source``, after at most ``limit`` bytes were made. Data that is
    not what its name says: ``ValueError``.
    """
    import lzma
    import zlib

    if not name.endswith((".xz", ".gz", ".lz4")):
        if len(data) > limit:
            raise too_big(source, "the file", limit)
        return data
    out: list[bytes] = []
    made = 0

    def take(chunk: bytes) -> int:
        out.append(chunk)
        if made + len(chunk) > limit:
            raise too_big(source, "the file decompressed", limit)
        return made + len(chunk)

    kind = name.rpartition(".")[2]
    rest = data
    try:
        while rest:  # one stream after another (concatenated members)
            if kind == "lz4":
                import lz4.frame

                f = lz4.frame.LZ4FrameDecompressor()
                made = take(f.decompress(rest, max_length=limit - made + 1))
                while not f.eof and not f.needs_input:
                    made = take(f.decompress(b"", max_length=limit - made + 1))
                done, rest = f.eof, f.unused_data
            elif kind == "xz":
                x = lzma.LZMADecompressor()
                made = take(x.decompress(rest, limit - made + 1))
                while not x.eof and not x.needs_input:
                    made = take(x.decompress(b"", limit - made + 1))
                done, rest = x.eof, x.unused_data.lstrip(b"\0")  # stream padding
            else:
                z = zlib.decompressobj(wbits=31)
                made = take(z.decompress(rest, limit - made + 1))
                while not z.eof and z.unconsumed_tail:
                    made = take(z.decompress(z.unconsumed_tail, limit - made + 1))
                done, rest = z.eof, z.unused_data
            if not done:
                raise ValueError(f"the {kind} stream ends early")
    except (OSError, EOFError, lzma.LZMAError, zlib.error, RuntimeError) as e:
        raise ValueError(f"not valid {kind} data: {e}") from None
    return b"".join(out)
