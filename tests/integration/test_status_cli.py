"""`fluxion-etl status` after a store failed: the failed run, and the snapshot the target still
serves for that store and since when. Over SQLite demo stores: no store server needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import duckdb

from fluxion_etl.demo.runner import build_demo_stores, write_stores_file


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fluxion_etl", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_status_shows_what_a_failed_store_still_serves_and_since_when(tmp_path: Path) -> None:
    stores = build_demo_stores(tmp_path / "stores", count=2, products=150)
    stores_file = tmp_path / "stores.toml"
    db = tmp_path / "target.duckdb"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))},
        "ETL_STORES_FILE": str(stores_file),
        "DATABASE_PATH": str(db),
        "COLUMNS": "200",
    }
    write_stores_file(stores, stores_file)
    assert cli("run", env=env).returncode == 0
    with duckdb.connect(str(db), read_only=True) as con:
        served, published = con.execute(
            "SELECT (SELECT count(*) FROM inventario_raw WHERE ubicacion_id = 'tienda_01'), "
            "(SELECT fecha_fin FROM etl_ejecuciones WHERE ubicacion_id = 'tienda_01')"
        ).fetchone()

    gone = replace(stores[0], database=str(tmp_path / "unmounted" / "tienda_01.sqlite"))
    write_stores_file([gone, stores[1]], stores_file)
    failed = cli("run", env={**env, "ETL_MAX_RETRIES": "1"})
    assert failed.returncode == 3, failed.stdout[-2000:]

    status = cli("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    by_store = {row["ubicacion_id"]: row for row in json.loads(status.stdout)}
    row = by_store["tienda_01"]
    assert row["estado"] == "fallido" and row["registros_cargados"] == 0
    assert row["registros_servidos"] == served > 0
    assert row["fecha_publicacion"] == str(published)
    assert by_store["tienda_02"]["estado"] == "exitoso"
    assert by_store["tienda_02"]["fecha_publicacion"] > row["fecha_publicacion"]

    table = cli("status", env=env)
    assert table.returncode == 0, table.stderr
    # The row's first line (a long error wraps onto more lines, which may name the store too)
    (line,) = [line for line in table.stdout.splitlines() if line.lstrip().startswith("tienda_01")]
    assert "fallido" in line and f"{served:,}" in line and str(published)[:19] in line
