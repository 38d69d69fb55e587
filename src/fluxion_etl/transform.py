"""Transform: one store's extract -> the exact rows of ``inventario_raw``, plus counters.

Two parts, so that almost nothing is left to do once the (slow, network-bound) fetch ends:

* :class:`RowCleanup` (``sql/clean.sql``) -- everything that looks at one row at a time: text
  clean-up, upper-cased product codes, exact decimals, derived fields, flagging numbers that are
  not numbers. The staging step applies it to each chunk while the engine fetches the next one,
  so its cost hides behind the fetch, and the staged file already holds the published values. A
  store that fits in one chunk has no fetch left for it to hide behind: it is staged as fetched
  and cleaned here, in the run's DuckDB, by the same SQL.
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
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from fluxion_etl.contract import (
    DEFAULT_TIMEZONE,
    SOURCE_DECIMAL_TYPES,
    StockThresholds,
    local_naive,
)
from fluxion_etl.stores import Store

if TYPE_CHECKING:  # stage.py cleans its chunks with this module's RowCleanup
    from fluxion_etl.stage import StagedFile

#: Lossless text clean-up shared by every text column: NFC, whitespace/control runs -> one
#: space, trimmed, empty -> NULL. Nothing else is removed (``/ % & ( )`` stay).
#: Why the CASE: the regex replacement builds a new string for every value, and most values
#: need no replacement. A value needs it only if it holds a run of two such characters, or one
#: that is not a plain space (a tab, a no-break space, a control character); a match (which
#: builds nothing) finds those, and the others pass as they are. Measured on the 500k-product
#: benchmark store: 1.74 s -> 1.16 s for its 400k rows, same output.
CLEAN_MACRO = r"""
CREATE OR REPLACE MACRO fluxion_collapse(s) AS
    CASE WHEN regexp_matches(s, '[\s\p{Z}\p{Cc}]{2}|[^ \P{Z}]|\p{Cc}')
         THEN regexp_replace(s, '[\s\p{Z}\p{Cc}]+', ' ', 'g')
         ELSE s
    END;
CREATE OR REPLACE MACRO fluxion_clean(x) AS
    nullif(trim(fluxion_collapse(nfc_normalize(CAST(x AS VARCHAR)))), '')
"""

#: The exact type of each numeric column the source brings (the per-row clean-up casts to these
#: types; a unit test checks the published schema against this table). Defined with the rest of
#: the table's columns in :mod:`fluxion_etl.contract`.
DECIMAL_TYPES = SOURCE_DECIMAL_TYPES

#: Rows per row group of a DuckDB table (its ``row_group_size``). The staged file is cut the same
#: way (see :mod:`fluxion_etl.stage`): the publish INSERT then turns each of its row groups
#: straight into one table row group, while smaller ones are merged and compressed again under
#: the write lock (measured at 500k products: 0.69 s aligned, 1.27 s unaligned).
TABLE_ROW_GROUP_ROWS = 122_880


def _sql(name: str) -> str:
    return (resources.files("fluxion_etl") / "sql" / name).read_text("utf-8")


#: Catalog texts: a chunk holds a few hundred distinct values of each (department, group,
#: brand, ... repeat on every product), so each distinct value is cleaned once and mapped back
#: instead of cleaning every row: 0.82 -> 0.16 s of CPU for the 500k-product store.
CATALOG_COLUMNS = ("categoria", "grupo", "subgrupo", "marca", "presentacion", "cuadrante")


class RowCleanup:
    """Applies ``sql/clean.sql`` to one chunk of rows at a time, in a private DuckDB.

    One thread: it runs beside the fetch (the engine's own thread and the database server need
    the other core), and one chunk is too small for parallelism to pay.
    """

    def __init__(self) -> None:
        self._con = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": "256MB"})
        self._con.execute(CLEAN_MACRO)
        self._sql = _sql("clean.sql")

    def __call__(self, chunk: pa.RecordBatch | pa.Table) -> pa.Table:
        table = chunk if isinstance(chunk, pa.Table) else pa.Table.from_batches([chunk])
        return self._query(self._sql, extract_batch=self._clean_catalog_texts(table))

    def _query(self, sql: str, **tables: pa.Table) -> pa.Table:
        """``sql`` over ``tables`` registered under their names, as one Arrow table.

        Registered and queried as SQL rather than through the relational API
        (``from_arrow(...).query(...)``), which binds each query once more: ~5 ms of CPU per
        query whatever the rows (14 against 8 ms for a chunk of 10 rows).
        """
        for name, table in tables.items():
            self._con.register(name, table)
        try:
            return self._con.sql(sql).to_arrow_table()
        finally:
            for name in tables:
                self._con.unregister(name)

    def _clean_catalog_texts(self, table: pa.Table) -> pa.Table:
        """``table`` with its :data:`CATALOG_COLUMNS` cleaned by ``fluxion_clean``, one query
        over all their distinct values."""
        encoded = [pc.dictionary_encode(table[name]).combine_chunks() for name in CATALOG_COLUMNS]
        values = pa.concat_arrays([column.dictionary.cast(pa.string()) for column in encoded])
        cleaned = self._query(
            "SELECT fluxion_clean(v) AS v FROM catalog_values",
            catalog_values=pa.table({"v": values}),
        )["v"].combine_chunks()
        offset = 0
        for name, column in zip(CATALOG_COLUMNS, encoded, strict=True):
            positions = pc.add(column.indices.cast(pa.int64()), offset)
            table = table.set_column(
                table.schema.get_field_index(name), name, pc.take(cleaned, positions)
            )
            offset += len(column.dictionary)
        return table

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> RowCleanup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class QualityCounters:
    """What the transform saw; written to the ledger next to the row counts."""

    extracted: int
    loaded: int
    rejected: int
    duplicates: int
    negative_stock: int
    missing_price: int
    missing_description: int
    invalid_values: int


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
        self._db = duckdb.connect(
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

        ``staged`` comes from :func:`fluxion_etl.stage.stage_batches`, cleaned row by row already
        or (a store of one chunk) cleaned here. Its cleaned rows go to ``<ready>.rows.parquet``,
        because the ready database's view reads them: that file lives as long as the staging
        area, and is removed with it. ``thresholds`` (the store's, default 10/100/20) grade
        ``estado_stock``; ``fecha_extraccion`` is ``extracted_at`` in the chain's ``timezone``,
        naive, as the backend compares it with its own ``CURRENT_DATE``. Safe to call from
        several threads at once.
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
            con.execute(f"ATTACH {sql_literal(str(ready))} AS {name}")
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
        f"FROM read_parquet({sql_literal(str(fetched))})"
    )
    try:
        con.execute(
            f"COPY ({_sql('clean.sql')}) TO {sql_literal(str(cleaned))} "
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
    con.execute(f"CREATE TABLE losers AS {_sql('duplicates.sql')}", {"rows": str(rows)})
    # a view cannot take parameters: the path is one we made, written as a literal
    con.execute(_sql("transform.sql").replace("{rows}", sql_literal(str(rows))))
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


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal, for the few statements that take no parameter (a view's
    definition, ATTACH); only ever used for paths fluxion made itself."""
    return "'" + text.replace("'", "''") + "'"
