"""A stores-file entry cannot redirect or weaken a store's login, through the real FreeTDS driver.

Issue 23's attacks, reproduced with the driver the image falls back to: FreeTDS ends a braced
value at the first ``};``, so ``database = "VAD10};Port=N;x={"`` sent the login -- password
included -- to port N; and with its default encryption (``request``) FreeTDS sends the login in
clear to a server that says it cannot encrypt. A listener on 127.0.0.1 records what reaches it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pyodbc
import pytest
from etl_cli import run_cli

PASSWORD = "Inj3cted-but-n0t-sent"


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection and the first bytes of each
    TDS packet it receives; with ``prelogin_no_encryption`` it answers a PRELOGIN saying the
    server cannot encrypt (ENCRYPT_NOT_SUP), as a downgrading machine on the path would."""

    def __init__(self, prelogin_no_encryption: bool = False) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = prelogin_no_encryption
        self.connections = 0
        self.packet_types: list[int] = []
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        while True:
            header = conn.recv(8)
            if len(header) < 8:
                return
            kind, _status, length = struct.unpack(">BBH", header[:4])
            body = b""
            while len(body) < length - 8:
                chunk = conn.recv(length - 8 - len(body))
                if not chunk:
                    return
                body += chunk
            self.packet_types.append(kind)
            self.received += body
            if kind == 0x12 and self.answer:  # PRELOGIN: VERSION, ENCRYPTION=NOT_SUP
                options = b"\x00\x00\x0b\x00\x06" + b"\x01\x00\x11\x00\x01" + b"\xff"
                payload = options + b"\x10\x00\x00\x00\x00\x00" + b"\x02"
                conn.sendall(struct.pack(">BBHHBB", 0x04, 0x01, 8 + len(payload), 0, 1, 0))
                conn.sendall(payload)
            elif kind == 0x12:
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def freetds() -> str:
    if "FreeTDS" not in pyodbc.drivers():
        pytest.skip("the FreeTDS ODBC driver is not installed (apt package tdsodbc)")
    return "FreeTDS"


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


def env_for(tmp_path: Path, database: str, port: int = 9) -> dict[str, str]:
    stores = tmp_path / "stores.toml"
    stores.write_text(
        f"""
[[stores]]
id = "tienda_02"
name = "AV. BOLIVAR"
type = "tienda"
host = "127.0.0.1"
port = {port}
database = "{database}"
warehouse = "0202"
driver = "FreeTDS"
""",
        encoding="utf-8",
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))}
    return {
        **base,
        "ETL_STORES_FILE": str(stores),
        "DATABASE_PATH": str(tmp_path / "target.duckdb"),
        "SQL_USER": "etl_reader",
        "SQL_PASS": PASSWORD,
        "ETL_CONNECT_TIMEOUT_SECONDS": "3",
    }


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_database_value_cannot_send_the_login_to_another_port(
    freetds: str, listener: Listener, tmp_path: Path, command: str
) -> None:
    env = env_for(tmp_path, f"VAD10}};Port={listener.port};x={{")
    result = run_cli([command], env, timeout=120)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    line = result.stderr.strip()
    assert line.startswith("fluxion-etl: configuration error: store tienda_02: field 'database'")
    assert listener.connections == 0  # nothing reached the attacker's port
    assert not (tmp_path / "target.duckdb").exists()


def test_freetds_refuses_a_server_that_cannot_encrypt(freetds: str, tmp_path: Path) -> None:
    downgrading = Listener(prelogin_no_encryption=True)
    try:
        result = run_cli(["check"], env_for(tmp_path, "VAD10", downgrading.port), timeout=120)
    finally:
        downgrading.close()
    assert downgrading.connections >= 1 and 0x12 in downgrading.packet_types  # it was asked
    assert 0x10 not in downgrading.packet_types  # but no LOGIN7 packet followed
    assert PASSWORD.encode("utf-16-le") not in downgrading.received
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
