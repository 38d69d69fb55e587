"""The pyodbc engine and a row cut short by a dead session.

pyodbc builds each DECIMAL from the driver's text; when the session dies inside a row, Microsoft's
ODBC Driver 18 can hand over that text cut off, and pyodbc raises ``decimal.InvalidOperation``
instead of a driver error (observed here: a T-SQL KILL mid-fetch on Babelfish,
tests/integration/source/test_tsql_source.py). That is a lost connection, not bad data -- but a bad
value on a live session stays bad data.
"""

from __future__ import annotations

import decimal
from typing import Any

import pyodbc
import pytest

from fluxion_etl.errors import ConnectionFailed, StoreError
from fluxion_etl.source.connection import ConnectionString, DriverFamily
from fluxion_etl.source.engines.base import FetchRequest
from fluxion_etl.source.engines.pyodbc_engine import PyodbcEngine

WHERE = "tienda_03 (127.0.0.1:11433)"


class FakeCursor:
    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection
        self.description = [("cantidad_actual", decimal.Decimal, None, 18, 18, 3, True)]

    def execute(self, query: str, *params: Any) -> FakeCursor:
        if query == "SELECT 1" and not self.connection.alive:
            raise pyodbc.OperationalError(
                "08S01",
                "[08S01] [Microsoft][ODBC Driver 18 for SQL Server]Communication link failure "
                "(0) (SQLExecDirectW)",
            )
        return self

    def fetchall(self) -> list[Any]:
        return [(1,)]

    def fetchmany(self, size: int) -> list[Any]:
        raise decimal.InvalidOperation([decimal.ConversionSyntax])


class FakeConnection:
    def __init__(self, alive: bool) -> None:
        self.alive = alive

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        pass


def request() -> FetchRequest:
    return FetchRequest(
        where=WHERE,
        connection=ConnectionString("Driver=ODBC Driver 18 for SQL Server;", DriverFamily.MSSQL),
        credentials=None,
        query="SELECT ...",
        warehouse="0302",
        batch_size=100,
        batch_bytes=1 << 20,
        connect_timeout_seconds=5,
    )


@pytest.mark.parametrize("alive", [False, True])
def test_a_cut_off_decimal_is_a_lost_connection_only_when_the_session_is_gone(
    monkeypatch: pytest.MonkeyPatch, alive: bool
) -> None:
    monkeypatch.setattr(pyodbc, "connect", lambda *a, **k: FakeConnection(alive))
    batches = PyodbcEngine().batches(request())
    if alive:
        with pytest.raises(decimal.InvalidOperation):
            next(batches)
        return
    with pytest.raises(StoreError) as lost:
        next(batches)
    assert isinstance(lost.value, ConnectionFailed) and lost.value.transient
    assert "Communication link failure" in str(lost.value)
