"""The PostgreSQL target's table layouts: which tables a publish writes, chosen once.

``ETL_TARGET_LAYOUT`` names one:

* ``inventario_raw`` (the default): fluxion's own table, the contract of docs/architecture.md,
  with its ledger and migrations beside it in ``DATABASE_SCHEMA`` (:class:`RawLayout`);
* ``inventario_actual``: the normalised tables the chain's backend reads since its move to
  PostgreSQL (``inventario_actual``, ``inventario_historico``, ``productos``, ``ubicaciones``,
  ``almacenes`` in ``DATABASE_SCHEMA``), with fluxion's ledger, migrations and views in a schema
  of its own, ``ETL_LEDGER_SCHEMA`` (:mod:`.actual`).

The :class:`~fluxion_etl.targets.postgres.target.PostgresTarget` is given one layout at
``from_settings`` and asks it for everything that depends on the tables (opening the run,
counting what a store serves, the swap itself, status, the vacuum); the connection, the
transaction, the locks, the waits and the error translation stay the target's. The pipeline
never sees which layout it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.targets.base import Vet
from fluxion_etl.targets.postgres import copy as pgcopy
from fluxion_etl.targets.postgres import schema as pgschema
from fluxion_etl.targets.postgres.layout_names import RAW
from fluxion_etl.targets.postgres.owners import RAW_LAYOUT_OBJECTS, check_ownership


class Layout(Protocol):
    """What the target asks of the tables it writes (every call inside the target's transaction,
    on its cursor)."""

    @property
    def name(self) -> str:
        """``inventario_raw`` or ``inventario_actual``."""
        ...

    @property
    def search_path(self) -> str:
        """The schema the target's sessions work in: fluxion's ledger and migrations are there."""
        ...

    def describe(self) -> str: ...

    def check_tables(self, cur: psycopg.Cursor[Any]) -> None:
        """For ``fluxion-etl check``, inside a transaction it rolls back: create the schema of
        fluxion's own tables if it is missing, and check the tables a run would write as the run
        would (ConfigError naming table and column)."""
        ...

    def check_ownership(self, cur: psycopg.Cursor[Any], trusted: Sequence[str]) -> str:
        """ConfigError naming the first schema, table, view, trigger or rule of this layout that a
        role other than fluxion's own (or ``trusted``) controls (:mod:`.owners`); else what was
        found, for ``check``."""
        ...

    def open_run(
        self, cur: psycopg.Cursor[Any], run_id: str, store_ids: Sequence[str], engine: str
    ) -> int:
        """Create or check the tables, migrate fluxion's own, open the run's ledger rows; return
        the stale rows closed. ConfigError before any store is fetched if the tables cannot be
        written safely."""
        ...

    def served_rows(self, cur: psycopg.Cursor[Any], store_id: str | None = None) -> dict[str, int]:
        """Rows each store (or just ``store_id``) serves now."""
        ...

    def publish(
        self,
        cur: psycopg.Cursor[Any],
        store_id: str,
        ready: Path,
        entry: LedgerEntry,
        vet: Vet | None,
        published_at: dt.datetime,
    ) -> LedgerEntry:
        """The store's swap and its ledger row, on the publish transaction's cursor; return the
        entry written. ``published_at`` is the chain's naive local time of the publish."""
        ...

    def close_entry(self, cur: psycopg.Cursor[Any], entry: LedgerEntry) -> None:
        """Write a failed store's ledger row."""
        ...

    def store_status(self, cur: psycopg.Cursor[Any]) -> list[dict[str, object]] | None:
        """Last run and served snapshot per store; None when nothing was ever published."""
        ...

    @property
    def vacuum_table(self) -> sql.Composable:
        """The table whose replaced rows the after-run vacuum reclaims."""
        ...


@dataclass(frozen=True)
class RawLayout:
    """``inventario_raw`` with the ledger beside it, in ``DATABASE_SCHEMA`` (today's layout)."""

    schema: str
    name: str = RAW

    @property
    def search_path(self) -> str:
        return self.schema

    def describe(self) -> str:
        return f"schema={self.schema}"

    def check_tables(self, cur: psycopg.Cursor[Any]) -> None:
        ensure_schema(cur, self.schema)

    def check_ownership(self, cur: psycopg.Cursor[Any], trusted: Sequence[str]) -> str:
        return check_ownership(cur, self.schema, RAW_LAYOUT_OBJECTS, trusted).summary()

    def open_run(
        self, cur: psycopg.Cursor[Any], run_id: str, store_ids: Sequence[str], engine: str
    ) -> int:
        ensure_schema(cur, self.schema)
        pgschema.migrate(cur, self.schema)
        return pgschema.open_run(cur, run_id, store_ids, engine)

    def served_rows(self, cur: psycopg.Cursor[Any], store_id: str | None = None) -> dict[str, int]:
        return pgschema.served_rows(cur, store_id)

    def publish(
        self,
        cur: psycopg.Cursor[Any],
        store_id: str,
        ready: Path,
        entry: LedgerEntry,
        vet: Vet | None,
        published_at: dt.datetime,
    ) -> LedgerEntry:
        written = entry
        if vet is not None:
            served = pgschema.served_rows(cur, store_id).get(store_id, 0)
            written = vet(entry, served)
        cur.execute("DELETE FROM inventario_raw WHERE ubicacion_id = %s", [store_id])
        pgcopy.copy_ready(cur, ready, published_at)
        recorded = replace(written, finished=utcnow())
        pgschema.close_entry(cur, recorded)
        return recorded

    def close_entry(self, cur: psycopg.Cursor[Any], entry: LedgerEntry) -> None:
        pgschema.close_entry(cur, entry)

    def store_status(self, cur: psycopg.Cursor[Any]) -> list[dict[str, object]] | None:
        present = cur.execute("SELECT to_regclass('etl_ejecuciones')").fetchone()
        if not present or present[0] is None:
            return None
        return pgschema.store_status(cur)

    @property
    def vacuum_table(self) -> sql.Composable:
        return sql.Identifier("inventario_raw")


def ensure_schema(cur: psycopg.Cursor[Any], schema: str) -> None:
    """``CREATE SCHEMA`` only when it is missing (the right to create one is not needed then)."""
    exists = cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
    if not exists:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
