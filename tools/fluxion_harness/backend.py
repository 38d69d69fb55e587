"""The chain's web backend, as far as fluxion's output is concerned: its reads, its old tables.

One place for what the backend does with the DuckDB file, shared by the contract tests, the soak
and anyone checking a file by hand:

* the backend's read patterns of ``inventario_raw`` (location list and per-location summary,
  categories, the stock page with its filters and sorts, order suggestions for a store and the
  CEDIs), as SQL texts run unchanged;
* the old loader's ``inventario_raw`` and a table of the backend's own, to build the file fluxion
  must adopt.

It imports nothing but ``duckdb`` and the standard library, so it also runs as a script under
another DuckDB release (the backend's 1.4):
``python backend.py FILE`` prints the standard reads of FILE as JSON (read-only).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import duckdb

#: The backend's locations: every query it runs filters ``activo`` and leaves out wholesale.
LOCATIONS = """
SELECT DISTINCT ubicacion_id, ubicacion_nombre, tipo_ubicacion
FROM inventario_raw
WHERE activo = true AND tipo_ubicacion != 'mayorista'
ORDER BY ubicacion_id
"""

#: The per-location summary of the dashboard ("last updated" is DATE(fecha_extraccion), compared
#: with the backend's own CURRENT_DATE).
SUMMARY = """
SELECT ubicacion_id,
       ubicacion_nombre,
       tipo_ubicacion,
       COUNT(DISTINCT codigo_producto)                     AS total_productos,
       SUM(CASE WHEN cantidad_actual = 0 THEN 1 ELSE 0 END) AS stock_cero,
       SUM(CASE WHEN cantidad_actual < 0 THEN 1 ELSE 0 END) AS stock_negativo,
       SUM(valor_inventario_actual)                        AS valor_total,
       MAX(fecha_extraccion)                               AS ultima_actualizacion,
       MAX(DATE(fecha_extraccion)) = CURRENT_DATE          AS actualizado_hoy
FROM inventario_raw
WHERE activo = true AND tipo_ubicacion != 'mayorista'
GROUP BY ubicacion_id, ubicacion_nombre, tipo_ubicacion
ORDER BY ubicacion_id
"""

CATEGORIES = """
SELECT categoria, COUNT(DISTINCT codigo_producto) AS productos
FROM inventario_raw
WHERE activo = true AND categoria IS NOT NULL
GROUP BY categoria
ORDER BY categoria
"""

#: The stock page's sorts: by cases (quantity / units per case), by weight, category, state.
SORTS = {
    "cajas": "CASE WHEN cantidad_bultos > 0 THEN cantidad_actual / cantidad_bultos ELSE 0 END DESC",
    "peso": "cantidad_actual * COALESCE(peso_producto, 0) DESC",
    "categoria": "categoria ASC NULLS LAST, descripcion_producto ASC",
    "estado": "CASE estado_stock WHEN 'SIN_STOCK' THEN 1 WHEN 'CRITICO' THEN 2 "
    "WHEN 'BAJO' THEN 3 WHEN 'NORMAL' THEN 4 WHEN 'EXCESO' THEN 5 ELSE 6 END",
}

_PAGE_COLUMNS = """
    ubicacion_id, ubicacion_nombre, codigo_producto, codigo_barras, descripcion_producto,
    categoria, subcategoria, marca, presentacion, cantidad_actual, cantidad_bultos,
    CASE WHEN cantidad_bultos > 0 THEN cantidad_actual / cantidad_bultos END AS stock_cajas,
    peso_producto, cantidad_actual * peso_producto AS peso_total, tipo_peso,
    costo_unitario_actual, precio_venta_actual, valor_inventario_actual, estado_stock,
    fecha_extraccion
"""


def stock_page(
    *,
    ubicacion_id: str | None = None,
    categoria: str | None = None,
    estado: str | None = None,
    buscar: str | None = None,
    orden: str = "cajas",
    limite: int = 50,
    pagina: int = 1,
) -> tuple[str, list[Any], str, list[Any]]:
    """The stock page as the backend builds it: (page SQL, its parameters, count SQL, its
    parameters). Each filter adds one condition; the search is ILIKE on text and codes."""
    conditions = ["activo = true"]
    params: list[Any] = []
    if ubicacion_id is not None:
        conditions.append("ubicacion_id = ?")
        params.append(ubicacion_id)
    if categoria is not None:
        conditions.append("categoria = ?")
        params.append(categoria)
    if estado is not None:
        conditions.append("estado_stock = ?")
        params.append(estado)
    if buscar is not None:
        conditions.append(
            "(descripcion_producto ILIKE ? OR codigo_producto ILIKE ? OR codigo_barras ILIKE ?)"
        )
        params.extend([f"%{buscar}%"] * 3)
    where = " AND ".join(conditions)
    page = (
        f"SELECT {_PAGE_COLUMNS} FROM inventario_raw WHERE {where} "
        f"ORDER BY {SORTS[orden]}, ubicacion_id, codigo_producto LIMIT ? OFFSET ?"
    )
    count = f"SELECT COUNT(*) AS total FROM inventario_raw WHERE {where}"
    return page, [*params, limite, (pagina - 1) * limite], count, params


#: Order suggestions for one store: what is at or under its reorder point, up to its maximum.
ORDER_SUGGESTIONS = """
SELECT codigo_producto, descripcion_producto, subcategoria AS grupo, cantidad_actual,
       stock_minimo, punto_reorden, stock_maximo, cantidad_bultos, estado_stock,
       GREATEST(stock_maximo - cantidad_actual, 0) AS cantidad_sugerida
FROM inventario_raw
WHERE activo = true AND ubicacion_id = ? AND cantidad_actual <= punto_reorden
ORDER BY subcategoria NULLS LAST, codigo_producto
"""

#: What the CEDIs hold of each product, to fill the store's suggestions from.
CEDI_STOCK = """
SELECT codigo_producto, subcategoria AS grupo,
       SUM(cantidad_actual) AS stock_cedis,
       SUM(CASE WHEN cantidad_bultos > 0
                THEN CAST(cantidad_actual / cantidad_bultos AS DECIMAL(18,3)) END) AS cajas_cedis
FROM inventario_raw
WHERE activo = true AND tipo_ubicacion = 'cedi'
GROUP BY codigo_producto, subcategoria
ORDER BY codigo_producto, grupo NULLS LAST
"""


def rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """``sql``'s rows as dicts (column name -> value)."""
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def standard_reads(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """Every read pattern once, with parameters taken from the data: each filter and each sort
    of the stock page (two pages), the suggestions of the first store. Deterministic order."""
    reads = {
        "locations": rows(con, LOCATIONS),
        "summary": rows(con, SUMMARY),
        "categories": rows(con, CATEGORIES),
        "cedi_stock": rows(con, CEDI_STOCK),
    }
    store = next(r["ubicacion_id"] for r in reads["locations"] if r["tipo_ubicacion"] != "cedi")
    category = reads["categories"][0]["categoria"]
    filters: dict[str, dict[str, Any]] = {
        "all": {},
        "store": {"ubicacion_id": store},
        "category": {"categoria": category},
        "state": {"estado": "CRITICO"},
        "search": {"buscar": "caf"},
    }
    for name, given in filters.items():
        for orden in SORTS:
            for pagina in (1, 2):
                page, params, count, count_params = stock_page(
                    orden=orden, pagina=pagina, limite=25, **given
                )
                reads[f"page/{name}/{orden}/{pagina}"] = rows(con, page, params)
        reads[f"count/{name}"] = rows(con, count, count_params)
    reads["suggestions"] = rows(con, ORDER_SUGGESTIONS, [store])
    return reads


def as_json(reads: dict[str, list[dict[str, Any]]]) -> str:
    """``reads`` as JSON text: decimals, dates and floats as their text, for comparisons."""
    return json.dumps(reads, default=str, sort_keys=True, ensure_ascii=False)


# --- the old loader's file --------------------------------------------------------------------

#: ``inventario_raw`` as the chain's old loader created it in the production file.
OLD_LOADER_INVENTARIO = """
CREATE TABLE inventario_raw (
    id                     VARCHAR PRIMARY KEY DEFAULT (gen_random_uuid()),
    ubicacion_id           VARCHAR NOT NULL,
    ubicacion_nombre       VARCHAR NOT NULL,
    tipo_ubicacion         VARCHAR NOT NULL,
    codigo_producto        VARCHAR NOT NULL,
    codigo_barras          VARCHAR,
    descripcion_producto   VARCHAR NOT NULL,
    categoria              VARCHAR,
    subcategoria           VARCHAR,
    marca                  VARCHAR,
    presentacion           VARCHAR,
    cantidad_actual        DECIMAL(12,4) NOT NULL DEFAULT 0,
    cantidad_disponible    DECIMAL(12,4) DEFAULT 0,
    cantidad_reservada     DECIMAL(12,4) DEFAULT 0,
    cantidad_en_transito   DECIMAL(12,4) DEFAULT 0,
    costo_unitario_actual  DECIMAL(12,4),
    precio_venta_actual    DECIMAL(12,4),
    valor_inventario_actual DECIMAL(15,2),
    margen_porcentaje      DECIMAL(5,2),
    stock_minimo           DECIMAL(12,4),
    stock_maximo           DECIMAL(12,4),
    punto_reorden          DECIMAL(12,4),
    estado_stock           VARCHAR(20),
    ubicacion_fisica       VARCHAR,
    pasillo                VARCHAR,
    estante                VARCHAR,
    fecha_ultima_entrada   TIMESTAMP,
    fecha_ultima_salida    TIMESTAMP,
    fecha_ultimo_conteo    TIMESTAMP,
    dias_sin_movimiento    INTEGER DEFAULT 0,
    activo                 BOOLEAN DEFAULT true,
    es_perecedero          BOOLEAN DEFAULT false,
    dias_vencimiento       INTEGER,
    peso_producto          DECIMAL(10,3),
    tipo_peso              VARCHAR(20),
    volumen_producto       DECIMAL(10,3),
    cantidad_bultos        DECIMAL(10,2),
    fecha_extraccion       TIMESTAMP NOT NULL,
    server_ip              VARCHAR(50),
    created_at             TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    usuario_carga          VARCHAR DEFAULT 'etl_legacy',
    UNIQUE (ubicacion_id, codigo_producto, fecha_extraccion)
);
CREATE INDEX idx_inventario_ubicacion ON inventario_raw (ubicacion_id);
CREATE INDEX idx_inventario_producto ON inventario_raw (codigo_producto);
CREATE INDEX idx_inventario_categoria ON inventario_raw (categoria);
CREATE INDEX idx_inventario_estado ON inventario_raw (estado_stock);
"""

#: One of the backend's own tables (sales), which fluxion must never touch.
BACKEND_SALES = """
CREATE TABLE ventas (
    id              BIGINT PRIMARY KEY,
    ubicacion_id    VARCHAR NOT NULL,
    codigo_producto VARCHAR NOT NULL,
    fecha_venta     TIMESTAMP NOT NULL,
    cantidad        DECIMAL(12,4) NOT NULL,
    total           DECIMAL(15,2) NOT NULL
);
CREATE INDEX idx_ventas_fecha ON ventas (fecha_venta);
"""


def build_old_loader_file(
    con: duckdb.DuckDBPyConnection,
    stores: Sequence[tuple[str, str, str]],
    products: int,
    sales: int,
    inventario_ddl: str = OLD_LOADER_INVENTARIO,
) -> None:
    """Fill ``con``'s database the way production holds it: the old loader's ``inventario_raw``
    with an old snapshot of ``products`` rows per (id, name, type) store, and ``sales`` rows of
    the backend's ``ventas``. ``inventario_ddl`` may be a variant of the old loader's table
    (with an index, DuckDB refuses most ALTERs of it afterwards)."""
    con.execute(inventario_ddl)
    for store_id, name, kind in stores:
        con.execute(
            """
            INSERT INTO inventario_raw (ubicacion_id, ubicacion_nombre, tipo_ubicacion,
                codigo_producto, descripcion_producto, categoria, cantidad_actual,
                stock_minimo, stock_maximo, punto_reorden, estado_stock, fecha_extraccion,
                server_ip)
            SELECT ?, ?, ?, 'OLD-' || i, 'PRODUCTO VIEJO ' || i, 'VIEJA', i % 50, 10, 100, 20,
                   CASE WHEN i % 50 = 0 THEN 'SIN_STOCK' ELSE 'NORMAL' END,
                   TIMESTAMP '2026-11-01 06:00:00', '10.0.0.1'
            FROM range(?) t(i)
            """,
            [store_id, name, kind, products],
        )
    con.execute(BACKEND_SALES)
    con.execute(
        """
        INSERT INTO ventas
        SELECT i, 'tienda_' || lpad(CAST(i % 20 AS VARCHAR), 2, '0'), 'P' || (i % 997),
               TIMESTAMP '2026-01-01' + INTERVAL (i % 86400) SECOND, (i % 7) + 1,
               CAST(((i % 7) + 1) * 1.25 AS DECIMAL(15,2))
        FROM range(?) t(i)
        """,
        [sales],
    )


def table_checksum(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """(row count, sum of row hashes) of ``table``: changes if any value of any row changes."""
    row = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {table} t").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


#: Sales rows of the old loader's file: enough that a touched table would show in a checksum.
OLD_FILE_SALES = 500_000
OLD_FILE_PRODUCTS = 300


def main(argv: Sequence[str]) -> int:
    """``backend.py FILE``: the standard reads of FILE (opened read-only) as JSON on stdout.
    ``backend.py --build-old-loader FILE STORES_JSON``: create FILE as the old loader left it,
    with an old snapshot of each ``[id, name, type]`` store (run it with the backend's DuckDB)."""
    if argv[0] == "--build-old-loader":
        stores = [tuple(store) for store in json.loads(argv[2])]
        con = duckdb.connect(argv[1])
        try:
            build_old_loader_file(con, stores, OLD_FILE_PRODUCTS, OLD_FILE_SALES)
        finally:
            con.close()
        return 0
    con = duckdb.connect(argv[0], read_only=True)
    try:
        print(as_json(standard_reads(con)))
    finally:
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
