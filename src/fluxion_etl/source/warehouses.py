"""A store's warehouses as its Stellar database sees them, counted on the server.

Why this exists: the inventory query selects one warehouse (the store's ``warehouse`` code, a
bound parameter), and a wrong code does not fail -- it returns no rows. So before the first run
(``fluxion-etl stores --warehouses``, ``fluxion-etl check``) and when a run's snapshot looks
wrong (the snapshot guard's message), fluxion asks the database what it holds: each warehouse
code of ``MA_DEPOSITO`` with its description, and how many stock rows each has in
``MA_DEPOPROD``. Only counts travel (one row per warehouse), nothing is fetched in bulk.

The statements are plain ANSI SQL with unqualified table names, the same text on SQL Server,
PostgreSQL and SQLite; the one value they take (the warehouse code, in :func:`count_query_rows`)
is bound as a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyodbc

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials
from fluxion_etl.errors import StoreError
from fluxion_etl.source.connection import ConnectionString, connection_for
from fluxion_etl.source.odbc_errors import classify
from fluxion_etl.source.query import count_query
from fluxion_etl.stores import Store

WAREHOUSES_SQL = "SELECT c_coddeposito, c_descripcion FROM MA_DEPOSITO"
STOCK_ROWS_SQL = "SELECT c_coddeposito, COUNT(*) FROM MA_DEPOPROD GROUP BY c_coddeposito"
#: How many codes a message suggests when the configured one is missing.
SUGGESTED_CODES = 8


@dataclass(frozen=True)
class Warehouse:
    """One warehouse code of a store's database."""

    code: str
    description: str | None
    listed: bool
    """The code is in ``MA_DEPOSITO`` (False: it only has stock rows)."""
    stock_rows: int
    """Its rows in ``MA_DEPOPROD``."""


def list_warehouses(cursor: pyodbc.Cursor) -> list[Warehouse]:
    """Every warehouse code of ``MA_DEPOSITO`` or ``MA_DEPOPROD``, by code, with its stock rows.

    Codes are compared trimmed: SQL Server pads ``CHAR`` columns, and ignores trailing spaces
    when the query compares the bound code, so ``'0202  '`` is warehouse ``0202``.
    """
    described: dict[str, str | None] = {}
    for code, description in cursor.execute(WAREHOUSES_SQL).fetchall():
        if code is not None:
            described[str(code).strip()] = _text(description)
    stock: dict[str, int] = {}
    for code, rows in cursor.execute(STOCK_ROWS_SQL).fetchall():
        if code is not None:
            key = str(code).strip()
            stock[key] = stock.get(key, 0) + int(rows)
    return [
        Warehouse(code, described.get(code), code in described, stock.get(code, 0))
        for code in sorted(described.keys() | stock.keys())
    ]


def count_query_rows(cursor: pyodbc.Cursor, query: str, warehouse: str) -> int:
    """How many rows the inventory ``query`` returns for ``warehouse`` (a COUNT on the server)."""
    row = cursor.execute(count_query(query), warehouse).fetchone()
    return int(row[0]) if row else 0


def find(warehouse: str, warehouses: Sequence[Warehouse]) -> Warehouse | None:
    """The entry of the configured code ``warehouse``, if the database knows it at all."""
    wanted = warehouse.strip()
    return next((w for w in warehouses if w.code == wanted), None)


def warehouse_problem(warehouse: str, warehouses: Sequence[Warehouse]) -> str | None:
    """Why the configured ``warehouse`` cannot give a snapshot, or None when it can.

    It must be in ``MA_DEPOSITO`` and have stock rows in ``MA_DEPOPROD``; a missing code also
    lists the codes that do have stock, since the usual cause is a typo in the stores file.
    """
    found = find(warehouse, warehouses)
    if found is None:
        with_stock = [w.code for w in warehouses if w.stock_rows]
        shown = ", ".join(with_stock[:SUGGESTED_CODES]) + (
            ", ..." if len(with_stock) > SUGGESTED_CODES else ""
        )
        return (
            f"warehouse '{warehouse}' is not in MA_DEPOSITO and has no stock rows in MA_DEPOPROD"
            f" (codes with stock here: {shown or 'none'}; `fluxion-etl stores --warehouses`"
            " lists them)"
        )
    if found.stock_rows == 0:
        return f"warehouse '{found.code}'{_described(found)} has no stock rows in MA_DEPOPROD"
    if not found.listed:
        return (
            f"warehouse '{found.code}' has {found.stock_rows:,} stock rows in MA_DEPOPROD but is"
            " not in MA_DEPOSITO"
        )
    return None


def likely_cause(warehouse: str, warehouses: Sequence[Warehouse], fetched: int) -> str:
    """What the store's database says about a snapshot of ``fetched`` rows that looks wrong."""
    problem = warehouse_problem(warehouse, warehouses)
    if problem is not None:
        return problem
    found = find(warehouse, warehouses)
    assert found is not None  # no problem means the code was found
    selected = "none of them" if fetched == 0 else f"{fetched:,}"
    return (
        f"warehouse '{found.code}'{_described(found)} has {found.stock_rows:,} stock rows in"
        f" MA_DEPOPROD and the inventory query selected {selected}"
    )


def warehouses_of(
    where: str, connection: ConnectionString, credentials: Credentials | None, timeout: int
) -> list[Warehouse]:
    """Connect (read-only) and list the warehouses; a classified StoreError on failure.

    Module-level and with picklable arguments, so the snapshot guard can run it in a child
    process like a fetch (run/fetch.py).
    """
    try:
        con = pyodbc.connect(connection.text, timeout=timeout, autocommit=True, readonly=True)
    except pyodbc.Error as exc:
        raise classify(exc, "connect", where, credentials, connection.family) from None
    try:
        return list_warehouses(con.cursor())
    except pyodbc.Error as exc:
        raise classify(exc, "query", where, credentials, connection.family) from None
    finally:
        con.close()


@dataclass(frozen=True)
class StoreWarehouses:
    """``fluxion-etl stores --warehouses``: one store's warehouses, or why they are unknown."""

    store: Store
    warehouses: tuple[Warehouse, ...] = ()
    error: str | None = None

    def rows(self) -> list[tuple[Warehouse, bool]]:
        """(warehouse, is the configured one), the configured code included even when the
        database does not know it (then with no description and no stock rows)."""
        configured = find(self.store.warehouse, self.warehouses)
        rows = [(w, w is configured) for w in self.warehouses]
        if configured is None:
            rows.append((Warehouse(self.store.warehouse.strip(), None, False, 0), True))
        return rows


def store_warehouses(
    stores: Sequence[Store], settings: Settings, credentials: Credentials | None, workers: int
) -> list[StoreWarehouses]:
    """The warehouses of each store, asked ``workers`` at once (the run's plan, like ``check``)."""

    def one(store: Store) -> StoreWarehouses:
        try:
            found = warehouses_of(
                store.label,
                connection_for(store, settings, credentials),
                credentials,
                settings.connect_timeout_seconds,
            )
        except StoreError as exc:
            return StoreWarehouses(store, error=str(exc))
        return StoreWarehouses(store, tuple(found))

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(stores)))) as pool:
        return list(pool.map(one, stores))


def _described(warehouse: Warehouse) -> str:
    return f" ({warehouse.description})" if warehouse.description else ""


def _text(value: object) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None
