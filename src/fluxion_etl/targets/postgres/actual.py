"""The ``inventario_actual`` layout: the normalised tables the chain's backend reads.

Since its move to PostgreSQL the chain's web backend reads ``inventario_actual`` (location,
product code, warehouse code, quantity, ``fecha_actualizacion``), ``inventario_historico`` (the
replaced snapshots), ``productos``, ``ubicaciones`` and ``almacenes``, in ``DATABASE_SCHEMA``.
Another feed (the stores' other POS) writes other locations into the same tables. So:

* **Existing tables are checked, never altered.** In the run's opening transaction, before any
  store is fetched, each of the five tables that exists must have the columns fluxion writes in
  compatible types, no ``NOT NULL`` column without default that fluxion leaves empty, and be a
  table; anything else is a ConfigError (exit 2) naming the table and column. A table that does
  not exist is created with the backend's own DDL (:data:`BACKEND_DDL`: an empty database, the
  tests, the demo). A warehouse code already in ``almacenes`` for another location is exit 2 too.
* **One transaction per store** (the target's): the snapshot guard judges with the rows the
  (location, warehouse) serves now, first, so a held-back snapshot changes nothing at all; then
  the location's ``ubicaciones`` row and its ``almacenes`` row are inserted if missing (an
  existing row is left as it is: someone may have renamed it); the products it carries are
  upserted (see below); its current ``inventario_actual`` rows go to ``inventario_historico``
  (``fecha_snapshot`` = the moment they were true, their ``fecha_actualizacion``); exactly those
  rows are deleted and the new ones inserted; its ledger row is written. Rows of any other
  (location, warehouse) are never updated or deleted. The snapshot reaches the server once, by
  binary ``COPY`` (:mod:`.copy`) into a temporary table of the transaction, from which the
  products are upserted and ``inventario_actual`` filled (``INSERT ... SELECT``): one read of
  the ready database and one ``COPY``, not one per table (measured: benchmarks/layout_publish.py;
  what remains above ``inventario_raw`` is mostly the backend's foreign keys and indexes, checked
  and maintained per row).
* **Products are shared**: a product not in ``productos`` is inserted (``id = codigo``); an
  existing one only gets its NULL columns filled, unless ``ETL_OWNS_PRODUCTS=true`` makes fluxion
  the catalogue's owner (then its columns follow Stellar). Texts are fitted to the columns'
  declared lengths read from the catalogue (``descripcion`` VARCHAR(200), ``categoria``
  VARCHAR(50)); each value cut (or a barcode too long, left out) is counted in the ledger's
  ``registros_textos_recortados``. ``descripcion`` and ``categoria`` are NOT NULL: a product
  without description gets its code, one without category ``SIN CATEGORIA``; ``nombre`` is the
  description.
* **fluxion's own tables** (ledger ``etl_ejecuciones``, ``fluxion_schema_version``, the view
  ``etl_ultima_carga``) live in ``ETL_LEDGER_SCHEMA`` (default ``fluxion``), the sessions'
  ``search_path``: the chain has an ``etl_ejecuciones`` of its own, of another shape. The ledger
  row also records the warehouse code a store was published under, so ``status`` counts the rows
  it serves without the stores file.
* Times: ``fecha_actualizacion`` is the extraction's start, naive chain-local time, like
  ``fecha_extraccion`` in the other layout. Negative stock stays negative.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql

from fluxion_etl import columns
from fluxion_etl.errors import ConfigError, DataError
from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.stores import default_almacen_codigo
from fluxion_etl.targets.base import Vet
from fluxion_etl.targets.postgres import copy as pgcopy
from fluxion_etl.targets.postgres import schema as pgschema
from fluxion_etl.targets.postgres.layout_names import ACTUAL
from fluxion_etl.targets.postgres.layouts import ensure_schema
from fluxion_etl.targets.postgres.owners import LEDGER_OBJECTS, check_ownership

#: The backend's own DDL for the five tables (its ``init_etl_tables``, with ``productos`` as its
#: newest schema declares it), in the order their foreign keys need. ``{s}`` is the schema.
BACKEND_DDL: tuple[tuple[str, str], ...] = (
    (
        "ubicaciones",
        """CREATE TABLE IF NOT EXISTS {s}.ubicaciones (
    id VARCHAR(50) PRIMARY KEY,
    nombre VARCHAR(100) NOT NULL,
    tipo VARCHAR(20) DEFAULT 'tienda',
    region VARCHAR(50),
    activo BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);""",
    ),
    (
        "almacenes",
        """CREATE TABLE IF NOT EXISTS {s}.almacenes (
    codigo VARCHAR(50) PRIMARY KEY,
    nombre VARCHAR(100) NOT NULL,
    ubicacion_id VARCHAR(50) REFERENCES {s}.ubicaciones(id),
    activo BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_almacenes_ubicacion ON {s}.almacenes(ubicacion_id);""",
    ),
    (
        "productos",
        """CREATE TABLE IF NOT EXISTS {s}.productos (
    id VARCHAR(50) PRIMARY KEY,
    codigo VARCHAR(50) UNIQUE NOT NULL,
    codigo_barras VARCHAR(50),
    nombre VARCHAR(200),
    descripcion VARCHAR(200) NOT NULL,
    categoria VARCHAR(50) NOT NULL,
    grupo_articulo VARCHAR(100),
    subgrupo VARCHAR(100),
    marca VARCHAR(100),
    activo BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    fecha_actualizacion TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_productos_categoria ON {s}.productos(categoria);
CREATE INDEX IF NOT EXISTS idx_productos_marca ON {s}.productos(marca);""",
    ),
    (
        "inventario_actual",
        """CREATE TABLE IF NOT EXISTS {s}.inventario_actual (
    id SERIAL PRIMARY KEY,
    ubicacion_id VARCHAR(50) NOT NULL REFERENCES {s}.ubicaciones(id),
    producto_id VARCHAR(50) NOT NULL,
    almacen_codigo VARCHAR(50) NOT NULL REFERENCES {s}.almacenes(codigo),
    cantidad NUMERIC(12,4) DEFAULT 0,
    fecha_actualizacion TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT inventario_actual_unique UNIQUE (ubicacion_id, producto_id, almacen_codigo)
);
CREATE INDEX IF NOT EXISTS idx_inventario_actual_ubicacion
    ON {s}.inventario_actual(ubicacion_id);
CREATE INDEX IF NOT EXISTS idx_inventario_actual_producto
    ON {s}.inventario_actual(producto_id);
CREATE INDEX IF NOT EXISTS idx_inventario_actual_almacen
    ON {s}.inventario_actual(almacen_codigo);""",
    ),
    (
        "inventario_historico",
        """CREATE TABLE IF NOT EXISTS {s}.inventario_historico (
    id SERIAL PRIMARY KEY,
    ubicacion_id VARCHAR(50) NOT NULL,
    producto_id VARCHAR(50) NOT NULL,
    almacen_codigo VARCHAR(50) NOT NULL,
    cantidad NUMERIC(12,4) DEFAULT 0,
    fecha_snapshot TIMESTAMP NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_inventario_historico_ubicacion
    ON {s}.inventario_historico(ubicacion_id);
CREATE INDEX IF NOT EXISTS idx_inventario_historico_fecha
    ON {s}.inventario_historico(fecha_snapshot);
CREATE INDEX IF NOT EXISTS idx_inventario_historico_producto
    ON {s}.inventario_historico(producto_id);""",
    ),
)
TABLES = tuple(name for name, _ in BACKEND_DDL)

#: Kinds of column fluxion writes, and the catalogue's type names each accepts.
TEXT, NUMBER, TIME, FLAG = "text", "numeric", "timestamp", "boolean"
_ACCEPTS = {
    TEXT: {"varchar", "text"},
    NUMBER: {"numeric"},
    TIME: {"timestamp"},  # naive, like fecha_extraccion: TIMESTAMPTZ would shift it
    FLAG: {"bool"},
}

#: The columns fluxion writes in each table, and their kind.
WRITES: dict[str, dict[str, str]] = {
    "ubicaciones": {"id": TEXT, "nombre": TEXT, "tipo": TEXT, "activo": FLAG},
    "almacenes": {"codigo": TEXT, "nombre": TEXT, "ubicacion_id": TEXT, "activo": FLAG},
    "productos": {
        "id": TEXT,
        "codigo": TEXT,
        "codigo_barras": TEXT,
        "nombre": TEXT,
        "descripcion": TEXT,
        "categoria": TEXT,
        "marca": TEXT,
        "activo": FLAG,
    },
    "inventario_actual": {
        "ubicacion_id": TEXT,
        "producto_id": TEXT,
        "almacen_codigo": TEXT,
        "cantidad": NUMBER,
        "fecha_actualizacion": TIME,
    },
    "inventario_historico": {
        "ubicacion_id": TEXT,
        "producto_id": TEXT,
        "almacen_codigo": TEXT,
        "cantidad": NUMBER,
        "fecha_snapshot": TIME,
    },
}

#: The store's snapshot as it arrives (by one binary COPY) into the publish's temporary table.
SNAPSHOT = (
    "SELECT codigo_producto AS producto_id, codigo_barras, descripcion_producto AS descripcion, "
    "categoria, marca, cantidad_actual AS cantidad, fecha_extraccion AS fecha_actualizacion "
    "FROM inventario"
)

#: What a product without category is filed under (``categoria`` is NOT NULL).
NO_CATEGORY = "SIN CATEGORIA"
#: ``productos`` texts fitted to their column (a barcode too long is left out instead).
_FITTED = ("nombre", "descripcion", "categoria", "marca")

#: The ledger in ``ETL_LEDGER_SCHEMA``: the ledger steps of the raw layout's migrations 1-3 (the
#: same columns), then this layout's own: the warehouse a store was published under and the
#: texts cut to fit ``productos``.
LEDGER_WAREHOUSE = columns.Column("almacen_codigo", "VARCHAR")
LEDGER_CUT = columns.Column("registros_textos_recortados", "BIGINT")
LEDGER_MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        "\n".join(
            [
                columns.create_table(
                    "etl_ejecuciones",
                    columns.LEDGER,
                    columns.POSTGRES,
                    primary_key=columns.LEDGER_KEY,
                ),
                columns.LAST_LOAD_VIEW,
            ]
        ),
    ),
    (2, columns.add_column("etl_ejecuciones", columns.LEDGER_NULLED, columns.POSTGRES)),
    (3, columns.add_column("etl_ejecuciones", columns.LEDGER_GUARD_NOTE, columns.POSTGRES)),
    (
        4,
        "\n".join(
            columns.add_column("etl_ejecuciones", column, columns.POSTGRES)
            for column in (LEDGER_WAREHOUSE, LEDGER_CUT)
        ),
    ),
)


@dataclass(frozen=True)
class _Column:
    type_name: str
    max_length: int | None
    not_null: bool
    has_default: bool


@dataclass
class ActualLayout:
    """The chain's tables in ``schema``; fluxion's ledger in ``ledger_schema``."""

    schema: str
    ledger_schema: str
    #: store id -> warehouse code (``almacen_codigo``), from the stores file
    warehouses: dict[str, str] = field(default_factory=dict)
    owns_products: bool = False
    name: str = ACTUAL
    #: ``productos``' declared text lengths (None: unbounded), read when the run opens
    lengths: dict[str, int | None] = field(default_factory=dict)

    @property
    def search_path(self) -> str:
        return self.ledger_schema

    def describe(self) -> str:
        return f"schema={self.schema} layout=inventario_actual ledger={self.ledger_schema}"

    def code(self, store_id: str) -> str:
        return self.warehouses.get(store_id) or default_almacen_codigo(store_id)

    def table(self, name: str) -> sql.Composable:
        return sql.Identifier(self.schema, name)

    def check_ownership(self, cur: psycopg.Cursor[Any], trusted: Sequence[str]) -> str:
        """fluxion's ledger schema is its own; the chain's tables usually belong to the backend's
        role, which the operator names in DATABASE_TRUSTED_OWNERS."""
        ledger = check_ownership(cur, self.ledger_schema, LEDGER_OBJECTS, trusted)
        chain = check_ownership(cur, self.schema, TABLES, trusted)
        return f"{ledger.summary()}; {chain.summary()}"

    def check_tables(self, cur: psycopg.Cursor[Any]) -> None:
        ensure_schema(cur, self.ledger_schema)
        ensure_schema(cur, self.schema)
        self.prepare_tables(cur)
        self.check_warehouses(cur, list(self.warehouses))

    # --- opening the run -----------------------------------------------------------------------

    def open_run(
        self, cur: psycopg.Cursor[Any], run_id: str, store_ids: Sequence[str], engine: str
    ) -> int:
        ensure_schema(cur, self.ledger_schema)
        pgschema.migrate(cur, self.ledger_schema, LEDGER_MIGRATIONS)
        ensure_schema(cur, self.schema)
        self.prepare_tables(cur)
        self.check_warehouses(cur, store_ids)
        return pgschema.open_run(cur, run_id, store_ids, engine)

    def prepare_tables(self, cur: psycopg.Cursor[Any]) -> None:
        """Create the missing tables with the backend's DDL; check the existing ones (never
        altered); remember ``productos``' text lengths."""
        kinds = dict(
            cur.execute(
                "SELECT c.relname, c.relkind FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = ANY(%s)",
                [self.schema, list(TABLES)],
            ).fetchall()
        )
        for name, ddl in BACKEND_DDL:
            kind = kinds.get(name)
            if kind is None:
                cur.execute(ddl.replace("{s}", f'"{self.schema}"').encode())
            elif kind not in ("r", "p"):
                raise ConfigError(
                    f"{self.schema}.{name} is not a table (relkind {kind!r}): fluxion publishes "
                    "into the backend's tables, not views"
                )
        found = self._catalogue(cur)
        for name, writes in WRITES.items():
            table = found.get(name, {})
            for column, kind in writes.items():
                self._check_column(name, column, kind, table.get(column))
            for column, info in table.items():
                if column not in writes and info.not_null and not info.has_default:
                    raise ConfigError(
                        f"{self.schema}.{name}.{column} is NOT NULL without a default and "
                        "fluxion does not fill it: the backend's table has changed shape; "
                        "nothing was altered"
                    )
        self.lengths = _lengths(found)
        self._check_codes_fit(found)

    def _catalogue(self, cur: psycopg.Cursor[Any]) -> dict[str, dict[str, _Column]]:
        rows = cur.execute(
            """
            SELECT c.relname, a.attname, t.typname,
                   CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4
                        THEN a.atttypmod - 4 END,
                   a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_type t ON t.oid = a.atttypid
            WHERE n.nspname = %s AND c.relname = ANY(%s) AND a.attnum > 0
              AND NOT a.attisdropped
            """,
            [self.schema, list(TABLES)],
        ).fetchall()
        found: dict[str, dict[str, _Column]] = {}
        for table, column, type_name, max_length, not_null, has_default in rows:
            found.setdefault(table, {})[column] = _Column(
                type_name, max_length, bool(not_null), bool(has_default)
            )
        return found

    def _check_column(self, table: str, column: str, kind: str, info: _Column | None) -> None:
        where = f"{self.schema}.{table}.{column}"
        if info is None:
            raise ConfigError(
                f"{where} is missing: fluxion writes it (the inventario_actual layout needs the "
                "backend's tables as it creates them); nothing was altered"
            )
        if info.type_name not in _ACCEPTS[kind]:
            raise ConfigError(
                f"{where} is of type {info.type_name}, which cannot hold fluxion's {kind} "
                f"values (expected {' or '.join(sorted(_ACCEPTS[kind]))}); nothing was altered"
            )

    def _check_codes_fit(self, found: Mapping[str, Mapping[str, _Column]]) -> None:
        """The configured locations' ids and warehouse codes fit the code columns (a code is
        never cut: a cut code names another location)."""
        checks = (
            ("ubicaciones", "id", list(self.warehouses)),
            ("inventario_actual", "ubicacion_id", list(self.warehouses)),
            ("almacenes", "codigo", list(self.warehouses.values())),
            ("inventario_actual", "almacen_codigo", list(self.warehouses.values())),
        )
        for table, column, values in checks:
            limit = found[table][column].max_length
            too_long = [value for value in values if limit is not None and len(value) > limit]
            if too_long:
                raise ConfigError(
                    f"{self.schema}.{table}.{column} is VARCHAR({limit}): {too_long[0]!r} does "
                    "not fit (set a shorter almacen_codigo in the stores file)"
                )

    def check_warehouses(self, cur: psycopg.Cursor[Any], store_ids: Sequence[str]) -> None:
        """A warehouse code already in ``almacenes`` for another location is a configuration
        error: publishing under it would file this location's stock under that one."""
        wanted = {self.code(store_id): store_id for store_id in store_ids}
        rows = cur.execute(
            sql.SQL("SELECT codigo, ubicacion_id FROM {} WHERE codigo = ANY(%s)").format(
                self.table("almacenes")
            ),
            [list(wanted)],
        ).fetchall()
        for codigo, owner in rows:
            if owner is not None and owner != wanted[codigo]:
                raise ConfigError(
                    f"warehouse code {codigo!r} of store {wanted[codigo]} belongs to location "
                    f"{owner!r} in {self.schema}.almacenes: set almacen_codigo for "
                    f"{wanted[codigo]} in the stores file"
                )

    # --- what a store serves -------------------------------------------------------------------

    def _pairs(self, cur: psycopg.Cursor[Any]) -> dict[str, str]:
        """(location -> warehouse) fluxion publishes: the ledger's last, overridden by the
        stores file's."""
        present = cur.execute("SELECT to_regclass('etl_ejecuciones')").fetchone()
        pairs: dict[str, str] = {}
        if present and present[0] is not None:
            pairs = {
                str(store): str(code)
                for store, code in cur.execute(
                    "SELECT DISTINCT ON (ubicacion_id) ubicacion_id, almacen_codigo "
                    "FROM etl_ejecuciones WHERE estado = 'exitoso' AND almacen_codigo IS NOT NULL "
                    "ORDER BY ubicacion_id, fecha_inicio DESC"
                ).fetchall()
            }
        return {**pairs, **self.warehouses}

    def served_rows(self, cur: psycopg.Cursor[Any], store_id: str | None = None) -> dict[str, int]:
        pairs = self._pairs(cur) if store_id is None else {store_id: self.code(store_id)}
        if not pairs:
            return {}
        rows = cur.execute(
            sql.SQL(
                "SELECT i.ubicacion_id, count(*) FROM {} i "
                "JOIN unnest(%s::text[], %s::text[]) AS w(ubicacion_id, almacen_codigo) "
                "ON i.ubicacion_id = w.ubicacion_id AND i.almacen_codigo = w.almacen_codigo "
                "GROUP BY i.ubicacion_id"
            ).format(self.table("inventario_actual")),
            [list(pairs), list(pairs.values())],
        ).fetchall()
        return {str(store): int(count) for store, count in rows}

    # --- the publish ---------------------------------------------------------------------------

    def publish(
        self,
        cur: psycopg.Cursor[Any],
        store_id: str,
        ready: Path,
        entry: LedgerEntry,
        vet: Vet | None,
        published_at: dt.datetime,
    ) -> LedgerEntry:
        code = self.code(store_id)
        written = entry
        if vet is not None:  # first: a held-back snapshot changes nothing at all
            served = self.served_rows(cur, store_id).get(store_id, 0)
            written = vet(entry, served)
        source = pgcopy.open_ready(ready)
        try:
            name, kind, extracted_at = _store_run(source, ready, store_id)
            self._ensure_location(cur, store_id, name, kind, code)
            # the snapshot arrives once, by binary COPY, into a table of this transaction; the
            # products and inventario_actual are filled from it on the server
            cur.execute(
                "CREATE TEMP TABLE fluxion_snapshot (producto_id text, codigo_barras text, "
                "descripcion text, categoria text, marca text, cantidad numeric, "
                "fecha_actualizacion timestamp) ON COMMIT DROP"
            )
            pgcopy.copy_select(cur, ready, SNAPSHOT, sql.Identifier("fluxion_snapshot"), source)
        finally:
            source.close()
        cut = self._upsert_products(cur)
        where = [store_id, code]
        cur.execute(
            sql.SQL(
                "INSERT INTO {h} (ubicacion_id, producto_id, almacen_codigo, cantidad, "
                "fecha_snapshot) SELECT ubicacion_id, producto_id, almacen_codigo, cantidad, "
                "coalesce(fecha_actualizacion, %s) FROM {a} "
                "WHERE ubicacion_id = %s AND almacen_codigo = %s"
            ).format(h=self.table("inventario_historico"), a=self.table("inventario_actual")),
            [extracted_at, *where],
        )
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE ubicacion_id = %s AND almacen_codigo = %s").format(
                self.table("inventario_actual")
            ),
            where,
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (ubicacion_id, producto_id, almacen_codigo, cantidad, "
                "fecha_actualizacion) SELECT %s, producto_id, %s, cantidad, fecha_actualizacion "
                "FROM fluxion_snapshot"
            ).format(self.table("inventario_actual")),
            where,
        )
        recorded = replace(written, finished=utcnow())
        pgschema.close_entry(
            cur,
            recorded,
            {"almacen_codigo": code, "registros_textos_recortados": cut},
        )
        return recorded

    def _ensure_location(
        self, cur: psycopg.Cursor[Any], store_id: str, name: str, kind: str, code: str
    ) -> None:
        """The location's ``ubicaciones`` and ``almacenes`` rows, inserted if missing; an
        existing row is kept as it is (its name may have been edited)."""
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (id, nombre, tipo, activo) VALUES (%s, left(%s, 100), %s, true) "
                "ON CONFLICT DO NOTHING"
            ).format(self.table("ubicaciones")),
            [store_id, name, kind],
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (codigo, nombre, ubicacion_id, activo) "
                "VALUES (%s, left(%s, 100), %s, true) ON CONFLICT DO NOTHING"
            ).format(self.table("almacenes")),
            [code, name, store_id],
        )
        row = cur.execute(
            sql.SQL("SELECT ubicacion_id FROM {} WHERE codigo = %s").format(
                self.table("almacenes")
            ),
            [code],
        ).fetchone()
        if row is not None and row[0] is not None and row[0] != store_id:
            raise DataError(
                f"{store_id}: warehouse {code!r} belongs to location {row[0]!r} in "
                f"{self.schema}.almacenes; set almacen_codigo in the stores file"
            )

    def _upsert_products(self, cur: psycopg.Cursor[Any]) -> int:
        """Insert the store's products (``fluxion_snapshot``) missing from ``productos``; fill
        the NULL columns of the others (or, as the catalogue's owner, update them). Return the
        values cut to fit."""
        if not self.lengths:  # a publish without the run's opening (a tool, a test)
            self.lengths = _lengths(self._catalogue(cur))
        lengths = self.lengths

        def fit(expression: str, column: str) -> str:
            limit = lengths.get(column)
            return expression if limit is None else f"left({expression}, {int(limit)})"

        def too_long(expression: str, column: str) -> str:
            limit = lengths.get(column)
            if limit is None:
                return "0"
            return f"(coalesce(length({expression}), 0) > {int(limit)})::int"

        description = "coalesce(descripcion, producto_id)"
        category = f"coalesce(categoria, '{NO_CATEGORY}')"
        barcode_limit = lengths.get("codigo_barras")
        barcode = (
            "codigo_barras"
            if barcode_limit is None
            else f"CASE WHEN length(codigo_barras) <= {int(barcode_limit)} THEN codigo_barras END"
        )
        fitted = (
            f"SELECT producto_id AS codigo, {barcode} AS codigo_barras, "
            f"{fit(description, 'nombre')} AS nombre, "
            f"{fit(description, 'descripcion')} AS descripcion, "
            f"{fit(category, 'categoria')} AS categoria, "
            f"{fit('marca', 'marca')} AS marca FROM fluxion_snapshot"
        )
        counted = cur.execute(
            "SELECT coalesce(sum("
            + " + ".join(
                [
                    too_long("codigo_barras", "codigo_barras"),
                    too_long(description, "nombre"),
                    too_long(description, "descripcion"),
                    too_long(category, "categoria"),
                    too_long("marca", "marca"),
                ]
            )
            + "), 0) FROM fluxion_snapshot"
        ).fetchone()
        cut = int(counted[0]) if counted else 0
        names = ("codigo_barras", "nombre", "descripcion", "categoria", "marca")
        if self.owns_products:
            sets = [f"{n} = t.{n}" for n in names] + ["activo = true"]
            differs = " OR ".join(f"p.{n} IS DISTINCT FROM t.{n}" for n in names)
            differs += " OR p.activo IS DISTINCT FROM true"
        else:
            sets = [f"{n} = coalesce(p.{n}, t.{n})" for n in names]
            sets.append("activo = coalesce(p.activo, true)")
            differs = " OR ".join(f"p.{n} IS NULL" for n in (*names, "activo"))
        cur.execute(
            sql.SQL(
                "UPDATE {p} AS p SET " + ", ".join(sets) + f" FROM ({fitted}) AS t "
                f"WHERE p.codigo = t.codigo AND ({differs})"
            ).format(p=self.table("productos"))
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {p} (id, codigo, codigo_barras, nombre, descripcion, categoria, "
                f"marca, activo) SELECT t.codigo, t.codigo, t.codigo_barras, t.nombre, "
                f"t.descripcion, t.categoria, t.marca, true FROM ({fitted}) AS t "
                "WHERE NOT EXISTS (SELECT 1 FROM {p} AS p WHERE p.codigo = t.codigo "
                "OR p.id = t.codigo) ON CONFLICT DO NOTHING"
            ).format(p=self.table("productos"))
        )
        return cut

    # --- the ledger and status -----------------------------------------------------------------

    def close_entry(self, cur: psycopg.Cursor[Any], entry: LedgerEntry) -> None:
        pgschema.close_entry(cur, entry, {"almacen_codigo": self.code(entry.store_id)})

    def store_status(self, cur: psycopg.Cursor[Any]) -> list[dict[str, object]] | None:
        present = cur.execute("SELECT to_regclass('etl_ejecuciones')").fetchone()
        if not present or present[0] is None:
            return None
        served = self.served_rows(cur)
        cur.execute(
            """
            WITH last AS (
                SELECT DISTINCT ON (ubicacion_id) *
                FROM etl_ejecuciones WHERE etl_tipo = 'inventario'
                ORDER BY ubicacion_id, fecha_inicio DESC
            )
            SELECT l.*, u.ultima_actualizacion
            FROM last l LEFT JOIN etl_ultima_carga u USING (ubicacion_id)
            ORDER BY l.ubicacion_id
            """
        )
        names = [column.name for column in cur.description or ()]
        rows = []
        for values in cur.fetchall():
            row = {name: pgschema._naive(value) for name, value in zip(names, values, strict=True)}
            count = served.get(str(row["ubicacion_id"]), 0)
            row["registros_servidos"] = count
            row["fecha_publicacion"] = row["ultima_actualizacion"] if count else None
            rows.append(row)
        return rows

    @property
    def vacuum_table(self) -> sql.Composable:
        return self.table("inventario_actual")


def _lengths(found: Mapping[str, Mapping[str, _Column]]) -> dict[str, int | None]:
    """``productos``' declared text lengths (None: unbounded)."""
    table = found.get("productos", {})
    return {
        column: table[column].max_length if column in table else None
        for column in ("codigo_barras", *_FITTED)
    }


def _store_run(
    source: duckdb.DuckDBPyConnection, ready: Path, store_id: str
) -> tuple[str, str, dt.datetime | None]:
    """The location's name, type and extraction time, from its ready database."""
    try:
        rows = source.execute(  # every row fetched: the connection serves the COPY next
            "SELECT ubicacion_nombre, tipo_ubicacion, fecha_extraccion FROM store_run"
        ).fetchall()
    except duckdb.Error as exc:
        raise DataError(f"{store_id}: cannot read the ready database {ready.name}: {exc}") from None
    if not rows:
        raise DataError(f"{store_id}: the ready database {ready.name} has no store_run row")
    row = rows[0]
    return str(row[0] or store_id), str(row[1] or "tienda"), row[2]
