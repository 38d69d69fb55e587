"""The chain's web backend since its move to PostgreSQL, as far as fluxion's output is concerned.

* :data:`BACKEND_DDL`: the five tables as the backend creates them itself (its
  ``init_etl_tables``; ``productos`` as its newest schema declares it), copied here on purpose
  rather than imported from fluxion, so a test applying it first checks fluxion against the
  backend's tables and not against its own idea of them;
* its read patterns, as SQL texts run unchanged (``%s`` placeholders, the chain schema on the
  ``search_path``): the stock page join with its filters, the per-location summary, categories
  and brands, the order-suggestion sums, a product's detail, the history page;
* :class:`OtherFeed`: the second writer (the chain's other POS feed) publishing its own locations
  into the same tables, the way the chain's own loader does (history copy, delete, insert).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg

BACKEND_DDL = """
CREATE TABLE IF NOT EXISTS ubicaciones (
    id VARCHAR(50) PRIMARY KEY,
    nombre VARCHAR(100) NOT NULL,
    codigo_klk VARCHAR(50),
    tipo VARCHAR(20) DEFAULT 'tienda',
    region VARCHAR(50),
    activo BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS productos (
    id VARCHAR(50) PRIMARY KEY,
    codigo VARCHAR(50) UNIQUE NOT NULL,
    codigo_barras VARCHAR(50),
    nombre VARCHAR(200),
    descripcion VARCHAR(200) NOT NULL,
    categoria VARCHAR(50) NOT NULL,
    grupo_articulo VARCHAR(100),
    subgrupo VARCHAR(100),
    marca VARCHAR(100),
    modelo VARCHAR(100),
    activo BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    fecha_actualizacion TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS almacenes (
    codigo VARCHAR(50) PRIMARY KEY,
    nombre VARCHAR(100) NOT NULL,
    ubicacion_id VARCHAR(50) REFERENCES ubicaciones(id),
    activo BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS inventario_actual (
    id SERIAL PRIMARY KEY,
    ubicacion_id VARCHAR(50) NOT NULL REFERENCES ubicaciones(id),
    producto_id VARCHAR(50) NOT NULL,
    almacen_codigo VARCHAR(50) NOT NULL REFERENCES almacenes(codigo),
    cantidad NUMERIC(12,4) DEFAULT 0,
    fecha_actualizacion TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT inventario_actual_unique UNIQUE (ubicacion_id, producto_id, almacen_codigo)
);
CREATE INDEX IF NOT EXISTS idx_inventario_actual_ubicacion ON inventario_actual(ubicacion_id);
CREATE TABLE IF NOT EXISTS inventario_historico (
    id SERIAL PRIMARY KEY,
    ubicacion_id VARCHAR(50) NOT NULL,
    producto_id VARCHAR(50) NOT NULL,
    almacen_codigo VARCHAR(50) NOT NULL,
    cantidad NUMERIC(12,4) DEFAULT 0,
    fecha_snapshot TIMESTAMP NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
-- the chain's own ETL tracker: same name as fluxion's ledger, another shape
CREATE TABLE IF NOT EXISTS etl_ejecuciones (
    id SERIAL PRIMARY KEY,
    etl_name VARCHAR(100) NOT NULL,
    ubicacion_id VARCHAR(50),
    fecha_inicio TIMESTAMP NOT NULL,
    estado VARCHAR(20) NOT NULL
);
"""

#: The stock page: stock joined with its product and location, both active.
STOCK_PAGE = """
SELECT ia.ubicacion_id, u.nombre AS ubicacion_nombre, ia.producto_id, p.codigo,
       p.codigo_barras, p.descripcion, p.categoria, p.marca, ia.almacen_codigo, ia.cantidad,
       ia.fecha_actualizacion
FROM inventario_actual ia
JOIN productos p ON p.id = ia.producto_id
JOIN ubicaciones u ON u.id = ia.ubicacion_id
WHERE p.activo = true AND u.activo = true AND ia.ubicacion_id = %s
ORDER BY ia.producto_id
"""

#: The per-location summary (product count, zero and negative stock, "last updated").
SUMMARY = """
SELECT u.id AS ubicacion_id, u.nombre, u.tipo,
       COUNT(DISTINCT ia.producto_id)                  AS total_productos,
       SUM(CASE WHEN ia.cantidad = 0 THEN 1 ELSE 0 END) AS stock_cero,
       SUM(CASE WHEN ia.cantidad < 0 THEN 1 ELSE 0 END) AS stock_negativo,
       MAX(ia.fecha_actualizacion)                      AS ultima_actualizacion
FROM ubicaciones u
JOIN inventario_actual ia ON ia.ubicacion_id = u.id
JOIN productos p ON p.id = ia.producto_id
WHERE u.activo = true AND p.activo = true
GROUP BY u.id, u.nombre, u.tipo
ORDER BY u.id
"""

CATEGORIES = """
SELECT DISTINCT categoria FROM productos WHERE activo = true AND categoria IS NOT NULL
ORDER BY categoria
"""

BRANDS = """
SELECT DISTINCT marca FROM productos WHERE activo = true AND marca IS NOT NULL ORDER BY marca
"""

#: Order suggestions: each location's stock summed over the products it carries.
ORDER_SUMS = """
SELECT ia.ubicacion_id, SUM(ia.cantidad) AS cantidad, COUNT(*) AS productos
FROM inventario_actual ia
JOIN productos p ON p.codigo = ia.producto_id
WHERE ia.ubicacion_id = ANY(%s)
GROUP BY ia.ubicacion_id
ORDER BY ia.ubicacion_id
"""

#: A product's detail: where it is and how much.
PRODUCT_DETAIL = """
SELECT ia.ubicacion_id, u.nombre, ia.almacen_codigo, ia.cantidad, p.descripcion
FROM inventario_actual ia
JOIN productos p ON p.id = ia.producto_id
JOIN ubicaciones u ON u.id = ia.ubicacion_id
WHERE ia.producto_id = %s
ORDER BY ia.ubicacion_id
"""

#: The history page: each replaced snapshot of a location, summed.
HISTORY = """
SELECT fecha_snapshot, COUNT(*) AS productos, SUM(cantidad) AS cantidad
FROM inventario_historico
WHERE ubicacion_id = %s
GROUP BY fecha_snapshot
ORDER BY fecha_snapshot
"""

TABLES = ("inventario_actual", "inventario_historico", "productos", "ubicaciones", "almacenes")


def query(
    con: psycopg.Connection[Any], text: str, params: Sequence[object] = ()
) -> list[dict[str, Any]]:
    with con.cursor() as cur:
        cur.execute(text, list(params))
        names = [column.name for column in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def table_contents(con: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the five tables, sorted: equal before and after means nothing changed."""
    return {
        table: sorted(
            (tuple(row) for row in con.execute(f"SELECT * FROM {table}").fetchall()),  # noqa: S608
            key=repr,
        )
        for table in TABLES
    }


class OtherFeed:
    """The chain's other POS feed: writes its own locations into the same tables."""

    def __init__(self, con: psycopg.Connection[Any]) -> None:
        self.con = con

    def publish(self, location: str, warehouse: str, rows: dict[str, Decimal]) -> None:
        """One location's snapshot, as the chain's loader writes it: location, warehouse,
        products, history copy, delete, insert, in one transaction."""
        now = dt.datetime(2026, 1, 1, 8, 0) + dt.timedelta(seconds=len(rows))
        with self.con.transaction():
            self.con.execute(
                "INSERT INTO ubicaciones (id, nombre, tipo) VALUES (%s, %s, 'tienda') "
                "ON CONFLICT (id) DO NOTHING",
                [location, location.upper()],
            )
            self.con.execute(
                "INSERT INTO almacenes (codigo, nombre, ubicacion_id) VALUES (%s, %s, %s) "
                "ON CONFLICT (codigo) DO NOTHING",
                [warehouse, warehouse, location],
            )
            for code in rows:
                self.con.execute(
                    "INSERT INTO productos (id, codigo, descripcion, categoria) "
                    "VALUES (%s, %s, %s, 'KLK') ON CONFLICT (codigo) DO NOTHING",
                    [code, code, f"KLK {code}"],
                )
            self.con.execute(
                "INSERT INTO inventario_historico (ubicacion_id, producto_id, almacen_codigo, "
                "cantidad, fecha_snapshot) SELECT ubicacion_id, producto_id, almacen_codigo, "
                "cantidad, %s FROM inventario_actual WHERE ubicacion_id = %s "
                "AND almacen_codigo = %s",
                [now, location, warehouse],
            )
            self.con.execute(
                "DELETE FROM inventario_actual WHERE ubicacion_id = %s AND almacen_codigo = %s",
                [location, warehouse],
            )
            with self.con.cursor() as cur:
                cur.executemany(
                    "INSERT INTO inventario_actual (ubicacion_id, producto_id, almacen_codigo, "
                    "cantidad, fecha_actualizacion) VALUES (%s, %s, %s, %s, %s)",
                    [[location, code, warehouse, qty, now] for code, qty in rows.items()],
                )
