"""A missing ODBC driver is a configuration error, found before any store is tried.

Through the real unixODBC driver manager: a driver name that is not registered (the default
SQL_ODBC_DRIVER, or a store's own ``driver``), and registered drivers whose library is gone or is
not a library (a private odbcinst.ini through ODBCSYSINI). Each must end the run with exit 2 and
one line naming the installed drivers -- not "is the VPN up?" three times per store.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pyodbc
import pytest
from etl_cli import PG_DRIVER, closed_port_store, run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    stores = tmp_path / "stores.toml"
    stores.write_text(
        closed_port_store("tienda_01") + closed_port_store("tienda_02"), encoding="utf-8"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))}
    return {
        **base,
        "ETL_STORES_FILE": str(stores),
        "DATABASE_PATH": str(tmp_path / "target.duckdb"),
        "SQL_USER": "etl",
        "SQL_PASS": "secret",
    }


def assert_config_error_before_any_store(result: subprocess.CompletedProcess[str], db: Path) -> str:
    code, stdout, stderr = result.returncode, result.stdout, result.stderr
    assert code == 2, stdout[-2000:] + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fluxion-etl: configuration error: ")
    assert "extract started" not in stdout and "VPN" not in stderr
    assert not db.exists()  # nothing was opened, let alone written
    return lines[0]


@pytest.mark.parametrize("command", ["run", "check"])
def test_an_unregistered_default_driver_names_the_installed_ones(
    env: dict[str, str], tmp_path: Path, command: str
) -> None:
    env["ETL_STORES_FILE"] = str(tmp_path / "plain.toml")
    Path(env["ETL_STORES_FILE"]).write_text(
        closed_port_store("tienda_01").replace(f'driver = "{PG_DRIVER}"\n', ""), encoding="utf-8"
    )
    env["SQL_ODBC_DRIVER"] = "ODBC Driver 99 for SQL Server"
    line = assert_config_error_before_any_store(
        run_cli([command], env, timeout=60), tmp_path / "target.duckdb"
    )
    assert "'ODBC Driver 99 for SQL Server' (used by tienda_01) is not installed" in line
    installed = pyodbc.drivers()
    assert installed, "this machine has no ODBC driver registered at all"
    assert f"installed drivers: {', '.join(installed)}" in line


def test_a_stores_own_driver_override_is_checked_too(env: dict[str, str], tmp_path: Path) -> None:
    stores = Path(env["ETL_STORES_FILE"])
    stores.write_text(
        closed_port_store("tienda_01")
        + closed_port_store("tienda_02").replace(PG_DRIVER, "PostgreSQL Unicod"),
        encoding="utf-8",
    )
    line = assert_config_error_before_any_store(
        run_cli(["run"], env, timeout=60), tmp_path / "target.duckdb"
    )
    assert "'PostgreSQL Unicod' (used by tienda_02) is not installed" in line
    assert "tienda_01" not in line  # its driver is fine


def test_a_registered_driver_whose_library_is_gone_or_broken_is_a_configuration_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    sysini = tmp_path / "odbc"
    sysini.mkdir()
    not_a_library = tmp_path / "libnotalib.so"
    not_a_library.write_text("not an ELF file\n", encoding="utf-8")
    (sysini / "odbcinst.ini").write_text(
        "[PostgreSQL Unicode]\nDriver=/nonexistent/psqlodbcw.so\n\n"
        f"[SQLite3]\nDriver={not_a_library}\n",
        encoding="utf-8",
    )
    Path(env["ETL_STORES_FILE"]).write_text(
        closed_port_store("tienda_01")
        + closed_port_store("tienda_02").replace(PG_DRIVER, "SQLite3"),
        encoding="utf-8",
    )
    line = assert_config_error_before_any_store(
        run_cli(["run"], {**env, "ODBCSYSINI": str(sysini)}, timeout=60),
        tmp_path / "target.duckdb",
    )
    assert "its library /nonexistent/psqlodbcw.so does not exist" in line
    assert f"its library {not_a_library} cannot be loaded" in line
    assert "installed drivers: PostgreSQL Unicode, SQLite3" in line
