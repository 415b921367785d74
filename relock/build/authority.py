"""The certificate authority of one locked view: how the view answers https.

Tools carry their own https URLs (``uv.lock``, ``Pipfile.lock``, ``--index-url
https://...`` in a requirements file, ``pip install https://.../x.whl``). During a
pinned build every RUN has the view as its proxy, and an https URL arrives as a
``CONNECT``: the view ends the TLS itself, with a certificate for the host asked for,
signed by this authority, and answers from the lock (``relock.build.view``).

The authority is made when the view starts and forgotten when it stops: its key lives
in this process's memory (and for a moment in a private folder, which ``ssl`` needs to
load a certificate chain from), never in a file that outlives the view, never in the
build. The build steps fetch the certificate (not the key) from the view into relock's
scratch folder on ``/dev/shm``, a tmpfs of the step that no layer keeps, and trust it
there only: nothing of it reaches the image.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
import threading
from pathlib import Path

from relock.errors import RelockError

# A step's whole build fits in this: an authority of one view.
_LIFETIME = datetime.timedelta(days=2)
# The clock of a build container may lag the host's a little.
_SKEW = datetime.timedelta(hours=1)


class AuthorityError(RelockError):
    """The view's certificate authority cannot be made or used."""


class Authority:
    """A certificate authority made for one locked view, and its hosts' certificates."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             "relock locked view (one build)")])
        self._name = name
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW).not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem: bytes = self._cert.public_bytes(serialization.Encoding.PEM)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._folder: Path | None = None

    def context_for(self, host: str) -> ssl.SSLContext:
        """A server-side TLS context presenting a certificate for ``host``."""
        host = host.strip("[]").lower()
        if not host or len(host) > 253:
            raise AuthorityError(f"no certificate for the host {host[:60]!r}")
        with self._lock:
            found = self._contexts.get(host)
            if found is None:
                found = self._contexts[host] = self._make_context(host)
            return found

    def _make_context(self, host: str) -> ssl.SSLContext:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        try:
            ip = ipaddress.ip_address(host)
            alt: x509.GeneralName = x509.IPAddress(ip)
            common = host
        except ValueError:
            try:
                alt = x509.DNSName(host)
                common = host[:64]
                x509.NameAttribute(NameOID.COMMON_NAME, common)
            except ValueError as e:
                raise AuthorityError(f"no certificate for the host {host[:60]!r}: {e}") from None
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW).not_valid_after(now + _LIFETIME)
            .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        chain = (cert.public_bytes(serialization.Encoding.PEM)
                 + key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # ssl loads a chain from a file only: a private folder, the file gone at once.
        folder = self._private_folder()
        fd, name = tempfile.mkstemp(dir=folder, suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(chain)
            context.load_cert_chain(name)
        except (OSError, ssl.SSLError) as e:
            raise AuthorityError(f"cannot load the view's certificate for {host}: {e}") from None
        finally:
            Path(name).unlink(missing_ok=True)
        return context

    def _private_folder(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="relock-view-"))
            self._folder.chmod(0o700)
        return self._folder

    def close(self) -> None:
        """Forget the hosts' contexts and remove the private folder."""
        with self._lock:
            self._contexts.clear()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None
