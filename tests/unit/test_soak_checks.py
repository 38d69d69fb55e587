"""The soak's invariants catch what they are there to catch (a clean soak proves nothing if the
checker could not fail): built on real DuckDB files, no services."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from fluxion_etl import ledger
from fluxion_etl.demo.postgres_source import PgServer
from fluxion_etl.demo.soak_chain import Chain, SoakStore, shifted
from fluxion_etl.demo.soak_checks import Invariants, RunOutcome

BASE = {"100001": Decimal("12.000"), "100002": Decimal("-3.000"), "100003": Decimal("0.000")}
STORE = SoakStore("tienda_02", "AV. BOLIVAR", "0202", "unused", BASE)


@pytest.fixture
def soak(tmp_path: Path) -> Invariants:
    chain = Chain(PgServer("127.0.0.1", 9, "nobody", "unused"), [STORE])  # never connected
    database = tmp_path / "target.duckdb"
    with duckdb.connect(str(database)) as con:
        ledger.migrate(con)
    return Invariants(chain, database, tmp_path / "staging")


def publish(db: Path, run_id: str, run: int, *, state: str = "exitoso", rows: bool = True) -> None:
    """What a run leaves: its ledger row and (when ``rows``) the store's rows of run ``run``."""
    at = dt.datetime(2026, 12, 1, 12, run)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "INSERT INTO etl_ejecuciones (run_id, etl_tipo, ubicacion_id, estado, fecha_inicio)"
            " VALUES (?, 'inventario', ?, ?, ?)",
            [run_id, STORE.id, state, at],
        )
        if rows:
            con.execute("DELETE FROM inventario_raw WHERE ubicacion_id = ?", [STORE.id])
            for code, quantity in BASE.items():
                insert_row(con, code, shifted(quantity, run), run_id)


def insert_row(con: duckdb.DuckDBPyConnection, code: str, quantity: Decimal, batch: str) -> None:
    con.execute(
        "INSERT INTO inventario_raw (ubicacion_id, ubicacion_nombre, tipo_ubicacion,"
        " codigo_producto, cantidad_actual, estado_stock, fecha_extraccion, batch_id)"
        " VALUES (?, 'AV. BOLIVAR', 'tienda', ?, ?, 'NORMAL', now()::TIMESTAMP, ?)",
        [STORE.id, code, quantity, batch],
    )


def test_a_clean_run_passes_every_check(soak: Invariants) -> None:
    publish(soak.database, "run-1", 1)
    assert soak.after_run(RunOutcome(1, 0, "none", None)) == []
    assert soak.checks["rows"] == 1 and soak.checks["exit_code"] == 1
    assert soak.holders[STORE.id] == ("run-1", 1)


def test_rows_of_two_runs_in_one_store_are_a_violation(soak: Invariants) -> None:
    publish(soak.database, "run-1", 1)
    soak.after_run(RunOutcome(1, 0, "none", None))
    publish(soak.database, "run-2", 2)
    with duckdb.connect(str(soak.database)) as con:  # one row of the older snapshot survives
        con.execute("DELETE FROM inventario_raw WHERE codigo_producto = '100001'")
        insert_row(con, "100001", shifted(BASE["100001"], 1), "run-1")
    messages = soak.after_run(RunOutcome(2, 0, "none", None))
    assert messages and all("rows are not run 2's" in m for m in messages)
    assert soak.violations["rows"] == 1 and soak.violations["holds_own_run"] == 1


def test_a_failed_store_must_keep_its_previous_rows(soak: Invariants) -> None:
    publish(soak.database, "run-1", 1)
    soak.after_run(RunOutcome(1, 0, "none", None))
    publish(soak.database, "run-2", 2, state="fallido")  # ...yet its rows were replaced
    messages = soak.after_run(RunOutcome(2, 1, "store_down", None))
    assert any("rows are not run 1's" in m for m in messages), messages


def test_an_exit_code_the_ledger_disagrees_with_is_a_violation(soak: Invariants) -> None:
    publish(soak.database, "run-1", 1, state="fallido", rows=False)
    (message,) = soak.after_run(RunOutcome(1, 0, "store_down", None))
    assert "exit 0 but the ledger says 1" in message


def test_a_row_left_en_proceso_after_a_later_run_opened_the_ledger_is_a_violation(
    soak: Invariants,
) -> None:
    publish(soak.database, "run-1", 1, state="en_proceso", rows=False)
    assert soak.after_run(RunOutcome(1, -9, "sigkill", None)) == []  # killed: its own rows
    publish(soak.database, "run-2", 2)
    (message,) = soak.after_run(RunOutcome(2, 0, "none", None))
    assert "left en_proceso" in message and "run-1" in message


def test_a_run_lock_still_held_and_a_left_staging_directory_are_violations(
    soak: Invariants,
) -> None:
    publish(soak.database, "run-1", 1)
    lock = soak.database.with_name(soak.database.name + ".run.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    (soak.staging / "fluxion-20261201T120000Z-abcdef-x").mkdir(parents=True)
    try:
        messages = soak.after_run(RunOutcome(1, 0, "none", None))
    finally:
        os.close(fd)
    assert soak.violations["run_lock"] == 1 and soak.violations["staging"] == 1, messages


def test_an_empty_snapshot_of_an_emptied_store_is_that_runs_rows(soak: Invariants) -> None:
    publish(soak.database, "run-1", 1, rows=False)
    with duckdb.connect(str(soak.database)) as con:
        con.execute("DELETE FROM inventario_raw")
    assert soak.after_run(RunOutcome(1, 0, "emptied", STORE.id)) == []
