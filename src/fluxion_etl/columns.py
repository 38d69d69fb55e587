"""fluxion's own tables described once, rendered per dialect (DuckDB, PostgreSQL).

Both targets create the same tables through numbered migrations (:mod:`fluxion_etl.ledger` on
DuckDB, :mod:`fluxion_etl.targets.postgres.schema` on PostgreSQL). Writing each ``CREATE TABLE``
twice, once per dialect, is how a column gets added to one target and forgotten on the other; so the
columns are listed here, each with a *logical* type, and each migration renders them.

Logical types are DuckDB's spelling (the contract's, :mod:`fluxion_etl.contract`) plus one of
fluxion's own, :data:`INSTANT`: a moment in time. fluxion keeps instants as naive UTC on DuckDB
(``TIMESTAMP``) and as ``TIMESTAMPTZ`` on PostgreSQL, where sessions run in UTC. A plain
``TIMESTAMP`` stays a naive wall-clock time on both (``fecha_extraccion``: the backend compares
its date with its own ``CURRENT_DATE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fluxion_etl.contract import FLUXION_COLUMNS, NULLABLE_COLUMNS

Dialect = Literal["duckdb", "postgres"]
DUCKDB: Dialect = "duckdb"
POSTGRES: Dialect = "postgres"

#: A moment (the ledger's times): naive UTC ``TIMESTAMP`` on DuckDB, ``TIMESTAMPTZ`` on PostgreSQL.
INSTANT = "INSTANT"

_POSTGRES_NAMES = {INSTANT: "TIMESTAMPTZ", "DOUBLE": "DOUBLE PRECISION"}
_DUCKDB_NAMES = {INSTANT: "TIMESTAMP"}


def render(kind: str, dialect: Dialect) -> str:
    """The dialect's spelling of a logical type (``DECIMAL(18,3)`` -> ``NUMERIC(18,3)``)."""
    if dialect == DUCKDB:
        return _DUCKDB_NAMES.get(kind, kind)
    if kind in _POSTGRES_NAMES:
        return _POSTGRES_NAMES[kind]
    return kind.replace("DECIMAL", "NUMERIC")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    """Logical type: DuckDB's spelling, or :data:`INSTANT`."""
    not_null: bool = False

    def ddl(self, dialect: Dialect) -> str:
        """``name TYPE [NOT NULL]``, as a ``CREATE TABLE`` or ``ADD COLUMN`` takes it."""
        return f"{self.name} {render(self.kind, dialect)}" + (" NOT NULL" if self.not_null else "")


def create_table(
    table: str, columns: Sequence[Column], dialect: Dialect, primary_key: Sequence[str] = ()
) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``columns`` in ``dialect``."""
    lines = [column.ddl(dialect) for column in columns]
    if primary_key:
        lines.append(f"PRIMARY KEY ({', '.join(primary_key)})")
    body = ",\n    ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {body}\n);"


#: ``inventario_raw`` as migration 1 creates it: fluxion's columns of the contract; NOT NULL
#: where every published row has a value (the backend's columns come with migration 2).
INVENTARIO: tuple[Column, ...] = tuple(
    Column(name, kind, not_null=name not in NULLABLE_COLUMNS)
    for name, kind in FLUXION_COLUMNS.items()
)

#: The run ledger ``etl_ejecuciones`` as migration 1 creates it (one row per run and store).
LEDGER: tuple[Column, ...] = (
    Column("run_id", "VARCHAR", not_null=True),
    Column("etl_tipo", "VARCHAR", not_null=True),
    Column("ubicacion_id", "VARCHAR", not_null=True),
    Column("estado", "VARCHAR", not_null=True),
    Column("fecha_inicio", INSTANT, not_null=True),
    Column("fecha_fin", INSTANT),
    Column("duracion_segundos", "DOUBLE"),
    Column("registros_extraidos", "BIGINT"),
    Column("registros_cargados", "BIGINT"),
    Column("error_tipo", "VARCHAR"),
    Column("error_mensaje", "VARCHAR"),
    Column("intentos", "INTEGER"),
    Column("registros_rechazados", "BIGINT"),
    Column("registros_duplicados", "BIGINT"),
    Column("registros_stock_negativo", "BIGINT"),
    Column("registros_sin_precio", "BIGINT"),
    Column("registros_sin_descripcion", "BIGINT"),
    Column("registros_valores_invalidos", "BIGINT"),
    Column("motor", "VARCHAR"),
)
LEDGER_KEY = ("run_id", "ubicacion_id")

#: Migration 2: values the (adopted) table's types could not hold, published as NULL.
LEDGER_NULLED = Column("registros_valores_anulados", "BIGINT")
#: Migration 3: what the snapshot guard would have held back and the operator published anyway.
LEDGER_GUARD_NOTE = Column("guardia_aceptada", "VARCHAR")

#: Which migrations a database has had (``aplicada``: when).
SCHEMA_VERSION_COLUMNS: tuple[Column, ...] = (
    Column("version", "INTEGER"),
    Column("aplicada", INSTANT, not_null=True),
)

#: Each store's last successful publish: what the backend shows as "updated at".
LAST_LOAD_VIEW = """CREATE OR REPLACE VIEW etl_ultima_carga AS
    SELECT ubicacion_id, max(fecha_fin) AS ultima_actualizacion
    FROM etl_ejecuciones
    WHERE estado = 'exitoso' AND etl_tipo = 'inventario'
    GROUP BY ubicacion_id;"""


def add_column(table: str, column: Column, dialect: Dialect) -> str:
    return f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column.ddl(dialect)};"
