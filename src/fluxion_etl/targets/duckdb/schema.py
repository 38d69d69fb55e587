"""The DuckDB target's schema (versioned migrations) and its ledger SQL.

Migrations are numbered and applied in order inside one transaction by the runner both targets
share (:mod:`fluxion_etl.targets.migrations`); the applied versions are recorded in
``fluxion_schema_version``, so a newer release opens a file written by an older one. The ledger
rows themselves are mapped in :mod:`fluxion_etl.ledger`; here is how DuckDB writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb

from fluxion_etl import columns
from fluxion_etl.errors import ConfigError
from fluxion_etl.ledger import ETL_TIPO, LedgerEntry, ledger_row, utcnow
from fluxion_etl.targets.duckdb.adoption import adopt_inventario, refuse_unadoptable
from fluxion_etl.targets.migrations import apply_migrations


def _backend_contract(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 2: the backend's columns of ``inventario_raw`` (adopting an old-loader table),
    and the ledger's count of values the adopted table's types could not hold."""
    adopt_inventario(con)
    con.execute(columns.add_column("etl_ejecuciones", columns.LEDGER_NULLED, columns.DUCKDB))


#: Migration 1: fluxion's tables and the view (the columns: :mod:`fluxion_etl.columns`).
_MIGRATION_1 = "\n".join(
    [
        columns.create_table("inventario_raw", columns.INVENTARIO, columns.DUCKDB),
        columns.create_table(
            "etl_ejecuciones", columns.LEDGER, columns.DUCKDB, primary_key=columns.LEDGER_KEY
        ),
        columns.LAST_LOAD_VIEW,
    ]
)

#: Each step is SQL text or a function of the connection (for a step that must look first).
MIGRATIONS: tuple[tuple[int, str | Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    (1, _MIGRATION_1),
    (2, _backend_contract),
    # The snapshot guard (guard.py): what it would have held back and the operator published
    # anyway (--accept-shrink / ETL_ACCEPT_SHRINK), with the numbers; NULL when the guard had
    # nothing to say.
    (3, columns.add_column("etl_ejecuciones", columns.LEDGER_GUARD_NOTE, columns.DUCKDB)),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _applied(con: duckdb.DuckDBPyConnection) -> set[int]:
    """The migrations recorded in the file (none when it has no ``fluxion_schema_version``)."""
    present = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_catalog = current_database() AND table_name = 'fluxion_schema_version'"
    ).fetchone()
    if not present or not present[0]:  # no error to catch: it would abort the transaction
        return set()
    rows = con.execute("SELECT version FROM fluxion_schema_version").fetchall()
    return {int(row[0]) for row in rows}


def refuse_foreign_tables(con: duckdb.DuckDBPyConnection) -> None:
    """ConfigError (one line, exit 2) when the file holds a table fluxion would write but cannot:
    an ``etl_ejecuciones`` that is not fluxion's ledger (another program's table of that name),
    or an ``inventario_raw`` migration 2 would refuse to adopt. Reads only, so ``check`` asks it
    of the file opened read-only, and the migrations ask it first, before writing anything."""
    kinds = dict(
        con.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_catalog = current_database() "
            "AND table_name IN ('etl_ejecuciones', 'inventario_raw')"
        ).fetchall()
    )
    ledger = kinds.get("etl_ejecuciones")
    if ledger is not None:
        have = {
            str(name)
            for (name,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'etl_ejecuciones' "
                "AND schema_name = 'main' AND database_name = current_database()"
            ).fetchall()
        }
        missing = [column.name for column in columns.LEDGER if column.name not in have]
        if ledger != "BASE TABLE" or missing:
            what = f"a {ledger}" if ledger != "BASE TABLE" else f"without {', '.join(missing)}"
            raise ConfigError(
                f"etl_ejecuciones is not fluxion's ledger ({what}); fluxion never alters a "
                "table it did not create: rename that table, or point DATABASE_PATH at another "
                "file"
            )
    if "inventario_raw" in kinds and 2 not in _applied(con):
        refuse_unadoptable(con)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the target's schema to :data:`SCHEMA_VERSION`; return the version found before."""
    refuse_foreign_tables(con)
    con.execute(
        columns.create_table(
            "fluxion_schema_version", columns.SCHEMA_VERSION_COLUMNS, columns.DUCKDB, ["version"]
        )
    )
    applied = {
        int(row[0]) for row in con.execute("SELECT version FROM fluxion_schema_version").fetchall()
    }

    def apply(version: int, step: str | Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        if callable(step):
            step(con)
        else:
            con.execute(step)
        con.execute("INSERT INTO fluxion_schema_version VALUES (?, ?)", [version, utcnow()])

    return apply_migrations(applied, MIGRATIONS, apply)


def open_run(
    con: duckdb.DuckDBPyConnection, run_id: str, store_ids: Sequence[str], engine: str
) -> int:
    """Record the run's stores as ``en_proceso``; mark stale ones of dead runs ``interrumpido``.

    The single-run guard guarantees no other run is alive, so an ``en_proceso`` row left by an
    earlier run means that run was killed (SIGKILL, OOM) before it could finish its ledger.
    Returns how many stale rows were closed.
    """
    now = utcnow()
    stale = con.execute(
        """
        UPDATE etl_ejecuciones
        SET estado = 'interrumpido', fecha_fin = ?, error_tipo = 'interrumpido',
            error_mensaje = 'the run ended without closing its ledger (killed?)'
        WHERE estado = 'en_proceso' AND run_id <> ?
        RETURNING 1
        """,
        [now, run_id],
    ).fetchall()
    con.executemany(
        "INSERT INTO etl_ejecuciones (run_id, etl_tipo, ubicacion_id, estado, fecha_inicio, "
        "intentos, motor) VALUES (?, ?, ?, 'en_proceso', ?, 0, ?)",
        [[run_id, ETL_TIPO, store_id, now, engine] for store_id in store_ids],
    )
    return len(stale)


def close_entry(
    con: duckdb.DuckDBPyConnection, entry: LedgerEntry, nulled: int | None = None
) -> None:
    """Write the store's outcome over its ``en_proceso`` row (inserting it if missing); a
    published store's ``nulled``: its rows with a value the adopted table's type could not hold
    (published as NULL, see :func:`fluxion_etl.targets.duckdb.adoption.copy_snapshots`).

    An ``UPDATE`` of the row :func:`open_run` wrote, rather than ``INSERT OR REPLACE``, which
    costs four times as much in DuckDB (4 against 1 ms, under the write lock of every publish).
    """
    row = ledger_row(entry)
    if nulled is not None:
        row["registros_valores_anulados"] = nulled
    key = ("run_id", "ubicacion_id")
    values = {name: value for name, value in row.items() if name not in key}
    updated = con.execute(
        f"UPDATE etl_ejecuciones SET {', '.join(f'{name} = ?' for name in values)} "
        "WHERE run_id = ? AND ubicacion_id = ? RETURNING 1",
        [*values.values(), entry.run_id, entry.store_id],
    ).fetchall()
    if not updated:
        con.execute(
            f"INSERT INTO etl_ejecuciones ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )


def last_runs(con: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    """The latest ledger row per store, for ``fluxion-etl status``: every column, so a file an
    older release wrote (not migrated yet) reads too, and a newer column (``guardia_aceptada``)
    is there when the file has it."""
    cursor = con.execute(
        """
        SELECT e.*, u.ultima_actualizacion
        FROM etl_ejecuciones e
        LEFT JOIN etl_ultima_carga u USING (ubicacion_id)
        WHERE e.etl_tipo = 'inventario'
        QUALIFY row_number() OVER (PARTITION BY e.ubicacion_id ORDER BY e.fecha_inicio DESC) = 1
        ORDER BY e.ubicacion_id
        """
    )
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
