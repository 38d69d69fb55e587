"""Pre-check: for each store, TCP reachability, login, its warehouse, and the query's rows.

What an operator runs before enabling the schedule, after a VPN change, or after editing the
stores file. Each step stops at the first failure and says what to look at next. The warehouse
step asks the database for its warehouses (``MA_DEPOSITO``, stock rows in ``MA_DEPOPROD``): a
mistyped code does not make the query fail, it makes it return nothing, which only a count
shows. The query step counts the query's rows on the server (``SELECT COUNT(*)`` over it):
it compiles and runs there, and only the count travels. Nothing is written.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyodbc

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials
from fluxion_etl.source.connection import connection_for
from fluxion_etl.source.odbc_errors import classify
from fluxion_etl.source.warehouses import count_query_rows, find, list_warehouses, warehouse_problem
from fluxion_etl.stores import Store


@dataclass(frozen=True)
class CheckResult:
    store: Store
    tcp: bool | None  # None = not applicable (file database) or not reached
    login: bool | None
    warehouse: bool | None
    query: bool | None
    rows: int | None  # what the query returns for the store's warehouse
    detail: str
    seconds: float

    @property
    def ok(self) -> bool:
        return (
            self.tcp is not False
            and bool(self.login)
            and bool(self.warehouse)
            and bool(self.query)
        )


def check_stores(
    stores: Sequence[Store],
    settings: Settings,
    credentials: Credentials | None,
    query: str,
    workers: int,
) -> list[CheckResult]:
    """Check ``stores``, ``workers`` at once (the run's plan: a thousand stores must not mean a
    thousand threads, each with its ODBC connection and driver buffers)."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(stores)))) as pool:
        return list(pool.map(lambda s: check_store(s, settings, credentials, query), stores))


def check_store(
    store: Store, settings: Settings, credentials: Credentials | None, query: str
) -> CheckResult:
    started = time.monotonic()
    where = store.label
    connection = connection_for(store, settings, credentials)
    steps: dict[str, bool | None] = {"tcp": None, "login": None, "warehouse": None, "query": None}

    def result(detail: str, rows: int | None = None) -> CheckResult:
        return CheckResult(store, **steps, rows=rows, detail=detail,
                           seconds=time.monotonic() - started)  # fmt: skip

    if connection.family.uses_network:
        try:
            with socket.create_connection(
                (store.host, store.port), timeout=settings.connect_timeout_seconds
            ):
                steps["tcp"] = True
        except OSError as exc:
            steps["tcp"] = False
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            return result(
                f"TCP connect to {store.address} failed: {reason} after "
                f"{time.monotonic() - started:.1f} s - is the VPN up?"
            )
    try:
        con = pyodbc.connect(
            connection.text, timeout=settings.connect_timeout_seconds, autocommit=True
        )
    except pyodbc.Error as exc:
        steps["login"] = False
        return result(str(classify(exc, "connect", where, credentials, connection.family)))
    steps["login"] = True
    step = "warehouse"
    try:
        cursor = con.cursor()
        warehouses = list_warehouses(cursor)
        problem = warehouse_problem(store.warehouse, warehouses)
        if problem is not None:
            steps["warehouse"] = False
            return result(problem)
        steps["warehouse"] = True
        found = find(store.warehouse, warehouses)
        assert found is not None  # no problem means the code was found
        step = "query"
        rows = count_query_rows(cursor, query, store.warehouse)
    except pyodbc.Error as exc:
        steps[step] = False
        return result(str(classify(exc, "query", where, credentials, connection.family)))
    finally:
        con.close()
    described = f" ({found.description})" if found.description else ""
    stock = f"warehouse {found.code}{described}: {found.stock_rows:,} stock rows"
    steps["query"] = rows > 0
    if not rows:
        return result(f"{stock}, but the inventory query returns no rows for it", rows)
    return result(f"ok: {stock}", rows)
