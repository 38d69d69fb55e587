"""Transform: one store's staged extract -> the exact rows of ``inventario_raw``, plus counters.

Runs in a private in-memory DuckDB (in the worker thread, no target lock held) and writes a
``ready`` Parquet file with the target's column order and types, so the publish step is a plain
``INSERT ... SELECT`` that holds the write lock for as short a time as possible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from fluxion_etl.stores import Store

#: Lossless text clean-up shared by every text column: NFC, whitespace/control runs -> one
#: space, trimmed, empty -> NULL. Nothing else is removed (``/ % & ( )`` stay).
CLEAN_MACRO = r"""
CREATE OR REPLACE MACRO fluxion_clean(x) AS
    nullif(
        trim(regexp_replace(nfc_normalize(CAST(x AS VARCHAR)), '[\s\p{Z}\p{Cc}]+', ' ', 'g')),
        ''
    )
"""

#: The exact type of each numeric column (the casts in sql/transform.sql use the same types;
#: a unit test checks the published schema against this table).
DECIMAL_TYPES = {
    "cantidad_actual": "DECIMAL(18,3)",
    "costo_unitario_actual": "DECIMAL(18,4)",
    "precio_venta_actual": "DECIMAL(18,4)",
    "impuesto_porcentaje": "DECIMAL(9,2)",
    "peso_producto": "DECIMAL(18,3)",
    "volumen_producto": "DECIMAL(18,3)",
    "cantidad_bultos": "DECIMAL(18,3)",
}


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
    counters: QualityCounters


def transform_sql() -> str:
    return (resources.files("fluxion_etl") / "sql" / "transform.sql").read_text("utf-8")


def transform_store(
    staged: Path,
    ready: Path,
    store: Store,
    run_id: str,
    extracted_at: dt.datetime,
    memory_limit: str = "512MB",
) -> Transformed:
    """Transform ``staged`` into ``ready`` (Parquet) for ``store``; return the counters."""
    con = duckdb.connect(
        ":memory:",
        config={"threads": 2, "memory_limit": memory_limit, "temp_directory": str(ready.parent)},
    )
    try:
        con.execute(CLEAN_MACRO)
        params = {
            "staged": str(staged),
            "ubicacion_id": store.id,
            "ubicacion_nombre": store.name,
            "tipo_ubicacion": store.type,
            "fecha_extraccion": extracted_at.astimezone(dt.UTC).replace(tzinfo=None),
            "batch_id": run_id,
        }
        con.execute(
            f"COPY ({transform_sql()}) TO {_literal(ready)} (FORMAT parquet, COMPRESSION snappy)",
            params,
        )
        return Transformed(ready, _counters(con, staged, ready))
    finally:
        con.close()


def _counters(con: duckdb.DuckDBPyConnection, staged: Path, ready: Path) -> QualityCounters:
    invalid = " OR ".join(
        f"({name} IS NOT NULL AND TRY_CAST({name} AS {DECIMAL_TYPES[name]}) IS NULL)"
        for name in DECIMAL_TYPES
    )
    extracted, rejected, invalid_values = _one(
        con,
        f"""
        SELECT count(*),
               count(*) FILTER (
                   WHERE fluxion_clean(codigo_producto) IS NULL
                      OR TRY_CAST(cantidad_actual AS DECIMAL(18,3)) IS NULL),
               count(*) FILTER (WHERE {invalid})
        FROM read_parquet(?)
        """,
        staged,
    )
    loaded, negative, missing_price, missing_description = _one(
        con,
        """
        SELECT count(*),
               count(*) FILTER (WHERE cantidad_actual < 0),
               count(*) FILTER (WHERE precio_venta_actual IS NULL),
               count(*) FILTER (WHERE descripcion_producto IS NULL)
        FROM read_parquet(?)
        """,
        ready,
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


def _one(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> tuple[int, ...]:
    row = con.execute(sql, [str(path)]).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return tuple(int(value) for value in row)


def _literal(path: Path) -> str:
    """A SQL string literal for a path we created ourselves (COPY TO takes no parameter)."""
    return "'" + str(path).replace("'", "''") + "'"
