"""A self-signed certificate, made on the fly, so the recorder can be served over https.

Browsers give a page the microphone only in a "secure context": https, or
http://localhost. A self-signed certificate is enough for https: nobody vouches
for it, so the browser warns once ("Your connection is not private" ->
Advanced -> Proceed), but the page is still https and the microphone works.

The certificate and key are kept in the lab's cache folder and reused while
they are valid, so the browser's exception for them keeps working across runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

from ..cache import cache_root
from ..errors import LabError
from ..files import atomic_file

VALID_DAYS = 365
RENEW_DAYS = 7  # make a new one when the old one has less than this left


def tls_dir() -> Path:
    return cache_root() / "tls"


def machine_names(extra_host: str | None = None) -> list[str]:
    """Names and addresses a browser may use for this machine: localhost, its host name, its IPs."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()]
    try:  # the addresses the host name resolves to, usually the VM's own IP
        names += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)]
    except OSError:
        pass
    if extra_host and extra_host not in ("0.0.0.0", "::", ""):
        names.append(extra_host)
    # Unique, in order; without link-local IPv6 addresses ("fe80::1%eth0"), which no URL uses.
    return list(dict.fromkeys(n for n in names if n and "%" not in n))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _still_good(cert_path: Path, key_path: Path, names: list[str]) -> bool:
    from cryptography import x509

    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    covered = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    covered |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    left = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
    return left > dt.timedelta(days=RENEW_DAYS) and set(names) <= covered


def self_signed_cert(extra_host: str | None = None) -> tuple[Path, Path]:
    """Return (certfile, keyfile) for this machine, making them if needed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tls_dir()
    cert_path, key_path = folder / "recorder-cert.pem", folder / "recorder-key.pem"
    names = machine_names(extra_host)
    if _still_good(cert_path, key_path, names):
        return cert_path, key_path

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"whisper-onnx-lab on {socket.gethostname()}")])
    now = dt.datetime.now(dt.timezone.utc)
    alt_names = [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)  # self-signed: it vouches for itself
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate a VM clock slightly behind
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(key_path) as tmp:
            os.chmod(tmp, 0o600)  # a private key is for this user's eyes only
            tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        with atomic_file(cert_path) as tmp:
            tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise LabError(f"cannot write the self-signed certificate into {folder}: {exc}") from exc
    return cert_path, key_path
