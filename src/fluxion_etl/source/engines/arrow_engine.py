"""The default engine: arrow-odbc's columnar bulk fetch, straight into Arrow batches.

arrow-odbc binds column buffers once and fills them a row set at a time in native code (and, with
``fetch_concurrently``, on its own thread while we stage the previous batch), which is why it
is several times faster than row-by-row fetching over a slow link.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import arrow_odbc
import pyarrow as pa

from fluxion_etl.errors import DataError, StoreError
from fluxion_etl.source.connection import DriverFamily
from fluxion_etl.source.engines.base import (
    MAX_TEXT_SIZE_LIMIT,
    FetchRequest,
    RefetchNeeded,
    bound_query,
)
from fluxion_etl.source.odbc_errors import classify

_TRUNCATED = re.compile(r"too large to be written into the allocated buffer", re.IGNORECASE)
_INDICATED_BYTES = re.compile(r"Size in bytes indicated by ODBC driver: Some\((\d+)\)")
_INVALID_UTF8 = re.compile(r"invalid UTF-8", re.IGNORECASE)


class ArrowOdbcEngine:
    name = "arrow"

    def batches(self, request: FetchRequest) -> Iterator[pa.RecordBatch]:
        try:
            connection = arrow_odbc.connect(
                request.connection.text, login_timeout_sec=request.connect_timeout_seconds
            )
        except arrow_odbc.Error as exc:
            raise classify(
                exc, "connect", request.where, request.credentials, request.connection.family
            ) from None
        try:
            bound = bound_query(request)
            for statement, parameters in bound.setup:
                connection.execute(statement, parameters=list(parameters))
            reader = connection.read_arrow_batches(
                bound.query,
                parameters=list(bound.parameters),
                batch_size=request.batch_size,
                max_bytes_per_batch=request.batch_bytes,
                max_text_size=request.max_text_size,
                max_binary_size=request.max_text_size,
                fetch_concurrently=True,
                payload_text_encoding=_text_encoding(request),
            )
            yield from reader
        except arrow_odbc.Error as exc:
            raise _fetch_error(exc, request) from None
        finally:
            del connection


def _fetch_error(exc: arrow_odbc.Error, request: FetchRequest) -> StoreError:
    """A refetch with wider settings when the data did not fit them, else the classified error.

    arrow-odbc refuses to truncate a text longer than its buffer, and refuses narrow text that is
    not UTF-8 (a Latin-1 server behind a driver that passes bytes through). Both are properties
    of the data, not faults: the store is fetched again with a buffer as wide as the driver says
    the value is, or with UTF-16 text, which the driver converts from the server's code page.
    """
    text = str(exc)
    if _TRUNCATED.search(text):
        if request.max_text_size >= MAX_TEXT_SIZE_LIMIT:
            return DataError(
                f"{request.where}: a text value is longer than {MAX_TEXT_SIZE_LIMIT:,} "
                "characters; shorten it at the source or select a prefix in ETL_QUERY_FILE"
            )
        indicated = _INDICATED_BYTES.search(text)
        wider = max(request.max_text_size * 2, int(indicated.group(1)) if indicated else 0)
        return RefetchNeeded(
            f"{request.where}: a text value is longer than {request.max_text_size:,} characters",
            dataclasses.replace(request, max_text_size=min(wider, MAX_TEXT_SIZE_LIMIT)),
        )
    if _INVALID_UTF8.search(text) and not request.wide_text:
        return RefetchNeeded(
            f"{request.where}: the driver returned text that is not UTF-8; reading it as UTF-16",
            dataclasses.replace(request, wide_text=True),
        )
    return classify(exc, "query", request.where, request.credentials, request.connection.family)


def _text_encoding(request: FetchRequest) -> arrow_odbc.TextEncoding:
    """UTF-16 for SQL Server drivers: a slim container's C locale would mangle narrow text."""
    if request.wide_text or request.connection.family in (DriverFamily.MSSQL, DriverFamily.FREETDS):
        return arrow_odbc.TextEncoding.UTF16
    return arrow_odbc.TextEncoding.AUTO
