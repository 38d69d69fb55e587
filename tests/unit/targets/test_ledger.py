"""Schema migrations and ledger rows on a real (in-memory) DuckDB."""

import datetime as dt
import json

import duckdb
import pytest

from fluxion_etl import ledger
from fluxion_etl.ledger import LedgerEntry, QualityCounters
from fluxion_etl.metrics import NAMESPACE, emf_line
from fluxion_etl.targets.duckdb import schema
from fluxion_etl.targets.duckdb.schema import SCHEMA_VERSION, close_entry, migrate, open_run


def test_migrate_is_idempotent_and_records_the_version() -> None:
    con = duckdb.connect()
    assert migrate(con) == 0
    assert migrate(con) == SCHEMA_VERSION
    assert con.execute("SELECT max(version) FROM fluxion_schema_version").fetchone() == (
        SCHEMA_VERSION,
    )
    tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    assert {"inventario_raw", "etl_ejecuciones", "etl_ultima_carga"} <= tables


def test_a_file_from_a_newer_release_is_refused() -> None:
    con = duckdb.connect()
    migrate(con)
    con.execute("INSERT INTO fluxion_schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
    with pytest.raises(RuntimeError, match="newer than this release"):
        migrate(con)


def test_open_run_closes_rows_left_open_by_a_killed_run() -> None:
    con = duckdb.connect()
    migrate(con)
    open_run(con, "old-run", ["tienda_02", "tienda_03"], "arrow")
    assert open_run(con, "new-run", ["tienda_02"], "arrow") == 2
    states = dict(
        con.execute("SELECT run_id || '/' || ubicacion_id, estado FROM etl_ejecuciones").fetchall()
    )
    assert states == {
        "old-run/tienda_02": "interrumpido",
        "old-run/tienda_03": "interrumpido",
        "new-run/tienda_02": "en_proceso",
    }


def test_close_entry_replaces_the_open_row_with_the_outcome() -> None:
    con = duckdb.connect()
    migrate(con)
    open_run(con, "r1", ["tienda_02"], "pyodbc")
    started = ledger.utcnow()
    counters = QualityCounters(10, 7, 1, 2, 3, 1, 0, 0)
    close_entry(
        con,
        LedgerEntry("r1", "tienda_02", "exitoso", started, started + dt.timedelta(seconds=2.5),
                    attempts=2, engine="pyodbc", counters=counters),
    )  # fmt: skip
    row = con.execute(
        "SELECT estado, duracion_segundos, registros_extraidos, registros_cargados, intentos, "
        "registros_duplicados, registros_stock_negativo, motor FROM etl_ejecuciones"
    ).fetchall()
    assert row == [("exitoso", 2.5, 10, 7, 2, 2, 3, "pyodbc")]
    assert schema.last_runs(con)[0]["ultima_actualizacion"] is not None


def test_close_entry_inserts_the_row_when_no_open_row_exists_and_leaves_other_runs_alone() -> None:
    con = duckdb.connect()
    migrate(con)
    open_run(con, "r1", ["tienda_02"], "arrow")
    started = ledger.utcnow()
    close_entry(
        con,
        LedgerEntry("r2", "tienda_02", "fallido", started, started, attempts=1, engine="arrow",
                    error_tipo="conexion", error_message="down"),
    )  # fmt: skip
    rows = con.execute(
        "SELECT run_id, estado, error_tipo FROM etl_ejecuciones ORDER BY run_id"
    ).fetchall()
    assert rows == [("r1", "en_proceso", None), ("r2", "fallido", "conexion")]


def test_emf_line_is_a_cloudwatch_embedded_metric_document() -> None:
    document = json.loads(emf_line({"RunSucceeded": 1, "DurationSeconds": 12.5}, "prod", "r1"))
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE == "Fluxion/ETL"
    assert directive["Dimensions"] == [["Environment"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "RunSucceeded": "Count",
        "DurationSeconds": "Seconds",
    }
    assert (document["Environment"], document["RunSucceeded"], document["DurationSeconds"]) == (
        "prod", 1, 12.5,
    )  # fmt: skip
    with pytest.raises(ValueError, match="unknown metric"):
        emf_line({"TaskStoppedReason": 1}, "prod", "r1")
