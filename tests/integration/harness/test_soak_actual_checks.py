"""The soak's ``inventario_actual`` invariants catch what they are there to catch (a clean soak
proves nothing if the checker could not fail): the adapter (:mod:`fluxion_harness.soak_actual`)
on a real PostgreSQL database with the backend's own tables and the other feed's locations, each
violation constructed by hand the way a broken publish would leave it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from fluxion_etl.targets.postgres import schema as pgschema
from fluxion_etl.targets.postgres.actual import LEDGER_MIGRATIONS
from fluxion_harness.backend_reader import ReaderFigures, request
from fluxion_harness.postgres_source import PgServer
from fluxion_harness.soak import reader_violations
from fluxion_harness.soak_actual import ActualSoakTarget
from fluxion_harness.soak_chain import Chain, SoakStore, shifted
from fluxion_harness.soak_checks import Invariants, RunOutcome
from fluxion_harness.soak_target import open_summary

BASE = {"100001": Decimal("12.000"), "100002": Decimal("-3.000"), "100003": Decimal("0.000")}
STORE = SoakStore("tienda_02", "AV. BOLIVAR", "0202", "unused", BASE)
WAREHOUSE = "TIENDA-02"


@pytest.fixture
def soak(pg_server: PgServer, tmp_path: Path) -> Iterator[Invariants]:
    target = ActualSoakTarget.own_database(pg_server)
    try:
        with target.connect() as con:
            con.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(target.ledger_schema)))
            with con.transaction(), con.cursor() as cur:
                pgschema.migrate(cur, target.ledger_schema, LEDGER_MIGRATIONS)
            con.execute(
                "INSERT INTO public.ubicaciones (id, nombre) VALUES (%s, %s)", [STORE.id, "X"]
            )
            con.execute(
                "INSERT INTO public.almacenes (codigo, nombre, ubicacion_id) VALUES (%s, 'X', %s)",
                [WAREHOUSE, STORE.id],
            )
        target.before_run(0)  # the other feed writes its locations
        chain = Chain(PgServer("127.0.0.1", 9, "nobody", "unused"), [STORE])  # never connected
        yield Invariants(chain, target, tmp_path / "staging")
    finally:
        target.drop()


def actual(soak: Invariants) -> ActualSoakTarget:
    assert isinstance(soak.target, ActualSoakTarget)
    return soak.target


def ledger_row(soak: Invariants, run_id: str, state: str) -> None:
    with actual(soak).connect() as con:
        write_ledger(con, run_id, state)


def write_ledger(con: psycopg.Connection[Any], run_id: str, state: str) -> None:
    con.execute(
        "INSERT INTO etl_ejecuciones (run_id, etl_tipo, ubicacion_id, estado, fecha_inicio,"
        " almacen_codigo) VALUES (%s, 'inventario', %s, %s, now(), %s)",
        [run_id, STORE.id, state, WAREHOUSE],
    )


def publish(
    soak: Invariants, run_id: str, run: int, *, history: bool = True, one_transaction: bool = True
) -> None:
    """What the layout's publish does for the store: history copy, delete, insert, and its ledger
    row, in one transaction (unless told otherwise)."""
    target = actual(soak)
    at = dt.datetime(2026, 12, 1, 12, run)
    with target.connect() as con:
        with con.transaction():
            if history:
                con.execute(
                    "INSERT INTO public.inventario_historico (ubicacion_id, producto_id,"
                    " almacen_codigo, cantidad, fecha_snapshot) SELECT ubicacion_id, producto_id,"
                    " almacen_codigo, cantidad, fecha_actualizacion FROM public.inventario_actual"
                    " WHERE ubicacion_id = %s",
                    [STORE.id],
                )
            con.execute("DELETE FROM public.inventario_actual WHERE ubicacion_id = %s", [STORE.id])
            for code, quantity in BASE.items():
                con.execute(
                    "INSERT INTO public.inventario_actual (ubicacion_id, producto_id,"
                    " almacen_codigo, cantidad, fecha_actualizacion) VALUES (%s, %s, %s, %s, %s)",
                    [STORE.id, code, WAREHOUSE, shifted(quantity, run), at],
                )
            if one_transaction:
                write_ledger(con, run_id, "exitoso")
        if not one_transaction:
            write_ledger(con, run_id, "exitoso")


def test_clean_publishes_pass_every_check_and_fill_the_history(soak: Invariants) -> None:
    publish(soak, "run-1", 1)
    assert soak.after_run(RunOutcome(1, 0, "none", None)) == []
    publish(soak, "run-2", 2)
    assert soak.after_run(RunOutcome(2, 0, "none", None)) == []
    assert soak.holders[STORE.id] == ("run-2", 2)
    assert soak.checks["history"] == 2 and soak.checks["other_feed"] == 2
    assert sum(soak.violations.values()) == 0


def test_rows_committed_apart_from_their_ledger_row_are_not_the_runs(soak: Invariants) -> None:
    publish(soak, "run-1", 1, one_transaction=False)
    messages = soak.after_run(RunOutcome(1, 0, "none", None))
    assert any("rows are not run 1's" in m and "xmin" in m for m in messages), messages
    assert soak.violations["rows"] == 1


def test_a_publish_without_its_history_copy_is_a_violation(soak: Invariants) -> None:
    publish(soak, "run-1", 1)
    soak.after_run(RunOutcome(1, 0, "none", None))
    publish(soak, "run-2", 2, history=False)
    messages = soak.after_run(RunOutcome(2, 0, "none", None))
    assert any("inventario_historico holds 0 snapshots" in m for m in messages), messages
    assert soak.violations["history"] == 1 and soak.violations["rows"] == 0


def test_history_written_for_a_failed_store_is_a_violation(soak: Invariants) -> None:
    publish(soak, "run-1", 1)
    soak.after_run(RunOutcome(1, 0, "none", None))
    ledger_row(soak, "run-2", "fallido")
    with actual(soak).connect() as con:  # the history copy of a publish rolled back only half
        con.execute(
            "INSERT INTO public.inventario_historico (ubicacion_id, producto_id, almacen_codigo,"
            " cantidad, fecha_snapshot) SELECT ubicacion_id, producto_id, almacen_codigo,"
            " cantidad, fecha_actualizacion FROM public.inventario_actual"
        )
    messages = soak.after_run(RunOutcome(2, 1, "store_down", None))
    assert any("(fallido): inventario_historico holds 1 snapshots" in m for m in messages), messages
    assert soak.violations["history"] == 1


def test_a_change_to_the_other_feeds_rows_is_a_violation(soak: Invariants) -> None:
    publish(soak, "run-1", 1)
    with actual(soak).connect() as con:
        con.execute(
            "UPDATE public.inventario_actual SET cantidad = cantidad + 1"
            " WHERE ubicacion_id = 'klk_tienda_01' AND producto_id = 'KLK00003'"
        )
        con.execute("UPDATE public.productos SET descripcion = 'X' WHERE codigo = '100001'")
    messages = soak.after_run(RunOutcome(1, 0, "none", None))
    (message,) = [m for m in messages if "other feed" in m]
    assert "inventario_actual" in message and "productos (shared codes)" in message
    assert soak.violations["other_feed"] == 1


def test_the_other_feed_filling_of_null_columns_is_allowed(soak: Invariants) -> None:
    """fluxion may fill a shared product's NULL columns (the layout's contract)."""
    publish(soak, "run-1", 1)
    with actual(soak).connect() as con:
        con.execute("UPDATE public.productos SET marca = 'M' WHERE codigo = '100001'")
    assert soak.after_run(RunOutcome(1, 0, "none", None)) == []


def reader_request(soak: Invariants, schema: str = "public") -> ReaderFigures:
    """One request of the backend-like reader on the layout's tables."""
    target = actual(soak)
    env = {**target.env(), "DATABASE_SCHEMA": schema}
    figures = ReaderFigures()
    summary = open_summary(target.url, env, figures, max_wait=10, retry_max=0.05)
    try:
        request(summary, {STORE.id: len(BASE), **target.other_locations()}, figures)
    finally:
        summary.close()
    return figures


def test_the_reader_sees_one_publish_whole_and_flags_rows_of_two(soak: Invariants) -> None:
    publish(soak, "run-1", 1)
    with actual(soak).connect() as con:
        con.execute(
            "INSERT INTO public.productos (id, codigo, descripcion, categoria)"
            " SELECT c, c, c, 'X' FROM unnest(%s::text[]) AS c"
            " ON CONFLICT DO NOTHING",
            [list(BASE)],
        )
    clean = reader_request(soak)
    assert clean.requests == 1 and clean.anomalies == 0, clean.anomaly_samples
    with actual(soak).connect() as con:  # one row rewritten by another transaction
        con.execute(
            "UPDATE public.inventario_actual SET cantidad = cantidad"
            " WHERE ubicacion_id = %s AND producto_id = '100001'",
            [STORE.id],
        )
    torn = reader_request(soak)
    assert torn.half_published == 1 and torn.anomaly_samples[0]["batches"] == 2


def test_an_error_the_backend_would_show_is_counted_and_a_violation(soak: Invariants) -> None:
    figures = reader_request(soak, schema="no_such_schema")  # the tables are not there
    assert figures.requests == 0 and figures.errors == 1
    assert "UndefinedTable" in str(figures.anomaly_samples[0]["error"])
    assert reader_violations(figures.summary(), empty_published=False) == 1
