"""One description of fluxion's tables, two dialects: what DuckDB creates is what the list says,
and PostgreSQL gets the exact equivalent of every type (the PostgreSQL side runs against a real
server in tests/integration/targets/test_targets.py)."""

from __future__ import annotations

import duckdb
import pytest

from fluxion_etl import columns
from fluxion_etl.contract import FLUXION_COLUMNS
from fluxion_etl.targets.duckdb import schema
from fluxion_etl.targets.postgres import schema as pgschema


def declared(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    return [
        (str(name), str(kind), not nullable)
        for name, kind, nullable in con.execute(
            "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
    ]


def spec(cols: tuple[columns.Column, ...]) -> list[tuple[str, str, bool]]:
    return [(c.name, columns.render(c.kind, columns.DUCKDB), c.not_null) for c in cols]


def test_duckdb_migration_one_creates_exactly_the_listed_columns_in_order() -> None:
    con = duckdb.connect()
    con.execute(str(schema.MIGRATIONS[0][1]))
    assert declared(con, "inventario_raw") == spec(columns.INVENTARIO)
    assert declared(con, "etl_ejecuciones") == spec(columns.LEDGER)


def test_the_inventory_columns_are_the_contracts_not_null_where_every_row_has_a_value() -> None:
    assert {c.name: c.kind for c in columns.INVENTARIO} == FLUXION_COLUMNS
    assert {c.name for c in columns.INVENTARIO if c.not_null} == {
        "ubicacion_id", "ubicacion_nombre", "tipo_ubicacion", "codigo_producto",
        "cantidad_actual", "estado_stock", "fecha_extraccion", "batch_id",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "duck", "pg"),
    [
        ("DECIMAL(18,3)", "DECIMAL(18,3)", "NUMERIC(18,3)"),
        ("VARCHAR(20)", "VARCHAR(20)", "VARCHAR(20)"),
        ("TIMESTAMP", "TIMESTAMP", "TIMESTAMP"),
        (columns.INSTANT, "TIMESTAMP", "TIMESTAMPTZ"),
        ("DOUBLE", "DOUBLE", "DOUBLE PRECISION"),
        ("BIGINT", "BIGINT", "BIGINT"),
    ],
)
def test_a_logical_type_is_spelled_per_dialect(kind: str, duck: str, pg: str) -> None:
    assert columns.render(kind, columns.DUCKDB) == duck
    assert columns.render(kind, columns.POSTGRES) == pg


def test_both_dialects_migrate_the_same_ledger_columns_from_the_one_list() -> None:
    postgres = "\n".join(text for _, text in pgschema.MIGRATIONS)
    for column in (*columns.LEDGER, columns.LEDGER_NULLED, columns.LEDGER_GUARD_NOTE):
        assert column.ddl(columns.POSTGRES) in postgres
    assert "TIMESTAMPTZ" in columns.LEDGER[4].ddl(columns.POSTGRES)
    assert [version for version, _ in pgschema.MIGRATIONS] == [v for v, _ in schema.MIGRATIONS]
