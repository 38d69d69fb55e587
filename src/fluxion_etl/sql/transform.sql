-- fluxion transform: the rows of inventario_raw for one store, as the view `inventario` of the
-- store's ready database (a small DuckDB file that the publish step attaches and copies from).
-- The rows themselves stay in the cleaned staged file ({rows}, already cleaned, typed and derived
-- by sql/clean.sql during the fetch); the ready database adds only the store's constants (table
-- store_run) and the de-duplication losers (table losers, from sql/duplicates.sql). So nothing
-- is rewritten after the fetch, and the rows reach the target in the staged file's row groups.
-- The backend's columns: estado_stock in its vocabulary against the store's thresholds; the
-- columns the source has no data for get the constants the old loader wrote (docs/architecture.md).
-- created_at is added by the publish (the moment the row is published).
-- Rejected: rows without code or quantity. No ORDER BY: rows keep the order they were fetched in.
CREATE VIEW inventario AS
SELECT
    s.ubicacion_id,
    s.ubicacion_nombre,
    s.tipo_ubicacion,
    r.codigo_producto,
    r.codigo_barras,
    r.descripcion_producto,
    r.categoria,
    r.grupo,
    r.subgrupo,
    r.marca,
    r.presentacion,
    r.cuadrante,
    r.cantidad_actual,
    r.costo_unitario_actual,
    r.precio_venta_actual,
    r.impuesto_porcentaje,
    r.peso_producto,
    r.volumen_producto,
    r.cantidad_bultos,
    r.valor_inventario_actual,
    r.margen_porcentaje,
    CASE
        WHEN r.cantidad_actual <= 0 THEN 'SIN_STOCK'
        WHEN r.cantidad_actual <= s.stock_minimo THEN 'CRITICO'
        WHEN r.cantidad_actual <= s.punto_reorden THEN 'BAJO'
        WHEN r.cantidad_actual >= s.stock_maximo THEN 'EXCESO'
        ELSE 'NORMAL'
    END                                 AS estado_stock,
    s.fecha_extraccion,
    s.batch_id,
    r.id,
    r.subcategoria,
    r.tipo_peso,
    CAST(0 AS DECIMAL(12,4))            AS cantidad_disponible,
    CAST(0 AS DECIMAL(12,4))            AS cantidad_reservada,
    CAST(0 AS DECIMAL(12,4))            AS cantidad_en_transito,
    s.stock_minimo,
    s.stock_maximo,
    s.punto_reorden,
    CAST(NULL AS VARCHAR)               AS ubicacion_fisica,
    CAST(NULL AS VARCHAR)               AS pasillo,
    CAST(NULL AS VARCHAR)               AS estante,
    CAST(NULL AS TIMESTAMP)             AS fecha_ultima_entrada,
    CAST(NULL AS TIMESTAMP)             AS fecha_ultima_salida,
    CAST(NULL AS TIMESTAMP)             AS fecha_ultimo_conteo,
    CAST(0 AS INTEGER)                  AS dias_sin_movimiento,
    true                                AS activo,
    false                               AS es_perecedero,
    CAST(NULL AS INTEGER)               AS dias_vencimiento,
    s.server_ip
FROM read_parquet({rows}, file_row_number = true) r
CROSS JOIN store_run s
WHERE r.codigo_producto IS NOT NULL AND r.cantidad_actual IS NOT NULL
  AND r.file_row_number NOT IN (SELECT file_row_number FROM losers)
