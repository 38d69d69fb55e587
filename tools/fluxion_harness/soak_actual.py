"""The soak's PostgreSQL target in the ``inventario_actual`` layout (``--layout`` of that name).

The chain's backend reads ``inventario_actual``, ``inventario_historico``, ``productos``,
``ubicaciones`` and ``almacenes`` (docs/postgresql.md, "Table layouts"), and another feed (the
stores' other POS) writes its own locations into the same tables. This adapter gives the soak that
world, and reads it back for the common invariants (:mod:`~.soak_checks`) without them knowing:

* the five tables are created with the **backend's own DDL** (:data:`.backend_pg.BACKEND_DDL`,
  the chain's ``etl_ejecuciones`` tracker included), before fluxion ever runs, so every run checks
  and writes the backend's tables, not fluxion's idea of them; fluxion's ledger lives in a schema
  of its own (``ETL_LEDGER_SCHEMA``), first on the soak's ``search_path``;
* **the other feed** (:class:`.backend_pg.OtherFeed`) publishes its two locations before every
  run, with products of its own and some codes the chain's stores carry too, and writes its
  tracker row;
* a store's rows carry no batch id here: a publish is one transaction, so the rows it inserted
  and the ledger row it closed share one ``xmin``. :meth:`ActualSoakTarget.read` names each row by
  the run whose ``exitoso`` ledger row of that store and warehouse has the row's ``xmin`` -- rows
  of two publishes, or rows without their ledger row, show up as two batches or a foreign one.

Its own invariants (:meth:`ActualSoakTarget.check_after_run`): ``inventario_historico`` gains
exactly the snapshot each successful publish replaced (the layout's contract: "each publish adds
exactly the snapshot it replaced; a held-back store adds nothing"), compared as (warehouse,
``fecha_snapshot``, rows, digest of code=quantity) per store; and the other feed's rows -- its
locations, warehouses, stock, history, its own products, the columns it set on shared ones, its
tracker -- are exactly what it last wrote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from fluxion_etl.targets.postgres.layout_names import ACTUAL, DEFAULT_LEDGER_SCHEMA
from fluxion_harness.backend_pg import BACKEND_DDL, OtherFeed
from fluxion_harness.postgres_source import PgServer
from fluxion_harness.soak_target import (
    OwnCheck,
    OwnInvariant,
    PostgresSoakTarget,
    ServedRows,
    TargetState,
    _ledger,
)

#: the other feed's locations and their warehouse codes (ids no Stellar store has)
OTHER_LOCATIONS = (("klk_tienda_01", "KLK-01"), ("klk_tienda_02", "KLK-02"))
#: products only the other feed carries
OTHER_CODES = tuple(f"KLK{n:05d}" for n in range(40))
#: codes the chain's Stellar stores carry too (the generator's first codes): fluxion may fill
#: their NULL columns, never change the ones the other feed set
SHARED_CODES = tuple(str(100000 + n) for n in range(10))

#: a store's rows, named by the run whose ledger row committed with them (same ``xmin``, same
#: store and warehouse); rows without one are named by their transaction and warehouse
ROWS_ACTUAL = """
SELECT i.ubicacion_id, i.producto_id, i.cantidad,
       coalesce(l.run_id, 'xmin ' || i.xmin::text || ' ' || i.almacen_codigo)
FROM {data}.inventario_actual i
LEFT JOIN {ledger}.etl_ejecuciones l
  ON l.xmin = i.xmin AND l.ubicacion_id = i.ubicacion_id
 AND l.almacen_codigo = i.almacen_codigo AND l.estado = 'exitoso'
WHERE NOT (i.ubicacion_id = ANY(%s))
"""

#: one line per snapshot: (location, warehouse, its time, rows, digest of code=quantity)
_SNAPSHOTS = """
SELECT ubicacion_id, almacen_codigo, {time}::text, count(*),
       md5(string_agg(producto_id || '=' || cantidad::text, ',' ORDER BY producto_id))
FROM {table} WHERE NOT (ubicacion_id = ANY(%s)) GROUP BY 1, 2, 3
"""

#: (warehouse, snapshot time, rows, digest)
Snapshot = tuple[str, str, int, str]


class ActualSoakTarget(PostgresSoakTarget):
    size_label: str = (
        "PostgreSQL inventario_actual + inventario_historico + productos + ledger"
        " (total relation size; the history grows by design)"
    )
    published_table: str = "inventario_actual"

    def __init__(
        self,
        url: str,
        password: str,
        schema: str,
        *,
        created_database: tuple[PgServer, str] | None = None,
    ) -> None:
        super().__init__(url, password, schema, created_database=created_database)
        #: store -> the snapshots it served after the last run (what a publish replaces)
        self.served: dict[str, Counter[Snapshot]] = {}
        #: store -> the snapshots its history must hold
        self.history: dict[str, Counter[Snapshot]] = {}
        #: table -> digest of the other feed's rows as it last wrote them
        self.other_rows: dict[str, str] = {}
        try:
            self._create_backend_tables()
        except BaseException:  # the database or schema the soak made for itself goes too
            self.drop()
            raise

    @property
    def ledger_schema(self) -> str:
        """The run ledger's schema: the layout's default in a database of the soak's own, else
        one beside the soak's fresh data schema (both dropped at the end)."""
        if self.created_database is not None:
            return DEFAULT_LEDGER_SCHEMA
        return f"{self.schema}_ledger"

    @property
    def search_path(self) -> str:
        return f"{self.ledger_schema},{self.schema}"

    def _create_backend_tables(self) -> None:
        """The backend's tables, as it creates them itself, before fluxion's first run."""
        with self.connect() as con:
            con.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            con.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(self.schema)))
            con.execute(BACKEND_DDL.encode())

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "ETL_TARGET_LAYOUT": ACTUAL,
            "ETL_LEDGER_SCHEMA": self.ledger_schema,
        }

    def _names(self) -> dict[str, sql.Composable]:
        return {"data": sql.Identifier(self.schema), "ledger": sql.Identifier(self.ledger_schema)}

    def _has_tables(self, con: psycopg.Connection[Any]) -> bool:
        found = con.execute(
            "SELECT to_regclass(%s) IS NOT NULL",
            [f'"{self.ledger_schema}".etl_ejecuciones'],
        ).fetchone()
        return bool(found and found[0])

    def read(self) -> TargetState:
        """Ledger and rows in one repeatable-read transaction: one consistent view."""
        with self.connect() as con:
            if not self._has_tables(con):
                return TargetState([], {})
            con.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with con.transaction():
                ledger = _ledger(con.execute)  # fluxion's: first on the search_path
                query = sql.SQL(ROWS_ACTUAL).format(**self._names())
                found: ServedRows = {}
                for store, code, quantity, batch in con.execute(query, [_others()]).fetchall():
                    found.setdefault(store, {})[code] = (quantity, batch)
                return TargetState(ledger, found)

    def size_bytes(self) -> int:
        tables = [
            f'"{self.schema}".{name}'
            for name in ("inventario_actual", "inventario_historico", "productos")
        ]
        tables.append(f'"{self.ledger_schema}".etl_ejecuciones')
        with self.connect() as con:
            if not self._has_tables(con):
                return 0
            found = con.execute(
                "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) AS t",
                [tables],
            ).fetchone()
            return int(found[0]) if found and found[0] is not None else 0

    def drop(self) -> None:
        if self.created_database is not None:
            super().drop()
            return
        with self.connect() as con:
            for schema in (self.schema, self.ledger_schema):
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                con.execute(drop.format(sql.Identifier(schema)))

    # --- the other feed ----------------------------------------------------------------------

    def before_run(self, number: int) -> None:
        """The other feed publishes its locations (quantities of its own for run ``number``)."""
        with self.connect() as con:
            con.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(self.schema)))
            feed = OtherFeed(con)
            for index, (location, warehouse) in enumerate(OTHER_LOCATIONS):
                step = Decimal(number % 1000).scaleb(-3)
                rows = {
                    code: Decimal(n - 5 * index) + step
                    for n, code in enumerate((*OTHER_CODES, *SHARED_CODES))
                }
                feed.publish(location, warehouse, rows)
                con.execute(
                    "INSERT INTO etl_ejecuciones (etl_name, ubicacion_id, fecha_inicio, estado)"
                    " VALUES ('klk_api', %s, now(), 'exitoso')",
                    [location],
                )
            self.other_rows = self._other_rows(con)

    def other_locations(self) -> dict[str, int]:
        return {location: len(OTHER_CODES) + len(SHARED_CODES) for location, _ in OTHER_LOCATIONS}

    def _other_rows(self, con: psycopg.Connection[Any]) -> dict[str, str]:
        """table -> digest of the other feed's rows in it (on ``productos``' shared codes, of
        the columns it set: fluxion fills the NULL ones, as its contract says)."""
        others = _others()
        parts = {
            "inventario_actual": ("inventario_actual t", "t.ubicacion_id = ANY(%s)", [others]),
            "inventario_historico": (
                "inventario_historico t",
                "t.ubicacion_id = ANY(%s)",
                [others],
            ),
            "ubicaciones": ("ubicaciones t", "t.id = ANY(%s)", [others]),
            "almacenes": ("almacenes t", "t.ubicacion_id = ANY(%s)", [others]),
            "productos": ("productos t", "t.codigo = ANY(%s)", [list(OTHER_CODES)]),
            "productos (shared codes)": (
                "(SELECT id, codigo, descripcion, categoria FROM productos) t",
                "t.codigo = ANY(%s)",
                [list(SHARED_CODES)],
            ),
            "etl_ejecuciones (the chain's tracker)": ("etl_ejecuciones t", "true", []),
        }
        digests = {}
        with con.transaction():
            con.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(self.schema)))
            for name, (source, where, params) in parts.items():
                found = con.execute(
                    f"SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|'"  # noqa: S608
                    f" ORDER BY t::text), '')) FROM {source} WHERE {where}",
                    params,
                ).fetchone()
                digests[name] = str(found[0]) if found else ""
        return digests

    # --- the layout's own invariants -----------------------------------------------------------

    @property
    def own_invariants(self) -> tuple[OwnInvariant, ...]:
        return (
            ("history", "inventario_historico gains exactly the snapshot a publish replaced"),
            ("other_feed", "the other feed's rows (5 tables, its tracker) are never touched"),
        )

    def check_after_run(self, states: Mapping[str, str]) -> list[OwnCheck]:
        with self.connect() as con:
            if not self._has_tables(con):
                return []
            con.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with con.transaction():
                served = self._snapshots(con, "inventario_actual", "fecha_actualizacion")
                history = self._snapshots(con, "inventario_historico", "fecha_snapshot")
            other_rows = self._other_rows(con)
        checks = history_checks(states, self.served, self.history, history)
        self.served = served
        checks.append(other_feed_check(self.other_rows, other_rows))
        return checks

    def _snapshots(
        self, con: psycopg.Connection[Any], table: str, time: str
    ) -> dict[str, Counter[Snapshot]]:
        query = sql.SQL(_SNAPSHOTS).format(
            time=sql.Identifier(time), table=sql.Identifier(self.schema, table)
        )
        found: dict[str, Counter[Snapshot]] = {}
        for store, warehouse, at, rows, digest in con.execute(query, [_others()]).fetchall():
            found.setdefault(store, Counter())[(warehouse, at, int(rows), digest)] += 1
        return found


def history_checks(
    states: Mapping[str, str],
    served_before: Mapping[str, Counter[Snapshot]],
    expected: dict[str, Counter[Snapshot]],
    found: Mapping[str, Counter[Snapshot]],
) -> list[OwnCheck]:
    """Each store ``exitoso`` in this run adds to its expected history the snapshots it served
    before the run (none for its first publish); then every store's history must be exactly its
    expected one -- a failed or held-back store adds nothing, a publish adds its replaced rows
    once, whole, under their own ``fecha_actualizacion``. Updates ``expected``."""
    for store, state in states.items():
        if state == "exitoso":
            expected.setdefault(store, Counter()).update(served_before.get(store, Counter()))
    checks: list[OwnCheck] = []
    for store in sorted({*expected, *found, *states}):
        want, got = expected.get(store, Counter()), found.get(store, Counter())
        missing, extra = want - got, got - want
        checks.append(
            (
                "history",
                not missing and not extra,
                f"{store} ({states.get(store, 'not in this run')}): inventario_historico holds"
                f" {sum(got.values())} snapshots ({sum(s[2] * n for s, n in got.items())} rows),"
                f" expected {sum(want.values())} ({sum(s[2] * n for s, n in want.items())} rows);"
                f" missing {sorted(missing)[:2]}, unexpected {sorted(extra)[:2]}",
            )
        )
    return checks


def other_feed_check(written: Mapping[str, str], found: Mapping[str, str]) -> OwnCheck:
    """The other feed's rows are what it last wrote (per table: count and digest)."""
    changed = [name for name in written if found.get(name) != written[name]]
    return (
        "other_feed",
        not changed,
        f"the other feed's rows changed in: {', '.join(changed)}",
    )


def _others() -> list[str]:
    return [location for location, _ in OTHER_LOCATIONS]
