-- fluxion transform: the rows of inventario_raw for one store, as the view `inventario` of the
-- store's ready database (a small DuckDB file that the publish step attaches and copies from).
-- The rows themselves stay in the cleaned staged file ({rows}, already cleaned, typed and derived
-- by sql/clean.sql during the fetch); the ready database adds only the store's constants (table
-- store_run) and the de-duplication losers (table losers, from sql/duplicates.sql). So nothing
-- is rewritten after the fetch, and the rows reach the target in the staged file's row groups.
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
    r.estado_stock,
    s.fecha_extraccion,
    s.batch_id
FROM read_parquet({rows}, file_row_number = true) r
CROSS JOIN store_run s
WHERE r.codigo_producto IS NOT NULL AND r.cantidad_actual IS NOT NULL
  AND r.file_row_number NOT IN (SELECT file_row_number FROM losers)
