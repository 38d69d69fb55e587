"""The PostgreSQL target's schema and ledger SQL: the same tables, columns and migrations as DuckDB.

The columns are the ones DuckDB's migrations create, from the same list
(:mod:`fluxion_etl.columns`), rendered in PostgreSQL's exact equivalents (``DECIMAL(18,3)`` is
``NUMERIC(18,3)``; ``VARCHAR`` stays ``VARCHAR``). Two kinds of time, as on DuckDB:
``fecha_extraccion`` (and the backend's dates) is the chain's naive wall-clock time, so it stays
``TIMESTAMP`` (the backend compares ``DATE(fecha_extraccion)`` with its ``CURRENT_DATE``); the
ledger's times are instants, so they are ``TIMESTAMPTZ`` (sessions run in UTC; fluxion hands
them back naive UTC, as DuckDB does).

Migrations carry DuckDB's numbers (``fluxion_schema_version`` means the same on both targets);
each runs once, in the run's opening transaction, under a transaction-level advisory lock so two
shards starting together do not race.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from fluxion_etl import columns
from fluxion_etl.contract import BACKEND_COLUMNS
from fluxion_etl.ledger import ETL_TIPO, LedgerEntry, ledger_row
from fluxion_etl.targets.migrations import apply_migrations
from fluxion_etl.targets.postgres.locks import take_migration_lock

#: Migration 1: the same tables as DuckDB's (:mod:`fluxion_etl.columns`), plus the index a
#: server needs: a store's snapshot is deleted and read by ``ubicacion_id``; without it every
#: publish and every per-store read scans the whole chain.
_MIGRATION_1 = "\n".join(
    [
        columns.create_table("inventario_raw", columns.INVENTARIO, columns.POSTGRES),
        "CREATE INDEX IF NOT EXISTS inventario_raw_ubicacion_idx ON inventario_raw (ubicacion_id);",
        columns.create_table(
            "etl_ejecuciones", columns.LEDGER, columns.POSTGRES, primary_key=columns.LEDGER_KEY
        ),
        columns.LAST_LOAD_VIEW,
    ]
)

#: Migration 2 (DuckDB's "backend contract"): the backend's columns, in the contract's types,
#: and the ledger's count of values the table's types could not hold (always 0 here: the
#: table is fluxion's own, in the contract's exact types; there is no old loader to adopt).
_MIGRATION_2 = "\n".join(
    [
        *(
            columns.add_column("inventario_raw", columns.Column(name, kind), columns.POSTGRES)
            for name, kind in BACKEND_COLUMNS.items()
        ),
        columns.add_column("etl_ejecuciones", columns.LEDGER_NULLED, columns.POSTGRES),
    ]
)

#: Migration 3 (the snapshot guard, guard.py): what it would have held back and the operator
#: published anyway, with the numbers; NULL when the guard had nothing to say.
_MIGRATION_3 = columns.add_column("etl_ejecuciones", columns.LEDGER_GUARD_NOTE, columns.POSTGRES)

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, _MIGRATION_1),
    (2, _MIGRATION_2),
    (3, _MIGRATION_3),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(
    cur: psycopg.Cursor[Any],
    schema: str,
    migrations: Sequence[tuple[int, str]] = MIGRATIONS,
) -> int:
    """Bring the schema to the last of ``migrations`` (default :data:`SCHEMA_VERSION`; the
    ``inventario_actual`` layout passes its ledger's own) inside the caller's transaction; return
    the version found before."""
    take_migration_lock(cur, schema)
    cur.execute(
        columns.create_table(
            "fluxion_schema_version", columns.SCHEMA_VERSION_COLUMNS, columns.POSTGRES, ["version"]
        )
    )
    applied = {int(row[0]) for row in cur.execute("SELECT version FROM fluxion_schema_version")}

    def apply(version: int, sql: str) -> None:
        cur.execute(sql.encode())  # several statements: no parameters, simple protocol
        cur.execute("INSERT INTO fluxion_schema_version VALUES (%s, %s)", [version, _utc(_now())])

    return apply_migrations(applied, migrations, apply)


def open_run(cur: psycopg.Cursor[Any], run_id: str, store_ids: Sequence[str], engine: str) -> int:
    """Record the run's stores as ``en_proceso``; close this run's stores' stale rows.

    Unlike DuckDB's single-run guard, other shards may be running now: only rows of the stores
    this run holds the advisory locks of can belong to a dead run, so only those are closed.
    """
    now = _utc(_now())
    cur.execute(
        """
        UPDATE etl_ejecuciones
        SET estado = 'interrumpido', fecha_fin = %s, error_tipo = 'interrumpido',
            error_mensaje = 'the run ended without closing its ledger (killed?)'
        WHERE estado = 'en_proceso' AND run_id <> %s AND ubicacion_id = ANY(%s)
        """,
        [now, run_id, list(store_ids)],
    )
    stale = cur.rowcount
    cur.executemany(
        "INSERT INTO etl_ejecuciones (run_id, etl_tipo, ubicacion_id, estado, fecha_inicio, "
        "intentos, motor) VALUES (%s, %s, %s, 'en_proceso', %s, 0, %s)",
        [[run_id, ETL_TIPO, store_id, now, engine] for store_id in store_ids],
    )
    return max(stale, 0)


def close_entry(
    cur: psycopg.Cursor[Any], entry: LedgerEntry, extra: Mapping[str, object] | None = None
) -> None:
    """Write the store's outcome over its ``en_proceso`` row (inserting it if missing), with the
    layout's ``extra`` columns (the ``inventario_actual`` layout's warehouse and cut texts)."""
    row = {
        **ledger_row(entry),
        "fecha_inicio": _utc(entry.started),
        "fecha_fin": _utc(entry.finished),
        "registros_valores_anulados": 0 if entry.state == "exitoso" else None,
        **(extra or {}),
    }
    updates = ", ".join(
        f"{name} = EXCLUDED.{name}" for name in row if name not in ("run_id", "ubicacion_id")
    )
    cur.execute(
        f"INSERT INTO etl_ejecuciones ({', '.join(row)}) "
        f"VALUES ({', '.join(['%s'] * len(row))}) "
        f"ON CONFLICT (run_id, ubicacion_id) DO UPDATE SET {updates}",
        list(row.values()),
    )


def store_status(cur: psycopg.Cursor[Any]) -> list[dict[str, object]]:
    """What :func:`fluxion_etl.targets.duckdb.status.store_status` returns (every ledger column of
    the last run, plus what the store serves), read from PostgreSQL."""
    cur.execute(
        """
        WITH last AS (
            SELECT DISTINCT ON (ubicacion_id) *
            FROM etl_ejecuciones WHERE etl_tipo = 'inventario'
            ORDER BY ubicacion_id, fecha_inicio DESC
        ),
        snapshots AS (
            SELECT ubicacion_id, batch_id, count(*) AS registros
            FROM inventario_raw GROUP BY ubicacion_id, batch_id
        ),
        served AS (
            SELECT s.ubicacion_id, sum(s.registros)::bigint AS registros,
                   max(e.fecha_fin) AS publicada
            FROM snapshots s
            LEFT JOIN etl_ejecuciones e
              ON e.run_id = s.batch_id AND e.ubicacion_id = s.ubicacion_id
             AND e.estado = 'exitoso'
            GROUP BY s.ubicacion_id
        )
        SELECT l.*, u.ultima_actualizacion,
               coalesce(v.registros, 0) AS registros_servidos, v.publicada AS fecha_publicacion
        FROM last l
        LEFT JOIN etl_ultima_carga u USING (ubicacion_id)
        LEFT JOIN served v USING (ubicacion_id)
        ORDER BY l.ubicacion_id
        """
    )
    names = [column.name for column in cur.description or ()]
    return [
        {name: _naive(value) for name, value in zip(names, row, strict=True)}
        for row in cur.fetchall()
    ]


def served_rows(cur: psycopg.Cursor[Any], store_id: str | None = None) -> dict[str, int]:
    """Rows each store (or just ``store_id``) serves now."""
    if store_id is None:
        cur.execute("SELECT ubicacion_id, count(*) FROM inventario_raw GROUP BY ubicacion_id")
    else:
        cur.execute(
            "SELECT ubicacion_id, count(*) FROM inventario_raw WHERE ubicacion_id = %s "
            "GROUP BY ubicacion_id",
            [store_id],
        )
    return {str(store): int(count) for store, count in cur.fetchall()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(moment: dt.datetime) -> dt.datetime:
    """fluxion's naive-UTC convention made explicit for a TIMESTAMPTZ column."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _naive(value: object) -> object:
    """A TIMESTAMPTZ read back as naive UTC (what the DuckDB target returns)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
