"""The PostgreSQL target's publish, on a real server: binary COPY carries every value exactly, and
the vacuum after a run keeps the table near its live size without making anyone wait.

Real parts: a ready database is a real DuckDB file holding the view ``inventario`` (the shape
:func:`fluxion_etl.run.transform.transform_store` leaves); the target is a fresh schema of the
session's target database, written through :class:`PostgresTarget` (psycopg + pgpq) and read
back by a second psycopg session, as the backend would.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from target_db import postgres_target

from fluxion_etl.contract import CONTRACT_COLUMNS
from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_harness.postgres_source import PgServer

pytestmark = pytest.mark.postgres

#: The ready view's columns: the contract's, less ``created_at`` (the publish adds it).
READY_COLUMNS = {name: kind for name, kind in CONTRACT_COLUMNS.items() if name != "created_at"}
STORE = "tienda_99"


@pytest.fixture
def target(pg_server: PgServer, pg_target_database: str) -> Iterator[PostgresTarget]:
    with postgres_target(pg_server, pg_target_database) as made:
        made.open_run("run-0", [STORE], "arrow-odbc")
        yield made


def reader(target: PostgresTarget) -> psycopg.Connection[Any]:
    """A backend's session on the target (its own connection, autocommit)."""
    return target.connect(autocommit=True)


def base_row(code: str) -> dict[str, object]:
    """A row with a plain value in every column; tests override what they are about."""
    row: dict[str, object] = {}
    for name, kind in READY_COLUMNS.items():
        if kind.startswith("DECIMAL"):
            row[name] = Decimal("1")
        elif kind == "TIMESTAMP":
            row[name] = dt.datetime(2026, 12, 1, 8, 0)
        elif kind == "INTEGER":
            row[name] = 7
        elif kind == "BOOLEAN":
            row[name] = True
        else:
            row[name] = f"{name}-{code}"
    row.update(ubicacion_id=STORE, codigo_producto=code)
    return row


def ready_database(path: Path, rows: list[dict[str, object]]) -> Path:
    """A ready database: the view ``inventario`` over a table typed as the contract says."""
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE filas ("
            + ", ".join(f"{name} {kind}" for name, kind in READY_COLUMNS.items())
            + ")"
        )
        if rows:
            names = list(READY_COLUMNS)
            con.executemany(
                f"INSERT INTO filas VALUES ({', '.join('?' * len(names))})",
                [[row[name] for name in names] for row in rows],
            )
        con.execute("CREATE VIEW inventario AS SELECT * FROM filas")
    return path


def entry(run_id: str) -> LedgerEntry:
    now = utcnow()
    return LedgerEntry(run_id, STORE, "exitoso", now, now, attempts=1, engine="arrow-odbc")


def published(target: PostgresTarget) -> dict[str, dict[str, object]]:
    with reader(target) as con, con.cursor() as cur:
        cur.execute("SELECT * FROM inventario_raw WHERE ubicacion_id = %s", [STORE])
        names = [column.name for column in cur.description or ()]
        return {str(row[3]): dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def test_binary_copy_publishes_every_value_exactly(
    target: PostgresTarget, tmp_path: Path
) -> None:
    extremes = base_row("MAX")
    extremes.update(
        cantidad_actual=Decimal("999999999999999.999"),  # NUMERIC(18,3)'s largest
        costo_unitario_actual=Decimal("-12345678901234.5678"),  # NUMERIC(18,4)
        impuesto_porcentaje=Decimal("9999999.99"),  # NUMERIC(9,2)
        valor_inventario_actual=Decimal("0.01"),
        cantidad_disponible=Decimal("-0.0001"),  # NUMERIC(12,4)
        fecha_extraccion=dt.datetime(2026, 12, 1, 23, 59, 59, 999999),
        descripcion_producto="Café ñandú — 日本語 🍌",
        marca='tab\there, "quoted", back\\slash,\nnew line',
        dias_sin_movimiento=-2147483648,
        activo=False,
    )
    empties = base_row("NULLS")
    for name in ("codigo_barras", "categoria", "costo_unitario_actual", "precio_venta_actual",
                 "margen_porcentaje", "fecha_ultima_entrada", "dias_vencimiento", "server_ip",
                 "es_perecedero"):  # fmt: skip
        empties[name] = None
    empties.update(descripcion_producto="", cantidad_actual=Decimal("-0.001"))
    rows = [extremes, empties, *(base_row(f"P{i:05}") for i in range(300))]
    ready = ready_database(tmp_path / "ready.duckdb", rows)

    before = utcnow()
    recorded = target.publish(STORE, ready, entry("run-1"))

    got = published(target)
    assert set(got) == {str(row["codigo_producto"]) for row in rows}
    for row in rows:
        back = got[str(row["codigo_producto"])]
        assert {name: back[name] for name in READY_COLUMNS} == row
    assert got["NULLS"]["descripcion_producto"] == ""  # empty text is not NULL
    assert got["NULLS"]["codigo_barras"] is None and got["NULLS"]["es_perecedero"] is None
    assert got["MAX"]["cantidad_actual"].as_tuple().exponent == -3
    stamps = {back["created_at"] for back in got.values()}
    assert len(stamps) == 1 and None not in stamps  # one publish, one created_at
    with reader(target) as con:
        kinds = dict(
            con.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'etl_ejecuciones'::regclass AND attnum > 0"
            ).fetchall()
        )
        finished = con.execute(
            "SELECT fecha_fin FROM etl_ejecuciones WHERE run_id = 'run-1'"
        ).fetchone()
    assert kinds["fecha_fin"] == "timestamp with time zone"
    assert finished is not None and finished[0].tzinfo is not None
    assert finished[0].astimezone(dt.UTC).replace(tzinfo=None) == recorded.finished >= before


def test_an_empty_ready_store_replaces_the_snapshot_with_no_rows(
    target: PostgresTarget, tmp_path: Path
) -> None:
    target.publish(STORE, ready_database(tmp_path / "a.duckdb", [base_row("A")]), entry("run-1"))
    assert set(published(target)) == {"A"}
    target.publish(STORE, ready_database(tmp_path / "b.duckdb", []), entry("run-2"))
    assert published(target) == {}
    with reader(target) as con:
        state = con.execute("SELECT estado FROM etl_ejecuciones WHERE run_id = 'run-2'").fetchone()
    assert state == ("exitoso",)


def table_bytes(target: PostgresTarget) -> int:
    with reader(target) as con:
        row = con.execute("SELECT pg_total_relation_size('inventario_raw')").fetchone()
    assert row is not None
    return int(row[0])


def vacuums(target: PostgresTarget) -> int:
    with reader(target) as con:
        row = con.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'inventario_raw'::regclass"
        ).fetchone()
    return int(row[0]) if row else 0


def test_the_vacuum_after_each_run_keeps_the_table_near_its_live_size(
    target: PostgresTarget, tmp_path: Path
) -> None:
    """30 runs of a 2,000-row store: without reclaiming, the dead snapshots pile up (autovacuum
    looks once a minute at best); with it, the table stays under 3x its size after one run."""
    ready = ready_database(tmp_path / "ready.duckdb", [base_row(f"P{i}") for i in range(2000)])
    sizes = []
    for number in range(1, 31):
        target.publish(STORE, ready, entry(f"run-{number}"))
        target.reclaim()
        sizes.append(table_bytes(target))
    assert sizes[-1] < 3 * sizes[0], [size // 1024 for size in sizes]
    assert vacuums(target) >= 25  # an autovacuum pass may have taken a turn (SKIP_LOCKED)
    assert len(published(target)) == 2000


def test_the_vacuum_waits_for_no_reader_or_writer_and_skips_a_table_already_being_vacuumed(
    target: PostgresTarget, tmp_path: Path
) -> None:
    ready = ready_database(tmp_path / "ready.duckdb", [base_row(f"P{i}") for i in range(500)])
    target.publish(STORE, ready, entry("run-1"))
    target.publish(STORE, ready, entry("run-2"))
    before = vacuums(target)
    # a backend reading in a long transaction, and another shard's publish left open
    with reader(target) as backend, reader(target) as shard:
        backend.autocommit = shard.autocommit = False
        backend.execute("SELECT count(*) FROM inventario_raw").fetchone()
        shard.execute("DELETE FROM inventario_raw WHERE ubicacion_id = 'otra'")
        started = time.monotonic()
        target.reclaim()
        assert time.monotonic() - started < 3
        assert vacuums(target) == before + 1
        backend.rollback()
        shard.rollback()
    # a vacuum already running (its lock held here): this one is skipped, not queued
    with reader(target) as other:
        other.autocommit = False
        other.execute("LOCK TABLE inventario_raw IN SHARE UPDATE EXCLUSIVE MODE")
        finished = threading.Event()
        worker = threading.Thread(target=lambda: (target.reclaim(), finished.set()))
        worker.start()
        assert finished.wait(3), "the vacuum queued behind the lock"
        other.rollback()
        worker.join()
    assert vacuums(target) == before + 1
