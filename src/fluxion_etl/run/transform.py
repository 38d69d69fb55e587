"""Transform: one store's extract -> the exact rows of ``inventario_raw``, plus counters.

Two parts, so that almost nothing is left to do once the (slow, network-bound) fetch ends:

* :class:`~fluxion_etl.run.clean.RowCleanup` (``sql/clean.sql``) -- everything that looks at one row
  at a time: text clean-up, upper-cased product codes, exact decimals, derived fields, flagging
  numbers that are not numbers. The staging step applies it to each chunk while the engine fetches
  the next one, so its cost hides behind the fetch, and the staged file already holds the published
  values. A store that fits in one chunk has no fetch left for it to hide behind: it is staged as
  fetched and cleaned here, in the run's DuckDB, by the same SQL.
* :class:`Transformer` (:func:`transform_store` for one store) -- what needs the whole store:
  which rows lose the de-duplication (``sql/duplicates.sql``), the store's constants, the
  counters. It writes them to the store's *ready database*, a small DuckDB file whose view
  ``inventario`` (``sql/transform.sql``) reads the staged rows, so the publish step is one
  ``INSERT ... SELECT`` from that view and the write lock is held for the copy alone. Nothing is
  rewritten after the fetch.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from fluxion_etl import duckdb_offline, sql
from fluxion_etl.contract import (
    DEFAULT_TIMEZONE,
    StockThresholds,
    local_naive,
)
from fluxion_etl.ledger import QualityCounters
from fluxion_etl.run.clean_sql import CATALOG_COLUMNS, CLEAN_MACRO
from fluxion_etl.run.staging_area import StagedFile
from fluxion_etl.sql import TABLE_ROW_GROUP_ROWS
from fluxion_etl.stores import Store


@dataclass(frozen=True)
class Transformed:
    path: Path
    """The ready database: attach it and copy its view ``inventario``."""
    rows: Path
    """The cleaned rows that view reads (the staged file, moved next to it)."""
    counters: QualityCounters


class Transformer:
    """The run's transforms, in one in-memory DuckDB shared by the workers (a cursor each).

    Each store's ready database is attached to it, written and detached. A DuckDB of its own per
    store cost ~20 ms of CPU to start and ~20 ms more to run the same statements on two threads
    of its own (benchmarks/fleet_ab.py, 21 stores on two cores: CPU is what the fleet waits for).
    ``memory_limit`` and the two threads are for all the transforms running at once; DuckDB
    spills to ``temp_directory`` (the staging area) beyond it.
    """

    def __init__(self, temp_directory: Path, memory_limit: str = "192MB") -> None:
        self._db = duckdb_offline.connect(
            ":memory:",
            config={
                "threads": 2,
                "memory_limit": memory_limit,
                "temp_directory": str(temp_directory),
            },
        )
        self._db.execute(CLEAN_MACRO)
        self._names = itertools.count()

    def transform(
        self,
        staged: StagedFile,
        ready: Path,
        store: Store,
        run_id: str,
        extracted_at: dt.datetime,
        *,
        thresholds: StockThresholds | None = None,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> Transformed:
        """Make ``ready`` (a DuckDB file) publish ``staged`` for ``store``; return the counters.

        ``staged`` comes from :func:`fluxion_etl.run.stage.stage_batches`, cleaned row by row
        already or (a store of one chunk) cleaned here. Its cleaned rows go to
        ``<ready>.rows.parquet``, because the ready database's view reads them: that file lives as
        long as the staging area, and is removed with it. ``thresholds`` (the store's, default
        10/100/20) grade ``estado_stock``; ``fecha_extraccion`` is ``extracted_at`` in the chain's
        ``timezone``, naive, as the backend compares it with its own ``CURRENT_DATE``. Safe to call
        from several threads at once.
        """
        thresholds = thresholds or StockThresholds()
        rows = ready.with_name(ready.name + ".rows.parquet")
        ready.unlink(missing_ok=True)
        # the view's names resolve in its own database wherever it is attached (the publish
        # attaches it as ``ready``), so it is created here exactly as in a file of its own
        name = f"ready_{next(self._names)}"
        con = self._db.cursor()
        try:
            if staged.cleaned:
                os.replace(staged.path, rows)
            else:
                _clean_fetched(con, staged.path, rows)
                staged.path.unlink()
            con.execute(f"ATTACH {sql.literal(str(ready))} AS {name}")
            try:
                con.execute(f"USE {name}")
                counters = _write_ready(
                    con, rows, store, run_id, extracted_at, thresholds, timezone
                )
            finally:  # detaching writes the file and lets it go, as closing its own DuckDB did
                con.execute("USE memory")
                con.execute(f"DETACH {name}")
        finally:
            con.close()
        return Transformed(ready, rows, counters)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Transformer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _clean_fetched(con: duckdb.DuckDBPyConnection, fetched: Path, cleaned: Path) -> None:
    """Clean the rows of ``fetched`` (a store of one chunk, as fetched) into ``cleaned``: the
    same ``sql/clean.sql`` as :class:`RowCleanup`, in one ``COPY`` from file to file.

    The catalog texts are cleaned row by row here: a few thousand rows are too few for
    RowCleanup's clean-each-distinct-value-once to pay, and Arrow's round trip would cost more
    than the clean-up (28 against 45 ms of CPU for a 3,700-row store). Needs
    :data:`CLEAN_MACRO` in ``con``'s database, and ``con`` to itself (a temporary view).
    """
    catalog = ", ".join(f"fluxion_clean({name}) AS {name}" for name in CATALOG_COLUMNS)
    con.execute(
        f"CREATE TEMP VIEW extract_batch AS SELECT * REPLACE ({catalog}) "
        f"FROM read_parquet({sql.literal(str(fetched))})"
    )
    try:
        con.execute(
            f"COPY ({sql.load('clean.sql')}) TO {sql.literal(str(cleaned))} "
            f"(FORMAT parquet, ROW_GROUP_SIZE {TABLE_ROW_GROUP_ROWS})"
        )
    finally:
        con.execute("DROP VIEW extract_batch")


def transform_store(
    staged: StagedFile,
    ready: Path,
    store: Store,
    run_id: str,
    extracted_at: dt.datetime,
    *,
    thresholds: StockThresholds | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> Transformed:
    """:meth:`Transformer.transform` of one store, in a DuckDB of its own (tests, the demo)."""
    with Transformer(ready.parent) as transformer:
        return transformer.transform(
            staged, ready, store, run_id, extracted_at, thresholds=thresholds, timezone=timezone
        )


def _write_ready(
    con: duckdb.DuckDBPyConnection,
    rows: Path,
    store: Store,
    run_id: str,
    extracted_at: dt.datetime,
    thresholds: StockThresholds,
    timezone: str,
) -> QualityCounters:
    """The ready database's tables and view, in ``con``'s current database; its counters."""
    con.execute(
        """
        CREATE TABLE store_run AS SELECT
            CAST($ubicacion_id AS VARCHAR) AS ubicacion_id,
            CAST($ubicacion_nombre AS VARCHAR) AS ubicacion_nombre,
            CAST($tipo_ubicacion AS VARCHAR) AS tipo_ubicacion,
            CAST($fecha_extraccion AS TIMESTAMP) AS fecha_extraccion,
            CAST($batch_id AS VARCHAR) AS batch_id,
            CAST($server_ip AS VARCHAR) AS server_ip,
            CAST($stock_minimo AS DECIMAL(12,4)) AS stock_minimo,
            CAST($stock_maximo AS DECIMAL(12,4)) AS stock_maximo,
            CAST($punto_reorden AS DECIMAL(12,4)) AS punto_reorden
        """,
        {
            "ubicacion_id": store.id,
            "ubicacion_nombre": store.name,
            "tipo_ubicacion": store.type,
            "fecha_extraccion": local_naive(extracted_at, timezone),
            "batch_id": run_id,
            "server_ip": store.host or None,
            "stock_minimo": thresholds.stock_minimo,
            "stock_maximo": thresholds.stock_maximo,
            "punto_reorden": thresholds.punto_reorden,
        },
    )
    con.execute(f"CREATE TABLE losers AS {sql.load('duplicates.sql')}", {"rows": str(rows)})
    # a view cannot take parameters: the path is one we made, written as a literal
    con.execute(sql.load("transform.sql").replace("{rows}", sql.literal(str(rows))))
    return _counters(con, rows)


def _counters(con: duckdb.DuckDBPyConnection, rows: Path) -> QualityCounters:
    extracted, rejected, invalid_values = _one(
        con,
        """
        SELECT count(*),
               count(*) FILTER (WHERE codigo_producto IS NULL OR cantidad_actual IS NULL),
               count(*) FILTER (WHERE valor_invalido)
        FROM read_parquet(?)
        """,
        [str(rows)],
    )
    loaded, negative, missing_price, missing_description = _one(
        con,
        """
        SELECT count(*),
               count(*) FILTER (WHERE cantidad_actual < 0),
               count(*) FILTER (WHERE precio_venta_actual IS NULL),
               count(*) FILTER (WHERE descripcion_producto IS NULL)
        FROM inventario
        """,
        [],
    )
    return QualityCounters(
        extracted=extracted,
        loaded=loaded,
        rejected=rejected,
        duplicates=extracted - rejected - loaded,
        negative_stock=negative,
        missing_price=missing_price,
        missing_description=missing_description,
        invalid_values=invalid_values,
    )


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[str]) -> tuple[int, ...]:
    row = con.execute(sql, params).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return tuple(int(value) for value in row)
