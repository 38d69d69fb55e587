"""The PostgreSQL target does not hand its password to a server it cannot verify.

Issue 23, item 2, reproduced: an impostor on the path answers the PostgreSQL TLS request with a
self-signed certificate, then asks for the password in clear (``AuthenticationCleartextPassword``,
which libpq answers inside the TLS session). With the old default (``sslmode=require``) it got
the password. With the new default (``verify-full`` against the system CA bundle) libpq ends
the handshake and nothing is sent; with ``PGSSLROOTCERT`` naming the server's CA, it connects.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from etl_cli import run_cli

PASSWORD = "target-Secret-4b1f"


class Impostor:
    """A TLS 'PostgreSQL server' on 127.0.0.1 that records the login it is sent."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self.startups: list[bytes] = []
        self.passwords: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                self._talk(raw)
            except (OSError, ssl.SSLError, struct.error):
                pass
            finally:
                raw.close()

    def _talk(self, raw: socket.socket) -> None:
        raw.settimeout(5)
        length, code = struct.unpack(">II", _read(raw, 8))
        if code != 80877103:  # not an SSLRequest
            return
        raw.sendall(b"S")
        tls = self.context.wrap_socket(raw, server_side=True)
        self.handshakes += 1
        (length,) = struct.unpack(">I", _read(tls, 4))
        self.startups.append(_read(tls, length - 4))
        tls.sendall(b"R" + struct.pack(">II", 8, 3))  # AuthenticationCleartextPassword
        kind = _read(tls, 1)
        (length,) = struct.unpack(">I", _read(tls, 4))
        if kind == b"p":
            self.passwords.append(_read(tls, length - 4).rstrip(b"\0"))
        tls.sendall(b"E" + struct.pack(">I", 4 + 6) + b"SFATAL\0\0")

    def close(self) -> None:
        self.sock.close()


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def env_for(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_", "PG", "DATABASE_"))
    }
    return {
        **base,
        "DATABASE_URL": f"postgresql://etl@127.0.0.1:{port}/inventario",
        "PGPASSWORD": PASSWORD,
        "ETL_CONNECT_TIMEOUT_SECONDS": "5",
        **extra,
    }


def test_an_impostor_with_a_self_signed_certificate_gets_no_password(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    impostor = Impostor(*certificate)
    try:
        result = run_cli(["status"], env_for(tmp_path, impostor.port), timeout=60)
    finally:
        impostor.close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot connect" in result.stderr and PASSWORD not in result.stderr
    assert "certificate verify failed" in result.stderr
    assert impostor.passwords == [] and impostor.startups == []  # nothing after the handshake


def test_with_the_servers_ca_in_pgsslrootcert_the_login_goes_through(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    impostor = Impostor(*certificate)  # here: the real server, whose CA the operator named
    try:
        env = env_for(tmp_path, impostor.port, PGSSLROOTCERT=str(certificate[0]))
        result = run_cli(["status"], env, timeout=60)
    finally:
        impostor.close()
    assert result.returncode == 1  # the "server" then refuses the session
    assert impostor.startups and b"etl" in impostor.startups[0]
    assert PASSWORD.encode() in impostor.passwords  # verified: the login was sent
