"""The compatibility engine: pyodbc's ``fetchmany``, converted to Arrow per batch.

Slower than arrow-odbc (every value becomes a Python object first) but it works with any driver
pyodbc supports. The Arrow types come from the cursor description, so decimals stay exact
decimals, the same as arrow-odbc gives.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyodbc

from fluxion_etl.source.engines.base import FetchRequest, bound_query
from fluxion_etl.source.odbc_errors import classify


class PyodbcEngine:
    name = "pyodbc"

    def batches(self, request: FetchRequest) -> Iterator[pa.RecordBatch]:
        try:
            connection = pyodbc.connect(
                request.connection.text,
                timeout=request.connect_timeout_seconds,
                autocommit=True,
                readonly=True,
            )
        except pyodbc.Error as exc:
            raise classify(
                exc, "connect", request.where, request.credentials, request.connection.family
            ) from None
        try:
            cursor = connection.cursor()
            bound = bound_query(request)
            for statement, parameters in bound.setup:
                cursor.execute(statement, *parameters)
            cursor.execute(bound.query, *bound.parameters)
            schema = arrow_schema(cursor.description)
            rows_per_batch = _rows_per_batch(cursor.description, request)
            while rows := cursor.fetchmany(rows_per_batch):
                yield _to_batch(rows, schema)
        except pyodbc.Error as exc:
            raise classify(
                exc, "query", request.where, request.credentials, request.connection.family
            ) from None
        except decimal.InvalidOperation:
            # pyodbc builds a DECIMAL from the driver's text; a session that dies inside a row
            # can leave that text cut off (seen: Driver 18, a T-SQL KILL mid-fetch), which is
            # not bad data. Whether the session is still alive decides: ask it.
            try:
                connection.cursor().execute("SELECT 1").fetchall()
            except pyodbc.Error as probe:
                raise classify(
                    probe, "query", request.where, request.credentials, request.connection.family
                ) from None
            raise
        finally:
            connection.close()


def arrow_schema(description: Sequence[tuple[Any, ...]]) -> pa.Schema:
    """Arrow types for a DB-API cursor description (name, type, display, size, precision, scale)."""
    return pa.schema([pa.field(col[0], _arrow_type(col)) for col in description])


def _arrow_type(column: tuple[Any, ...]) -> pa.DataType:
    python_type, precision, scale = column[1], column[4], column[5]
    if python_type is decimal.Decimal:
        if precision and 0 < precision <= 38:
            return pa.decimal128(precision, scale or 0)
        return pa.decimal128(38, min(scale or 10, 37))
    if python_type is bool:
        return pa.bool_()
    if python_type is int:
        return pa.int64()
    if python_type is float:
        return pa.float64()
    if python_type is dt.datetime:
        return pa.timestamp("us")
    if python_type is dt.date:
        return pa.date32()
    if python_type is bytes or python_type is bytearray:
        return pa.binary()
    return pa.string()


def _rows_per_batch(description: Sequence[tuple[Any, ...]], request: FetchRequest) -> int:
    """Rows per ``fetchmany``, bounded by the byte budget (text at its declared size, capped)."""
    width = sum(
        min(column[3] or request.max_text_size, request.max_text_size) if column[1] is str else 16
        for column in description
    )
    return max(1, min(request.batch_size, request.batch_bytes // max(width, 1)))


def _to_batch(rows: list[Any], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = [
        pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
