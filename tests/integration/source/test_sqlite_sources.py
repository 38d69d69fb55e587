"""SQLite sources (the demo's, through the real SQLite3 ODBC driver) are only ever read: opened
read-only, never created. A store whose file is missing fails without a 0-byte database
appearing at its path; a path with ``% #`` and spaces is read as it is (``; { } =`` are refused
before any connection: tests/unit/source/test_connection_values.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from etl_cli import ledger_rows, published_rows, run_cli

from fluxion_etl.demo.runner import build_demo_stores, write_stores_file


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
