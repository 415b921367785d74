"""Release signatures: which keyrings apt trusts for a source, and an archive's InRelease
(or Release + Release.gpg) checked with gpgv against them.

The keys are the image's own (its ``Signed-By`` keyrings, else apt's
trusted.gpg and trusted.gpg.d: ``signed_by_paths``, ``TRUSTED``,
``TRUSTED_D``), so an index read from the network is trusted exactly as far
as apt in the image trusted the lists it downloaded. Only the signed text is
returned: whatever an attacker puts around a clear-signed message is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from relock.errors import RelockError
from relock.lock.lockfile import AptSource

if TYPE_CHECKING:
    import subprocess

# apt's own keyrings, which sign every source that names none (Signed-By).
TRUSTED = "/etc/apt/trusted.gpg"
TRUSTED_D = "/etc/apt/trusted.gpg.d"


class SignatureError(RelockError):
    """A Release file's signature does not verify with the image's keys."""


class GpgvMissing(SignatureError):
    """gpgv, which checks the signatures, is not installed on this machine."""


def signed_by_paths(src: AptSource) -> list[str]:
    """The keyring files a source's ``Signed-By`` names (not inline keys or fingerprints)."""
    value = src.options.get("signed-by", "")
    if "BEGIN PGP" in value:
        return []
    return [w for w in re.split(r"[\s,]+", value) if w.startswith("/")]


def keyring_paths(sources: Sequence[AptSource],
                  listdir: Callable[[str], list[str] | None]) -> list[str]:
    """The keyring files apt checks ``sources``' signatures with: its trusted.gpg and
    trusted.gpg.d, and each source's ``Signed-By`` files; ``listdir`` lists a folder of
    the tree in question (an image's, this machine's)."""
    paths = {TRUSTED}
    paths |= {f"{TRUSTED_D}/{n}" for n in listdir(TRUSTED_D) or []
              if n.endswith((".gpg", ".asc"))}
    for src in sources:
        paths.update(signed_by_paths(src))
    return sorted(paths)


_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_END = "-----END PGP PUBLIC KEY BLOCK-----"


def dearmor(text: str) -> bytes:
    """The binary key packets of an ASCII-armored key block.

    Works on a block whose line breaks were folded into spaces (a deb822
    ``Signed-By`` field read as one value, its blank line written ``.``).
    """
    import base64
    import binascii

    start, end = text.find(_BEGIN), text.find(_END)
    if start < 0 or end < start:
        raise ValueError("not an armored public key block")
    body = text[start + len(_BEGIN):end].replace("\r", "")
    if "\n" in body:  # armor: the BEGIN line, headers, a blank line, the data
        items = [line.strip() for line in body.split("\n")[1:]]
        blank = ""
    else:  # folded: the blank line is deb822's "."
        items = body.split()
        blank = "."
    if blank in items:
        items = items[items.index(blank) + 1:]
    data = "".join(w for w in items if w and w != "." and not w.startswith("="))
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the armored key block is not valid base64") from None


def key_bytes(blob: bytes) -> bytes:
    """A keyring file's key packets, armored (``.asc``) or binary (``.gpg``)."""
    if blob.lstrip().startswith(b"-----BEGIN PGP"):
        return dearmor(blob.decode("ascii", "replace"))
    return blob


def _gpgv(args: Sequence[str], keyrings: Sequence[bytes],
          folder: Path) -> subprocess.CompletedProcess[bytes]:
    import shutil
    import subprocess  # here: a freeze reads keyrings but never runs gpgv

    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise GpgvMissing("gpgv is not installed: APT Release signatures cannot be checked")
    if not keyrings:
        raise SignatureError("the image has none of the keyrings its source names")
    cmd = [gpgv, "--homedir", str(folder), "--status-fd", "1"]
    for i, ring in enumerate(keyrings):
        path = folder / f"ring{i}.gpg"
        path.write_bytes(key_bytes(ring))
        cmd += ["--keyring", str(path)]
    return subprocess.run([*cmd, *args], cwd=folder, capture_output=True, timeout=60,
                          check=False)


def _check(proc: subprocess.CompletedProcess[bytes]) -> None:
    # Like apt: one good signature by a trusted key is enough (Debian signs
    # with several keys; gpgv exits 1 when any of them is not in the keyring),
    # and any bad one is fatal.
    status = proc.stdout.decode("utf-8", "replace")
    if "[GNUPG:] VALIDSIG" not in status or "[GNUPG:] BADSIG" in status:
        words = {line.split()[1] for line in status.splitlines()
                 if line.startswith("[GNUPG:] ") and len(line.split()) > 1}
        if "BADSIG" in words:
            reason = "a bad signature: the file is not what was signed"
        elif "NODATA" in words:
            reason = "it is not signed"
        elif words & {"NO_PUBKEY", "ERRSIG"}:
            reason = "no key of the image's keyrings signed it"
        else:
            reason = f"gpgv exit {proc.returncode}"
        raise SignatureError(f"its signature does not verify: {reason}")


def verify_clearsigned(data: bytes, keyrings: Sequence[bytes]) -> bytes:
    """The signed text of a clear-signed message (InRelease), if a key verifies it."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="relock-gpgv-") as tmp:
        folder = Path(tmp)
        (folder / "InRelease").write_bytes(data)
        proc = _gpgv(["--output", "signed", "InRelease"], keyrings, folder)
        _check(proc)
        return (folder / "signed").read_bytes()


def verify_detached(data: bytes, signature: bytes, keyrings: Sequence[bytes]) -> bytes:
    """``data`` (a Release file), if a key verifies its detached ``signature``."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="relock-gpgv-") as tmp:
        folder = Path(tmp)
        (folder / "Release").write_bytes(data)
        (folder / "Release.gpg").write_bytes(signature)
        _check(_gpgv(["Release.gpg", "Release"], keyrings, folder))
        return data
