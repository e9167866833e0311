"""The test bed's certificates and the kubeconfig that uses them.

One CA and one admin certificate (client: ``system:masters``; server: 127.0.0.1, localhost
and the bed's other listen address) serve the API server, kwok and every client; plus the
service-account signing key pair. The CA key is kept (0600) to sign the certificates of the
bed's real nodes (``node_certificate``: ``system:node:<name>`` in ``system:nodes``, what the
Node authorizer and NodeRestriction expect). Valid for 30 days: a bed is a test fixture.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=30)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _not_before() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # clock skew between hosts


def _leaf(
    subject: x509.Name, sans: list[x509.GeneralName], key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name, ca_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    """A client and server certificate for ``subject`` and ``sans``, signed by the CA."""
    now = _not_before()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def write_pki(pki: Path, addresses: tuple[str, ...] = ()) -> None:
    """ca.crt/ca.key, admin.crt/admin.key and sa.key/sa.pub under ``pki`` (mode 0600);
    ``addresses``: more IP addresses the API server's certificate is valid for."""
    pki.mkdir(parents=True, exist_ok=True)
    now = _not_before()
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azl-testbed-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = _key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
        x509.NameAttribute(NameOID.COMMON_NAME, "azl-testbed-admin"),
    ])
    sans: list[x509.GeneralName] = [
        x509.DNSName(n) for n in ("localhost", "kubernetes", "kubernetes.default")
    ]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    sans.append(x509.IPAddress(ipaddress.ip_address("10.96.0.1")))
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = _leaf(subject, sans, key, ca_name, ca_key)
    sa = _key()
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (pki / "ca.key").write_bytes(_pem_key(ca_key))
    (pki / "admin.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (pki / "admin.key").write_bytes(_pem_key(key))
    (pki / "sa.key").write_bytes(_pem_key(sa))
    (pki / "sa.pub").write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for f in pki.iterdir():
        f.chmod(0o600)


def node_certificate(pki: Path, node: str, address: str) -> tuple[bytes, bytes]:
    """A certificate and key (PEM) for the kubelet of ``node``, signed by the bed's CA: client
    ``system:node:<node>`` in ``system:nodes``, and server for ``node`` and ``address``."""
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{pki / 'ca.key'}: not the bed's EC key")
    key = _key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
    ])
    sans: list[x509.GeneralName] = [
        x509.DNSName(node), x509.IPAddress(ipaddress.ip_address(address))]
    cert = _leaf(subject, sans, key, ca.subject, ca_key)
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def kubeconfig_text(server: str, pki: Path, context: str = "azl-testbed") -> str:
    """A kubeconfig for ``server`` authenticating with the admin certificate."""
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "admin", "user": {
            "client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "admin"}}],
        "current-context": context,
    }
    return yaml.safe_dump(data, sort_keys=False)
