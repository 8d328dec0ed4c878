"""A self-made certificate authority for TLS tests on 127.0.0.1.

Why: safe-pip must never weaken TLS verification and must honour pip's ``--cert``,
``PIP_CERT`` and ``REQUESTS_CA_BUNDLE`` (README, "Guarantees"). Proving that needs an HTTPS
index whose certificate no system trust store accepts: a CA made on the spot, and a server
certificate it signs for ``127.0.0.1`` and ``localhost``. Pass :meth:`TestCA.server_context`
to :class:`~._origin.Origin` or :class:`~._cdn.CDN` (``tls=``) and hand :attr:`TestCA.ca_file`
to the client.

:func:`make_client_identity` makes a client certificate (pip's ``--client-cert``) and the CA a
server must trust to accept it. Made with the ``cryptography`` package (the ``test`` extra);
nothing is fetched.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TestCA", "make_client_identity", "make_test_ca"]


@dataclass(frozen=True)
class TestCA:
    """Files of one self-made CA and one server certificate it signed (PEM)."""

    ca_file: Path  # the CA certificate: what a client must trust
    cert_file: Path  # the server certificate
    key_file: Path  # the server's private key

    __test__ = False  # not a pytest test class, whatever its name says

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for a server presenting the signed certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this CA only (for the CDN's upstream, or a test)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_test_ca(
    directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), *, days: int = 2
) -> TestCA:
    """Write ``ca.pem``, ``server.pem`` and ``server-key.pem`` into ``directory``.

    The server certificate names every entry of ``hosts`` (IP addresses as IP SANs) and is
    valid from an hour ago for ``days`` days, so clock skew cannot fail a test.
    """
    # cryptography is optional (the test extra): imported only when certificates are made.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)

    ca_key, ca_name, ca_cert = _make_ca("safe-pip test CA", start, end)

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca = TestCA(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca


def _make_ca(common_name: str, start: datetime.datetime, end: datetime.datetime) -> Any:
    """A self-signed CA: its private key, its name and its certificate."""
    # cryptography is optional (the test extra): imported only when certificates are made.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca_name, ca_cert


def make_client_identity(directory: Path, *, days: int = 2) -> tuple[Path, Path]:
    """Write ``client-ca.pem`` (a CA for client certificates: what a server must trust) and
    ``client.pem`` (a client certificate it signed, with its private key, in one file: what
    pip's ``--client-cert`` takes) into ``directory``; return the two paths."""
    # cryptography is optional (the test extra): imported only when certificates are made.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)
    ca_key, ca_name, ca_cert = _make_ca("safe-pip test client CA", start, end)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test client")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, identity = directory / "client-ca.pem", directory / "client.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    identity.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return ca_file, identity
