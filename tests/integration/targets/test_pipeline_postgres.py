"""`fluxion-etl run` end to end: PostgreSQL (stand-in for SQL Server) through psqlODBC -> DuckDB.

Real parts only: the PostgreSQL server started by scripts/test.sh, the real psqlODBC driver,
the installed CLI in a subprocess, real DuckDB files. The expected rows come from the data
generator's own oracle (what the business rules select), not from the pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from etl_cli import (
    closed_port_store,
    json_lines,
    published_as_expected,
    run_cli,
    write_stores,
)

from fluxion_cfn.stack import render
from stack_metrics import emitted_metrics, stack_metrics

pytestmark = pytest.mark.postgres



def test_run_publishes_exactly_the_rows_the_business_rules_select(
    etl_env: dict[str, str], pg_stores: Sequence[Any]
) -> None:
    result = run_cli(["run"], etl_env)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    lines = json_lines(result.stdout)
    assert lines[-1]["event"] == "ETL completed successfully"
    assert {line.get("run_id") for line in lines if "run_id" in line} == {lines[-1]["run_id"]}
    emf = [line for line in lines if "_aws" in line]
    run, *per_store = emf
    assert (run["RunSucceeded"], run["StoresFailed"], run["StoresStale"]) == (1, 0, 0)
    assert [doc["Store"] for doc in per_store] == [store.id for store in pg_stores]
    for doc, store in zip(per_store, pg_stores, strict=True):
        assert doc["StoreRowsPublished"] == len(store.data.expected)
        assert doc["StoreFailed"] == 0 and doc["StoreDurationSeconds"] > 0
        assert 0 <= doc["StoreSnapshotAgeSeconds"] < 60  # published seconds ago
    # Every metric the stack's alarms and dashboard refer to is one this run really emitted.
    referred = stack_metrics(json.loads(render("json")))
    assert referred <= emitted_metrics(emf), referred - emitted_metrics(emf)

    db = Path(etl_env["DATABASE_PATH"])
    for store in pg_stores:
        rows = published_as_expected(db, store)
        for code, want in store.data.expected.items():
            got = rows[code]
            negative = want.cantidad_actual < 0
            assert got["estado_stock"] == ("SIN_STOCK" if negative else got["estado_stock"])
            if want.costo_unitario_actual is not None:
                value = (want.cantidad_actual * want.costo_unitario_actual).quantize(
                    Decimal("0.01")
                )
                assert abs(got["valor_inventario_actual"] - value) <= Decimal("0.01")


def test_published_text_and_types_survive_exactly(
    etl_env: dict[str, str], pg_stores: Sequence[Any]
) -> None:
    assert run_cli(["run"], etl_env).returncode == 0
    with duckdb.connect(etl_env["DATABASE_PATH"], read_only=True) as con:
        texts = " | ".join(
            row[0]
            for row in con.execute(
                "SELECT DISTINCT concat_ws(' ', descripcion_producto, marca, presentacion, "
                "categoria) FROM inventario_raw"
            ).fetchall()
        )
        for needle in ("1/2 KG", "50% GRASA", "P&G", "CAFÉ", "Ñ"):
            assert needle in texts, needle
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'inventario_raw'"
            ).fetchall()
        )
        assert types["cantidad_actual"] == "DECIMAL(18,3)"
        assert types["costo_unitario_actual"] == "DECIMAL(18,4)"
        assert types["valor_inventario_actual"] == "DECIMAL(18,2)"
        dupes = con.execute(
            "SELECT count(*) FROM (SELECT ubicacion_id, codigo_producto FROM inventario_raw "
            "GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
        assert dupes == (0,)
        negatives = con.execute(
            "SELECT count(*) FROM inventario_raw WHERE cantidad_actual < 0"
        ).fetchone()
    want_negative = sum(
        1 for s in pg_stores for row in s.data.expected.values() if row.cantidad_actual < 0
    )
    assert negatives == (want_negative,) and want_negative > 0


def test_both_engines_publish_identical_tables(etl_env: dict[str, str], tmp_path: Path) -> None:
    arrow_db, pyodbc_db = tmp_path / "arrow.duckdb", tmp_path / "pyodbc.duckdb"
    for engine, db in (("arrow", arrow_db), ("pyodbc", pyodbc_db)):
        result = run_cli(["run", "--db", str(db)], {**etl_env, "ETL_ENGINE": engine})
        assert result.returncode == 0, result.stdout[-2000:]
    with duckdb.connect(str(arrow_db)) as con:
        con.execute(f"ATTACH '{pyodbc_db}' AS other (READ_ONLY)")
        columns = "* EXCLUDE (batch_id, fecha_extraccion, id, created_at)"
        only_arrow = con.execute(
            f"SELECT count(*) FROM (SELECT {columns} FROM inventario_raw "
            f"EXCEPT ALL SELECT {columns} FROM other.inventario_raw)"
        ).fetchone()
        only_pyodbc = con.execute(
            f"SELECT count(*) FROM (SELECT {columns} FROM other.inventario_raw "
            f"EXCEPT ALL SELECT {columns} FROM inventario_raw)"
        ).fetchone()
        total = con.execute("SELECT count(*) FROM inventario_raw").fetchone()
        described = [
            con.execute(f"DESCRIBE {table}").fetchall()
            for table in ("inventario_raw", "other.inventario_raw")
        ]
        engines = con.execute("SELECT DISTINCT motor FROM other.etl_ejecuciones").fetchall()
    assert total is not None and total[0] > 0
    assert only_arrow == (0,) and only_pyodbc == (0,)
    assert described[0] == described[1]
    assert engines == [("pyodbc",)]


def test_ledger_records_each_store_and_reruns_replace_the_snapshot(
    etl_env: dict[str, str], pg_stores: Sequence[Any]
) -> None:
    first = run_cli(["run"], etl_env)
    second = run_cli(["run", "--stores", pg_stores[0].id], etl_env)
    assert (first.returncode, second.returncode) == (0, 0)
    with duckdb.connect(etl_env["DATABASE_PATH"], read_only=True) as con:
        ledger = con.execute(
            "SELECT run_id, ubicacion_id, estado, registros_extraidos, registros_cargados, "
            "registros_stock_negativo, intentos, error_tipo FROM etl_ejecuciones "
            "ORDER BY fecha_inicio, ubicacion_id"
        ).fetchall()
        counts = dict(
            con.execute(
                "SELECT ubicacion_id, count(*) FROM inventario_raw GROUP BY ubicacion_id"
            ).fetchall()
        )
        batches = dict(
            con.execute(
                "SELECT ubicacion_id, count(DISTINCT batch_id) FROM inventario_raw GROUP BY ALL"
            ).fetchall()
        )
    assert len(ledger) == len(pg_stores) + 1
    assert {row[2] for row in ledger} == {"exitoso"}
    assert len({row[0] for row in ledger}) == 2
    for store in pg_stores:
        expected = store.data.expected
        assert counts[store.id] == len(expected)  # the re-run replaced, did not append
        assert batches[store.id] == 1
        rows = [row for row in ledger if row[1] == store.id]
        negatives = sum(1 for row in expected.values() if row.cantidad_actual < 0)
        assert all(row[4] == len(expected) and row[5] == negatives for row in rows)
        assert all(row[3] >= row[4] and row[6] == 1 and row[7] is None for row in rows)

    status = run_cli(["status", "--json"], etl_env)
    assert status.returncode == 0
    by_store = {row["ubicacion_id"]: row for row in json.loads(status.stdout)}
    assert set(by_store) == {store.id for store in pg_stores}
    assert all(
        row["estado"] == "exitoso" and row["ultima_actualizacion"] for row in by_store.values()
    )
    assert all(0 <= row["snapshot_age_seconds"] < 300 for row in by_store.values())
    assert not any(row["stale"] for row in by_store.values())
    # The ledger says the first store last published two days ago: status flags it stale.
    with duckdb.connect(etl_env["DATABASE_PATH"]) as con:
        con.execute(
            "UPDATE etl_ejecuciones SET fecha_fin = fecha_fin - INTERVAL 2 DAY "
            "WHERE ubicacion_id = ?",
            [pg_stores[0].id],
        )
    aged = run_cli(["status", "--json"], {**etl_env, "ETL_STALE_AFTER_SECONDS": "86400"})
    rows = {row["ubicacion_id"]: row for row in json.loads(aged.stdout)}
    old = rows.pop(pg_stores[0].id)
    assert old["stale"] is True and 2 * 86400 <= old["snapshot_age_seconds"] < 2 * 86400 + 300
    assert not any(row["stale"] for row in rows.values())


def test_an_unreachable_store_fails_alone_and_the_run_is_partial(
    etl_env: dict[str, str], pg_stores: Sequence[Any], pg_server: Any, tmp_path: Path
) -> None:
    write_stores(etl_env, (pg_stores, pg_server), extra=closed_port_store())
    result = run_cli(["run"], {**etl_env, "ETL_MAX_RETRIES": "1"})
    assert result.returncode == 3, result.stdout[-2000:]
    with duckdb.connect(etl_env["DATABASE_PATH"], read_only=True) as con:
        states = dict(
            con.execute(
                "SELECT ubicacion_id, estado || '/' || coalesce(error_tipo, '') "
                "FROM etl_ejecuciones"
            ).fetchall()
        )
    assert states.pop("tienda_99") == "fallido/conexion"
    assert set(states.values()) == {"exitoso/"}
    assert pg_server.password not in result.stdout + result.stderr
    # Never published: it is stale and its document has no age, only the failure.
    run, *per_store = [line for line in json_lines(result.stdout) if "_aws" in line]
    assert (run["StoresFailed"], run["StoresStale"]) == (1, 1)
    (down,) = [doc for doc in per_store if doc["Store"] == "tienda_99"]
    assert (down["StoreFailed"], down["StoreRowsPublished"]) == (1, 0)
    assert "StoreSnapshotAgeSeconds" not in down
    status = run_cli(["status", "--json"], etl_env)
    assert status.returncode == 0, status.stderr
    flagged = {row["ubicacion_id"]: row["stale"] for row in json.loads(status.stdout)}
    assert flagged.pop("tienda_99") is True and not any(flagged.values())
    table = run_cli(["status"], etl_env)
    (line,) = [line for line in table.stdout.splitlines() if "tienda_99" in line]
    assert "never STALE" in line


def test_configuration_errors_exit_2_before_touching_anything(
    etl_env: dict[str, str], tmp_path: Path
) -> None:
    cases = [
        {"ETL_TIENDAS": "tienda_77"},
        {"ETL_BATCH_SIZE": "many"},
        {"ETL_STORES_FILE": str(tmp_path / "missing.toml")},
        {"SQL_USER": "", "SQL_PASS": ""},
    ]
    for overrides in cases:
        result = run_cli(["run"], {**etl_env, **overrides})
        assert result.returncode == 2, (overrides, result.stderr)
        assert result.stderr.startswith("fluxion-etl: configuration error:")
        assert len(result.stderr.strip().splitlines()) == 1
    assert not Path(etl_env["DATABASE_PATH"]).exists()
    unset = {k: v for k, v in etl_env.items() if k != "ETL_STORES_FILE"}
    assert run_cli(["run"], unset).returncode == 2


def test_check_reports_each_store(
    etl_env: dict[str, str], pg_stores: Sequence[Any], pg_server: Any
) -> None:
    ok = run_cli(["check"], etl_env)
    assert ok.returncode == 0, ok.stdout
    for store in pg_stores:
        assert store.id in ok.stdout
    bad_login = run_cli(["check"], {**etl_env, "SQL_PASS": "wrong-password"})
    assert bad_login.returncode == 1
    assert "login refused" in bad_login.stdout and "wrong-password" not in bad_login.stdout
