"""The driver production uses, Microsoft ODBC Driver 18 for SQL Server, at the connect faults.

No SQL Server can run here, but the driver can: its Linux build ships in the PyPI wheel
``mssql-python-odbc`` (a test dependency; the image keeps Microsoft's Debian package). Registered
under its production name in a private odbcinst.ini (``ODBCSYSINI``), the real ``fluxion-etl run``
meets listeners on 127.0.0.1: a closed port, a listener that never answers, one that accepts and
closes, one that accepts and resets. What the driver says to each (HYT00 "Login timeout expired",
08001 native 26 "handshakes before login") must land as ``conexion`` and be retried.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest
from etl_cli import json_lines, ledger_rows, run_cli

from fluxion_etl.config import DEFAULT_DRIVER
from fluxion_harness.linkproxy import ClosingListener, SilentListener

#: the wheel's build for Debian/Ubuntu, relative to the package directory
_BUILD = Path("libs/linux/debian_ubuntu/x86_64")


@pytest.fixture(scope="module")
def mssql_odbcsysini(
    tmp_path_factory: pytest.TempPathFactory, unavailable: Callable[[str], NoReturn]
) -> Path:
    """A directory holding an odbcinst.ini that registers the wheel's driver as production
    names it (``ODBC Driver 18 for SQL Server``): point ODBCSYSINI at it."""
    try:
        import mssql_python_odbc
    except ImportError:
        unavailable("mssql-python-odbc is not installed (pip install -e '.[dev]')")
    build = Path(mssql_python_odbc.__file__).parent / _BUILD
    libraries = sorted((build / "lib").glob("libmsodbcsql-18*.so*"))
    if not libraries or not (build / "share/resources/en_US").is_dir():
        unavailable(f"mssql-python-odbc has no Debian build of the driver under {build}")
    directory = tmp_path_factory.mktemp("odbcsysini")
    (directory / "odbcinst.ini").write_text(
        f"[{DEFAULT_DRIVER}]\nDescription=Microsoft ODBC Driver 18 for SQL Server\n"
        f"Driver={libraries[-1]}\nUsageCount=1\n",
        encoding="utf-8",
    )
    return directory


def mssql_store(store_id: str, port: int) -> str:
    """A stores-file entry for a SQL Server at 127.0.0.1:``port``, through the default driver."""
    return (
        f'[[stores]]\nid = "{store_id}"\nname = "{store_id.upper()}"\ntype = "tienda"\n'
        f'host = "127.0.0.1"\nport = {port}\ndatabase = "VAD10"\nwarehouse = "0202"\n\n'
    )


def test_the_wheel_driver_is_registered_under_the_production_name(
    mssql_odbcsysini: Path,
) -> None:
    listed = subprocess.run(
        [sys.executable, "-c", "import pyodbc; print(pyodbc.drivers())"],
        env={**os.environ, "ODBCSYSINI": str(mssql_odbcsysini)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert DEFAULT_DRIVER in listed.stdout


def test_connect_faults_with_the_production_driver_are_lost_connections_and_retried(
    mssql_odbcsysini: Path, tmp_path: Path
) -> None:
    with (
        SilentListener() as silent,
        ClosingListener() as closing,
        ClosingListener(reset=True) as resetting,
    ):
        stores = {
            "tienda_01": 9,  # nothing listens on 127.0.0.1:9 (discard): refused
            "tienda_02": silent.port,
            "tienda_03": closing.port,
            "tienda_04": resetting.port,
        }
        stores_file = tmp_path / "stores.toml"
        stores_file.write_text(
            "".join(mssql_store(i, port) for i, port in stores.items()), encoding="utf-8"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))}
        env.update(
            ODBCSYSINI=str(mssql_odbcsysini),
            ETL_STORES_FILE=str(stores_file),
            DATABASE_PATH=str(tmp_path / "target.duckdb"),
            ETL_STAGING_DIR=str(tmp_path / "staging"),
            # long enough that a loaded machine still sees the handshake fail before the login
            # timeout: with 2 s, a busy CI box turned the closing listener into HYT00
            ETL_CONNECT_TIMEOUT_SECONDS="5",
            ETL_MAX_RETRIES="2",
            SQL_USER="etl",
            SQL_PASS="not-a-real-password",
        )
        result = run_cli(["run"], env, timeout=120)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert closing.accepted == 2  # one connection per attempt
    assert resetting.accepted >= 2  # after a reset the driver tries again within the attempt
    ledger = ledger_rows(tmp_path / "target.duckdb")
    # What the driver said, as seen here. After a reset the driver reconnects by itself within
    # the attempt, so what it reports last depends on timing: the handshake error, the TCP
    # provider's own (0x2749, WSAENOTCONN) or, when its retries outlast the login timeout, HYT00.
    # Each is the same fault, and each must land as a retried lost connection.
    said = {
        "tienda_01": ("Login timeout expired",),
        "tienda_02": ("Login timeout expired",),
        "tienda_03": ("handshakes before login",),
        "tienda_04": ("handshakes before login", "TCP Provider", "Login timeout expired"),
    }
    for store_id, words in said.items():
        entry = ledger[store_id]
        assert (entry["estado"], entry["error_tipo"], entry["intentos"]) == (
            "fallido",
            "conexion",
            2,
        ), entry
        message = entry["error_mensaje"]
        assert any(said_words in message for said_words in words), message
        assert "ODBC Driver 18 for SQL Server" in entry["error_mensaje"]
        assert "not-a-real-password" not in entry["error_mensaje"]
    retried = [
        line["store"]
        for line in json_lines(result.stdout)
        if line.get("event") == "transient error; retrying the store from scratch"
    ]
    assert sorted(retried) == sorted(stores)
