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

from fluxion_etl.targets.duckdb import schema
from fluxion_harness.postgres_source import PgServer
from fluxion_harness.soak import reader_violations
from fluxion_harness.soak_chain import Chain, SoakStore, shifted
from fluxion_harness.soak_checks import Invariants, RunOutcome
from fluxion_harness.soak_target import DuckDBSoakTarget

BASE = {"100001": Decimal("12.000"), "100002": Decimal("-3.000"), "100003": Decimal("0.000")}
STORE = SoakStore("tienda_02", "AV. BOLIVAR", "0202", "unused", BASE)


@pytest.fixture
def soak(tmp_path: Path) -> Invariants:
    chain = Chain(PgServer("127.0.0.1", 9, "nobody", "unused"), [STORE])  # never connected
    database = tmp_path / "target.duckdb"
    with duckdb.connect(str(database)) as con:
        schema.migrate(con)
    return Invariants(chain, DuckDBSoakTarget(database), tmp_path / "staging")


def db(soak: Invariants) -> Path:
    assert isinstance(soak.target, DuckDBSoakTarget)
    return soak.target.path


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
    publish(db(soak), "run-1", 1)
    assert soak.after_run(RunOutcome(1, 0, "none", None)) == []
    assert soak.checks["rows"] == 1 and soak.checks["exit_code"] == 1
    assert soak.holders[STORE.id] == ("run-1", 1)


def test_rows_of_two_runs_in_one_store_are_a_violation(soak: Invariants) -> None:
    publish(db(soak), "run-1", 1)
    soak.after_run(RunOutcome(1, 0, "none", None))
    publish(db(soak), "run-2", 2)
    with duckdb.connect(str(db(soak))) as con:  # one row of the older snapshot survives
        con.execute("DELETE FROM inventario_raw WHERE codigo_producto = '100001'")
        insert_row(con, "100001", shifted(BASE["100001"], 1), "run-1")
    messages = soak.after_run(RunOutcome(2, 0, "none", None))
    assert messages and all("rows are not run 2's" in m for m in messages)
    assert soak.violations["rows"] == 1 and soak.violations["holds_own_run"] == 1


def test_a_failed_store_must_keep_its_previous_rows(soak: Invariants) -> None:
    publish(db(soak), "run-1", 1)
    soak.after_run(RunOutcome(1, 0, "none", None))
    publish(db(soak), "run-2", 2, state="fallido")  # ...yet its rows were replaced
    messages = soak.after_run(RunOutcome(2, 1, "store_down", None))
    assert any("rows are not run 1's" in m for m in messages), messages


def test_an_exit_code_the_ledger_disagrees_with_is_a_violation(soak: Invariants) -> None:
    publish(db(soak), "run-1", 1, state="fallido", rows=False)
    (message,) = soak.after_run(RunOutcome(1, 0, "store_down", None))
    assert "exit 0 but the ledger says 1" in message


def test_a_row_left_en_proceso_after_a_later_run_opened_the_ledger_is_a_violation(
    soak: Invariants,
) -> None:
    publish(db(soak), "run-1", 1, state="en_proceso", rows=False)
    assert soak.after_run(RunOutcome(1, -9, "sigkill", None)) == []  # killed: its own rows
    publish(db(soak), "run-2", 2)
    (message,) = soak.after_run(RunOutcome(2, 0, "none", None))
    assert "left en_proceso" in message and "run-1" in message


def test_a_run_lock_still_held_and_a_left_staging_directory_are_violations(
    soak: Invariants,
) -> None:
    publish(db(soak), "run-1", 1)
    lock = db(soak).with_name(db(soak).name + ".run.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    (soak.staging / "fluxion-20261201T120000Z-abcdef-x").mkdir(parents=True)
    try:
        messages = soak.after_run(RunOutcome(1, 0, "none", None))
    finally:
        os.close(fd)
    assert soak.violations["run_lock"] == 1 and soak.violations["staging"] == 1, messages


def test_exit_4_is_right_only_when_another_run_held_a_store(soak: Invariants) -> None:
    publish(db(soak), "run-1", 1)
    assert soak.after_run(RunOutcome(1, 0, "none", None)) == []
    assert soak.after_run(RunOutcome(2, 4, "target_store_locked", None, locked_out=True)) == []
    messages = soak.after_run(RunOutcome(3, 4, "sigkill", None))
    assert any("a lock outlived its run" in m for m in messages), messages
    assert soak.violations["run_lock"] == 1
    missed = soak.after_run(RunOutcome(4, 1, "target_store_locked", None, locked_out=True))
    assert any("yet another run held a store" in m for m in missed), missed
    assert soak.violations["run_lock"] == 2


def test_an_empty_snapshot_of_an_emptied_store_is_that_runs_rows(soak: Invariants) -> None:
    publish(db(soak), "run-1", 1, rows=False)
    with duckdb.connect(str(db(soak))) as con:
        con.execute("DELETE FROM inventario_raw")
    assert soak.after_run(RunOutcome(1, 0, "emptied", STORE.id)) == []


def test_a_killed_runs_staging_may_wait_for_a_run_that_gets_as_far_as_staging(
    soak: Invariants,
) -> None:
    publish(db(soak), "run-1", 1, state="en_proceso", rows=False)
    (soak.staging / "fluxion-run-1-x").mkdir(parents=True)
    assert soak.after_run(RunOutcome(1, -9, "sigkill", None)) == []
    # refused at the start (no ledger rows of its own): it never reached the staging area
    assert soak.after_run(RunOutcome(2, 1, "target_down", None)) == []
    publish(db(soak), "run-3", 3)  # this one got going, and should have swept it
    messages = soak.after_run(RunOutcome(3, 0, "none", None))
    assert any("1 staging directories left" in m for m in messages), messages
    assert soak.violations["staging"] == 1


def test_the_backend_readers_errors_are_violations_like_a_half_published_store() -> None:
    seen = {"errors": 0, "half_published": 0, "missing": 0}
    assert reader_violations(seen, empty_published=False) == 0
    assert reader_violations({**seen, "errors": 2}, empty_published=False) == 2
    assert reader_violations({**seen, "half_published": 1}, empty_published=True) == 1
    assert reader_violations({**seen, "missing": 3}, empty_published=True) == 0  # an empty publish
    assert reader_violations({}, empty_published=False) == 1  # the reader died: no figures
