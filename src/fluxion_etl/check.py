"""Connectivity pre-check: for each store, TCP reachability, login, and that the query compiles.

What an operator runs before enabling the schedule or after a VPN change. Each step stops at the
first failure and says what to look at next; nothing is fetched (the query is wrapped in
``WHERE 1 = 0``) and nothing is written.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyodbc

from fluxion_etl.config import Settings
from fluxion_etl.connection import connection_for
from fluxion_etl.credentials import Credentials
from fluxion_etl.extract.odbc_errors import classify
from fluxion_etl.query import probe_query
from fluxion_etl.stores import Store


@dataclass(frozen=True)
class CheckResult:
    store: Store
    tcp: bool | None  # None = not applicable (file database) or not reached
    login: bool | None
    query: bool | None
    detail: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.tcp is not False and bool(self.login) and bool(self.query)


def check_stores(
    stores: Sequence[Store], settings: Settings, credentials: Credentials | None, query: str
) -> list[CheckResult]:
    # a check holds no fetch buffers: every store at once unless ETL_WORKERS says otherwise
    workers = max(1, min(settings.workers or len(stores), len(stores)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: check_store(s, settings, credentials, query), stores))


def check_store(
    store: Store, settings: Settings, credentials: Credentials | None, query: str
) -> CheckResult:
    started = time.monotonic()
    where = store.label
    connection = connection_for(store, settings, credentials)

    def result(tcp: bool | None, login: bool | None, ok: bool | None, detail: str) -> CheckResult:
        return CheckResult(store, tcp, login, ok, detail, time.monotonic() - started)

    tcp: bool | None = None
    if connection.family.uses_network:
        try:
            with socket.create_connection(
                (store.host, store.port), timeout=settings.connect_timeout_seconds
            ):
                tcp = True
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            return result(
                False,
                None,
                None,
                f"TCP connect to {store.address} failed: {reason} after "
                f"{time.monotonic() - started:.1f} s - is the VPN up?",
            )
    try:
        con = pyodbc.connect(
            connection.text, timeout=settings.connect_timeout_seconds, autocommit=True
        )
    except pyodbc.Error as exc:
        return result(
            tcp, False, None, str(classify(exc, "connect", where, credentials, connection.family))
        )
    try:
        con.cursor().execute(probe_query(query), store.warehouse).fetchall()
    except pyodbc.Error as exc:
        return result(
            tcp, True, False, str(classify(exc, "query", where, credentials, connection.family))
        )
    finally:
        con.close()
    return result(tcp, True, True, "ok")
