"""Migration 2 on real DuckDB files: the old loader's table is adopted, an unsafe one refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from fluxion_etl.contract import CONTRACT_COLUMNS
from fluxion_etl.errors import ConfigError
from fluxion_etl.targets.duckdb import schema
from fluxion_etl.targets.duckdb.adoption import copy_snapshots
from fluxion_etl.targets.duckdb.publisher import Publisher
from fluxion_harness.backend import OLD_LOADER_INVENTARIO, build_old_loader_file, table_checksum

STORES = [("tienda_02", "AV. BOLIVAR", "tienda"), ("cedi_seco", "CEDI SECO", "cedi")]


def old_loader_file(path: Path, products: int = 200, extra_column: str = "") -> Path:
    ddl = OLD_LOADER_INVENTARIO.replace("    UNIQUE (", f"    {extra_column}\n    UNIQUE (")
    with duckdb.connect(str(path)) as con:
        build_old_loader_file(con, STORES, products=products, sales=5000, inventario_ddl=ddl)
    return path


def columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = 'inventario_raw' ORDER BY column_index"
        ).fetchall()
    )


def test_an_old_loader_table_is_adopted_keeping_its_columns_indexes_rows_and_neighbours(
    tmp_path: Path,
) -> None:
    db = old_loader_file(tmp_path / "prod.duckdb")
    with duckdb.connect(str(db)) as con:
        before_columns = columns(con)
        sales = table_checksum(con, "ventas")
    Publisher(db, lock_wait_seconds=0).open_run("run-1", ["tienda_02"], "arrow")
    with duckdb.connect(str(db), read_only=True) as con:
        after = columns(con)
        # every old column kept with its type, fluxion's missing ones added
        assert {k: after[k] for k in before_columns} == before_columns
        assert set(CONTRACT_COLUMNS) <= set(after)
        assert {"grupo", "subgrupo", "cuadrante", "batch_id"} - set(before_columns)
        indexes = con.execute(
            "SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'inventario_raw'"
        ).fetchone()
        assert indexes == (4,)
        assert con.execute("SELECT count(*) FROM inventario_raw").fetchone() == (400,)
        assert table_checksum(con, "ventas") == sales
        assert con.execute("SELECT max(version) FROM fluxion_schema_version").fetchone() == (
            schema.SCHEMA_VERSION,
        )


UNSAFE = [
    ("sucursal_id INTEGER NOT NULL,", "", "column sucursal_id is NOT NULL without a default"),
    ("cuadrante DATE,", "", "column cuadrante is DATE, which cannot hold fluxion's VARCHAR values"),
    (
        "",
        "CREATE TABLE pedidos (id INTEGER, inventario_id VARCHAR REFERENCES inventario_raw (id))",
        "foreign key pedidos(inventario_id) -> inventario_raw",
    ),
]


@pytest.mark.parametrize(("extra_column", "change", "message"), UNSAFE)
def test_a_table_that_cannot_be_adopted_is_refused_and_left_untouched(
    tmp_path: Path, extra_column: str, change: str, message: str
) -> None:
    db = old_loader_file(tmp_path / "prod.duckdb", products=0, extra_column=extra_column)
    with duckdb.connect(str(db)) as con:
        if change:
            con.execute(change)
        before = columns(con)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Publisher(db, lock_wait_seconds=0).open_run("run-1", ["tienda_02"], "arrow")
    with duckdb.connect(str(db), read_only=True) as con:
        assert columns(con) == before
        tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
        assert "fluxion_schema_version" not in tables and "etl_ejecuciones" not in tables


@pytest.mark.parametrize(
    ("ddl", "message"),
    [
        (
            "CREATE TABLE inventario_raw (id INTEGER PRIMARY KEY, ubicacion_id VARCHAR)",
            "column id is INTEGER, which cannot hold fluxion's VARCHAR values",
        ),
        (
            "CREATE TABLE inventario_raw (ubicacion_id VARCHAR, codigo_barras VARCHAR UNIQUE)",
            "UNIQUE (codigo_barras) would reject fluxion's rows",
        ),
        (
            "CREATE TABLE inventario_raw (costo_unitario_actual DECIMAL(12,4) NOT NULL)",
            "column costo_unitario_actual is NOT NULL but fluxion publishes NULL there",
        ),
        ("CREATE VIEW inventario_raw AS SELECT 1 AS id", "inventario_raw is a VIEW, not a table"),
    ],
)
def test_other_unsafe_shapes_are_refused_naming_the_column(
    tmp_path: Path, ddl: str, message: str
) -> None:
    db = tmp_path / "prod.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(ddl)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Publisher(db, lock_wait_seconds=0).open_run("run-1", ["tienda_02"], "arrow")


def test_rows_fluxion_1_wrote_get_the_backends_columns_and_vocabulary(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "v1.duckdb"))
    con.execute(
        "CREATE TABLE fluxion_schema_version (version INTEGER PRIMARY KEY, aplicada TIMESTAMP)"
    )
    con.execute(str(schema.MIGRATIONS[0][1]))
    con.execute("INSERT INTO fluxion_schema_version VALUES (1, now())")
    con.execute(
        """
        INSERT INTO inventario_raw (ubicacion_id, ubicacion_nombre, tipo_ubicacion,
            codigo_producto, grupo, cantidad_actual, estado_stock, fecha_extraccion, batch_id)
        VALUES ('t', 'T', 'tienda', 'A', 'ARROZ', -2, 'negativo', '2026-11-01', 'r0'),
               ('t', 'T', 'tienda', 'B', 'ARROZ', 15, 'disponible', '2026-11-01', 'r0'),
               ('t', 'T', 'tienda', 'C', NULL, 150, 'disponible', '2026-11-01', 'r0')
        """
    )
    assert schema.migrate(con) == 1
    got = con.execute(
        "SELECT codigo_producto, estado_stock, activo, subcategoria, stock_maximo, id IS NOT NULL "
        "FROM inventario_raw ORDER BY 1"
    ).fetchall()
    assert got == [
        ("A", "SIN_STOCK", True, "ARROZ", Decimal(100), True),
        ("B", "BAJO", True, "ARROZ", Decimal(100), True),
        ("C", "EXCESO", True, None, Decimal(100), True),
    ]
    assert con.execute("SELECT count(DISTINCT id) FROM inventario_raw").fetchone() == (3,)


def test_a_snapshot_is_fitted_to_the_adopted_tables_types(tmp_path: Path) -> None:
    db = old_loader_file(tmp_path / "prod.duckdb", products=5)
    con = duckdb.connect(str(db))
    schema.migrate(con)
    columns_sql = ", ".join(f"{name} {kind}" for name, kind in CONTRACT_COLUMNS.items())
    con.execute(f"CREATE TEMP TABLE fuente ({columns_sql})")
    con.execute("ALTER TABLE fuente DROP COLUMN created_at")
    con.execute(
        """
        INSERT INTO fuente BY NAME
        SELECT 'tienda_02' AS ubicacion_id, 'AV. BOLIVAR' AS ubicacion_nombre,
               'tienda' AS tipo_ubicacion, codigo AS codigo_producto,
               descripcion AS descripcion_producto, 5 AS cantidad_actual,
               margen AS margen_porcentaje, 'CRITICO' AS estado_stock,
               TIMESTAMP '2026-12-01 08:00:00' AS fecha_extraccion, 'run-2' AS batch_id,
               codigo || '-id' AS id, true AS activo
        FROM (VALUES ('OK', 'CAFE', 20.5), ('HUGE', NULL, -1900.25)) v(codigo, descripcion, margen)
        """
    )
    con.execute("DELETE FROM inventario_raw WHERE ubicacion_id = 'tienda_02'")
    created = dt.datetime(2026, 12, 1, 8, 5)
    assert copy_snapshots(con, ["fuente"], {"created_at": created}) == [1]
    got = con.execute(
        "SELECT codigo_producto, margen_porcentaje, descripcion_producto, created_at, "
        "usuario_carga, id FROM inventario_raw WHERE ubicacion_id = 'tienda_02' ORDER BY 1"
    ).fetchall()
    assert got == [
        # DECIMAL(5,2) cannot hold -1900.25: NULL (counted); NOT NULL description: ''
        ("HUGE", None, "", created, "etl_legacy", "HUGE-id"),
        ("OK", Decimal("20.50"), "CAFE", created, "etl_legacy", "OK-id"),
    ]
    con.close()
