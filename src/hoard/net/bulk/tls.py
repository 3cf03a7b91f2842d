"""TLS 1.3 for the bulk path, with libp2p's peer authentication (`/tls/1.0.0`'s certificates).

Each side presents a self-signed certificate carrying the libp2p public-key extension
(OID 1.3.6.1.4.1.53594.1.1): the peer's libp2p public key and its signature over the
certificate's SubjectPublicKeyInfo, as the libp2p TLS spec defines. Certificates are made and
checked by py-libp2p's own implementation of that spec (`libp2p.security.tls.certificate`);
OpenSSL (Python's `ssl`) does the handshake and the record protection. Nothing here is crypto
of our own: this module only decides which certificate each side accepts.

- The client (fetching side) accepts the server's certificate when its extension verifies and
  names the peer it meant to reach (`peer_of(der) == expected`); the TLS 1.3 handshake already
  proved the server holds the certificate's key.
- The server asks for a client certificate and trusts exactly one: the certificate the client
  sent beforehand over the Noise-authenticated libp2p stream (`/hoard/bulk/1`), after checking
  that its extension names that stream's peer. OpenSSL then verifies the client's
  CertificateVerify against it. A context per request is selected by SNI (the request name).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from hoard.errors import PeerError
from hoard.ids.peer import Identity, PeerId

__all__ = ["ALPN", "BulkCertificate", "client_context", "peer_of", "server_context"]

#: The ALPN protocol both sides insist on: a bulk connection is not a libp2p connection.
ALPN = "/hoard/bulk/1"


@dataclass(frozen=True)
class BulkCertificate:
    """A node's bulk-path certificate (fresh key, signed extension) and where its PEM lives.

    OpenSSL loads a certificate and key only from a file. On Linux the file is an anonymous
    memory file (`memfd_create`, read through `/proc/self/fd/N`): nothing reaches a disk and
    nothing is left behind, even by a process killed with SIGKILL. Elsewhere it is written to
    a private temporary directory (0700, the file 0600). `remove()` closes or deletes it."""

    der: bytes
    path: Path
    fd: int | None = None

    @classmethod
    def create(cls, identity: Identity) -> BulkCertificate:
        from libp2p.security.tls.certificate import (
            create_cert_template,
            generate_certificate,
        )

        cert_pem, key_pem = generate_certificate(identity.key_pair.private_key, create_cert_template())
        der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(Encoding.DER)
        if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
            fd = os.memfd_create("hoard-bulk-cert", os.MFD_CLOEXEC)
            os.write(fd, (cert_pem + key_pem).encode())
            return cls(der, Path(f"/proc/self/fd/{fd}"), fd)
        folder = Path(tempfile.mkdtemp(prefix="hoard-bulk-"))  # mode 0700
        path = folder / "cert.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(cert_pem + key_pem)
        return cls(der, path)

    def remove(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            return
        try:
            self.path.unlink()
            self.path.parent.rmdir()
        except OSError:
            pass


def peer_of(der: bytes) -> PeerId:
    """The peer a certificate speaks for, after checking it as the libp2p TLS spec says
    (validity window, self-signature, the extension's signature by the libp2p key).
    A certificate that fails any check is a `PeerError`."""
    from libp2p.security.tls.certificate import verify_certificate_chain

    try:
        cert = x509.load_der_x509_certificate(der)
        public_key = verify_certificate_chain([cert])
    except Exception as exc:
        raise PeerError(f"bulk path: the peer's certificate is not a valid libp2p certificate: {exc}") from exc
    return PeerId.from_public_key(public_key.serialize())


def _base(purpose: ssl.Purpose) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols([ALPN])
    return ctx


def server_context(cert: BulkCertificate, client_der: bytes | None) -> ssl.SSLContext:
    """A server context presenting `cert` and requiring a client certificate: exactly
    `client_der` (None: trust nothing, for the context that only dispatches by SNI)."""
    ctx = _base(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert.path))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.num_tickets = 0  # no resumption: every bulk connection is a fresh, pinned handshake
    if client_der is not None:
        ctx.load_verify_locations(cadata=client_der)
    return ctx


def client_context(cert: BulkCertificate) -> ssl.SSLContext:
    """A client context presenting `cert`. The server's certificate is checked after the
    handshake with `peer_of` (it is self-signed: no CA can vouch for it)."""
    ctx = _base(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(cert.path))
    return ctx
