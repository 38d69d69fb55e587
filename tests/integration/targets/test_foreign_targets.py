"""Targets ``run`` will not write: a text file, a SQLite database, a foreign ``etl_ejecuciones``,
an ``inventario_raw`` it cannot adopt. ``run``, ``check`` and ``status`` each refuse them the
same way (exit 2, one line, no traceback), touch nothing, leave no ``.run.lock`` beside them and
never reach the network (DuckDB's extension auto-install is off in every connection fluxion
opens). Over SQLite demo stores: no store server needed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from fluxion_etl import duckdb_offline
from fluxion_etl.demo.runner import build_demo_stores, write_stores_file

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stores_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("foreign_targets")
    path = directory / "stores.toml"
    write_stores_file(build_demo_stores(directory / "stores", count=1, products=100), path)
    return path


def make_target(path: Path, kind: str) -> None:
    if kind == "text file":
        path.write_text("id;name\n1;not a database\n")
    elif kind == "SQLite database":
        with sqlite3.connect(path) as con:
            con.execute("CREATE TABLE inventario_raw (ubicacion_id TEXT)")
    elif kind == "foreign etl_ejecuciones":  # another program's table of that name
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE TABLE etl_ejecuciones (id INTEGER, proceso VARCHAR, ok BOOLEAN)")
            con.execute("INSERT INTO etl_ejecuciones VALUES (1, 'ventas', true)")
    else:  # an inventario_raw with a NOT NULL column fluxion does not fill and no default
        with duckdb.connect(str(path)) as con:
            con.execute(
                "CREATE TABLE inventario_raw (ubicacion_id VARCHAR, codigo_producto VARCHAR, "
                "lote VARCHAR NOT NULL)"
            )


KINDS = ["text file", "SQLite database", "foreign etl_ejecuciones", "unadoptable inventario_raw"]
EXPECTED = {
    "text file": "is not a DuckDB database file",
    "SQLite database": "is a SQLite database",
    "foreign etl_ejecuciones": "etl_ejecuciones is not fluxion's ledger",
    "unadoptable inventario_raw": "column lote is NOT NULL without a default",
}


@pytest.mark.parametrize("command", ["run", "check", "status"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_target_run_would_refuse_is_exit_2_in_one_line_for_every_command(
    stores_file: Path, tmp_path: Path, kind: str, command: str
) -> None:
    db = tmp_path / "fluxion.duckdb"
    make_target(db, kind)
    before = db.read_bytes()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_", "DATABASE"))},
        "ETL_STORES_FILE": str(stores_file),
        "DATABASE_PATH": str(db),
        "HOME": str(home),
    }
    result = subprocess.run(
        [sys.executable, "-m", "fluxion_etl", command],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert EXPECTED[kind] in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if command == "check":  # refused before any store was asked
        assert result.stdout == ""
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fluxion.duckdb", "home"]
    assert list(home.iterdir()) == []  # no ~/.duckdb/extensions


def test_no_duckdb_connection_of_fluxion_can_download_an_extension(tmp_path: Path) -> None:
    """DuckDB itself, asked to open a SQLite file: with fluxion's settings it refuses at once
    instead of downloading sqlite_scanner (about 3 s and ~/.duckdb/extensions/ otherwise)."""
    sqlite = tmp_path / "store.sqlite"
    with sqlite3.connect(sqlite) as con:
        con.execute("CREATE TABLE t (a)")
    home = tmp_path / "home"
    home.mkdir()
    probe = (
        "import sys, duckdb\n"
        "from fluxion_etl import duckdb_offline\n"
        "try:\n"
        "    duckdb_offline.connect(sys.argv[1], read_only=True)\n"
        "except duckdb.Error as exc:\n"
        "    print(type(exc).__name__, str(exc).splitlines()[0])\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", probe, str(sqlite)],
        env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("IOException"), result.stdout
    assert time.monotonic() - started < 10
    assert list(home.iterdir()) == []
    assert duckdb_offline.OFFLINE["autoinstall_known_extensions"] is False


def test_every_duckdb_connection_in_the_package_goes_through_the_offline_settings() -> None:
    """The one place that calls ``duckdb.connect`` is duckdb_offline.py."""
    callers = [
        path.relative_to(REPO).as_posix()
        for path in sorted((REPO / "src").rglob("*.py"))
        if "duckdb.connect(" in path.read_text(encoding="utf-8")
    ]
    assert callers == ["src/fluxion_etl/duckdb_offline.py"]
