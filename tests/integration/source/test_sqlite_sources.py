"""SQLite sources (the demo's, through the real SQLite3 ODBC driver) are only ever read: opened
read-only, never created. A store whose file is missing fails without a 0-byte database
appearing at its path; a path with ``% #`` and spaces is read as it is (``; { } =`` are refused
before any connection: tests/unit/source/test_connection_values.py)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from etl_cli import ledger_rows, published_rows, run_cli

from fluxion_etl.config import Settings
from fluxion_etl.demo.runner import build_demo_stores, write_stores_file
from fluxion_etl.errors import StoreError
from fluxion_etl.source.engines import get_engine
from fluxion_etl.source.engines.base import FetchRequest
from fluxion_etl.stores import Store


def test_a_missing_sqlite_store_fails_and_no_file_is_created(tmp_path: Path) -> None:
    built = build_demo_stores(tmp_path / "built", count=2, products=100)
    odd = tmp_path / "odd dir 50%" / "#1.sqlite"  # what a URI would trip on
    odd.parent.mkdir()
    shutil.copy(built[0].database, odd)
    missing = tmp_path / "gone" / "tienda.sqlite"
    missing.parent.mkdir()
    stores = [
        built[0].__class__(**{**vars(built[0]), "database": str(odd)}),
        built[1].__class__(**{**vars(built[1]), "database": str(missing)}),
    ]
    stores_file = tmp_path / "stores.toml"
    write_stores_file(stores, stores_file)
    db = tmp_path / "fluxion.duckdb"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_", "DATABASE"))},
        "ETL_STORES_FILE": str(stores_file),
        "DATABASE_PATH": str(db),
        "ETL_MAX_RETRIES": "3",  # a missing file is not retried
    }
    result = run_cli(["run"], env)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr
    assert not missing.exists()  # was a 0-byte database created by the driver
    assert list(missing.parent.iterdir()) == []
    rows = ledger_rows(db)
    assert rows[stores[0].id]["estado"] == "exitoso"
    assert len(published_rows(db, stores[0].id)) > 0
    failed = rows[stores[1].id]
    assert failed["estado"] == "fallido", failed
    assert failed["error_tipo"] == "login", failed  # the store's database (file) is wrong
    assert "never creates it" in failed["error_mensaje"]
    assert failed["intentos"] == 1
    assert sorted(p.name for p in odd.parent.iterdir()) == ["#1.sqlite"]  # nothing beside it


#: 300,000 generated rows; the 250,000th fails (SQLite's integer overflow). A driver that reads
#: the whole result before the first row fails before any batch; one that streams hands over
#: the first 249,999 rows' batches first.
_FAILS_LATE = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
SELECT i, CASE WHEN i = 250000 THEN abs(-9223372036854775808) ELSE ? END AS almacen FROM n
"""


@pytest.mark.parametrize("engine", ["arrow", "pyodbc"])
def test_the_sqlite_driver_streams_the_bound_query(tmp_path: Path, engine: str) -> None:
    """Memory bounded whatever the store's size (issue 25): the SQLite driver streams rows only
    for a query without a bound parameter, so the warehouse code is bound elsewhere. Rows
    arrive before the result is complete, and they carry the code as it was bound (quote and
    all: it never became SQL text)."""
    database = tmp_path / "tienda.sqlite"
    sqlite3.connect(database).close()
    database.chmod(0o444)  # the connection's own temp table needs no write to the file
    warehouse = "02'; --"
    store = Store("tienda_02", "T", "tienda", "", 1, str(database), warehouse, driver="SQLite3")
    request = FetchRequest.for_store(
        store, Settings.from_env({"ETL_BATCH_SIZE": "1000"}), None, _FAILS_LATE
    )
    rows = 0
    with pytest.raises(StoreError, match="(?i)overflow"):
        for batch in get_engine(engine).batches(request):
            assert set(batch.column("almacen").to_pylist()) == {warehouse}
            rows += batch.num_rows
    assert rows >= 200_000
