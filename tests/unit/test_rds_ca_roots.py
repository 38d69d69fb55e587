"""The RDS root certificates the image adds to its CA bundle are what they claim to be.

`docker/rds-ca-roots.pem` was taken offline from a third-party copy of RDS's global bundle (its
header says which): each certificate must be a self-signed Amazon RDS root CA, valid today, its
signature made by its own key, and named once. An intermediate, an expired root or a certificate
of anyone else slipped into the file fails here, before the image trusts it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

ROOTS = Path(__file__).resolve().parents[2] / "docker" / "rds-ca-roots.pem"
PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def _certificates() -> list[x509.Certificate]:
    blocks = PEM.findall(ROOTS.read_text(encoding="ascii"))
    return [x509.load_pem_x509_certificate(block.encode()) for block in blocks]


def _name(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    return str(cert.subject.get_attributes_for_oid(oid)[0].value)


def test_every_certificate_is_a_self_signed_amazon_rds_root_ca() -> None:
    certs = _certificates()
    assert len(certs) >= 50  # three key types for each RDS region
    for cert in certs:
        name = _name(cert, NameOID.COMMON_NAME)
        assert cert.issuer == cert.subject, name
        cert.verify_directly_issued_by(cert)  # raises unless its own key signed it
        assert _name(cert, NameOID.ORGANIZATION_NAME) == "Amazon Web Services, Inc."
        assert _name(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == "Amazon RDS"
        assert re.fullmatch(r"Amazon RDS .+ Root CA (RSA2048|RSA4096|ECC384) G1", name), name
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert basic.ca, name


def test_every_root_is_valid_today_and_named_once() -> None:
    certs = _certificates()
    now = dt.datetime.now(dt.UTC)
    expired = [c for c in certs if not c.not_valid_before_utc <= now <= c.not_valid_after_utc]
    assert [_name(c, NameOID.COMMON_NAME) for c in expired] == []
    names = [_name(c, NameOID.COMMON_NAME) for c in certs]
    assert len(names) == len(set(names))


def test_the_header_counts_the_certificates_the_file_holds() -> None:
    header = ROOTS.read_text(encoding="ascii").split("-----BEGIN", 1)[0]
    stated = re.search(r"keeping the (\d+) self-signed", header.replace("\n# ", " "))
    assert stated is not None
    assert int(stated.group(1)) == len(_certificates())
