"""The target seam: the same run, rows, ledger and status on DuckDB and on PostgreSQL.

Real parts: the PostgreSQL stand-in for the stores (psqlODBC), the same server's separate target
database through psycopg, DuckDB files, the CLI in a child process. Expected rows come from the
data generator's oracle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from etl_cli import json_lines, run_cli
from target_db import POSTGRES, TargetReader

from fluxion_etl.contract import CONTRACT_COLUMNS
from fluxion_etl.run.clean_sql import DECIMAL_TYPES
from fluxion_harness.postgres_source import PgServer

pytestmark = pytest.mark.postgres


def test_a_run_publishes_exactly_the_oracles_rows_on_either_target(
    target_env: dict[str, str], pg_stores: Sequence[Any], pg_server: PgServer
) -> None:
    result = run_cli(["run"], target_env)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    assert json_lines(result.stdout)[-1]["event"] == "ETL completed successfully"
    target = TargetReader(target_env, pg_server)
    run_id = json_lines(result.stdout)[-1]["run_id"]
    per_store = [line for line in json_lines(result.stdout) if "_aws" in line and "Store" in line]
    assert {line["Store"] for line in per_store} == {store.id for store in pg_stores}
    assert all(0 <= line["StoreSnapshotAgeSeconds"] < 600 for line in per_store)
    ledger = target.ledger(run_id)
    for store in pg_stores:
        rows = target.rows(store.id)
        assert set(rows) == set(store.data.expected), store.id
        for code, want in store.data.expected.items():
            for column in DECIMAL_TYPES:
                got = rows[code][column]
                assert got == getattr(want, column), (store.id, code, column)
                assert got is None or isinstance(got, Decimal)
            assert rows[code]["descripcion_producto"] == want.descripcion_producto
            assert rows[code]["batch_id"] == run_id
            assert rows[code]["activo"] is True and rows[code]["created_at"] is not None
        assert ledger[store.id]["estado"] == "exitoso"
        assert ledger[store.id]["registros_cargados"] == len(rows)
    if target.kind == POSTGRES:  # the run reclaimed the replaced snapshots' dead rows
        vacuumed = [line for line in json_lines(result.stdout) if line.get("phase") == "vacuum"]
        assert [line["event"] for line in vacuumed] == ["dead rows reclaimed"], vacuumed


def test_the_postgres_target_declares_the_exact_types(
    pg_target_env: dict[str, str], pg_server: PgServer
) -> None:
    assert run_cli(["run"], pg_target_env).returncode == 0
    target = TargetReader(pg_target_env, pg_server)
    assert target.column_types() == {
        column: _postgres_spelling(kind) for column, kind in CONTRACT_COLUMNS.items()
    }
    ledger = target.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = 'etl_ejecuciones'",
        [pg_target_env["DATABASE_SCHEMA"]],
    )
    ledger_types = {r["column_name"]: r["data_type"] for r in ledger}
    assert ledger_types["fecha_inicio"] == "timestamp with time zone"
    assert ledger_types["fecha_fin"] == "timestamp with time zone"
    versions = target.query("SELECT version FROM fluxion_schema_version ORDER BY version")
    assert [r["version"] for r in versions] == list(range(1, len(versions) + 1))
    view = target.query("SELECT * FROM etl_ultima_carga ORDER BY ubicacion_id")
    assert len(view) == 3 and all(r["ultima_actualizacion"] is not None for r in view)


def _postgres_spelling(duckdb_type: str) -> str:
    """How PostgreSQL's format_type() names the contract's DuckDB type."""
    spelled = {
        "VARCHAR": "character varying",
        "TIMESTAMP": "timestamp without time zone",
        "INTEGER": "integer",
        "BOOLEAN": "boolean",
    }
    if duckdb_type in spelled:
        return spelled[duckdb_type]
    return duckdb_type.replace("VARCHAR", "character varying").replace("DECIMAL", "numeric")


def test_status_reads_either_target(
    target_env: dict[str, str], pg_stores: Sequence[Any], pg_server: PgServer
) -> None:
    assert run_cli(["run"], target_env).returncode == 0
    result = run_cli(["status", "--json"], target_env)
    assert result.returncode == 0, result.stderr
    rows = {row["ubicacion_id"]: row for row in json.loads(result.stdout)}
    target = TargetReader(target_env, pg_server)
    for store in pg_stores:
        assert rows[store.id]["estado"] == "exitoso"
        assert rows[store.id]["registros_servidos"] == len(target.rows(store.id))
        assert rows[store.id]["fecha_publicacion"] is not None
    if target.kind == POSTGRES:
        assert target_env["PGPASSWORD"] not in result.stdout + result.stderr
