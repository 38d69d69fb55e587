-- fluxion transform: the cleaned staged extract (read_parquet($staged)) -> rows of inventario_raw.
-- Parameters: $staged, $ubicacion_id, $ubicacion_nombre, $tipo_ubicacion, $fecha_extraccion, $batch_id.
-- The per-row clean-up (text: trim, collapse whitespace/control runs to one space, Unicode NFC;
-- upper-cased codes; numbers as exact DECIMALs, NULL when not a number) already ran on each batch
-- during the fetch (transform.RowCleanup); what is left needs the whole store: reject rows
-- without code or quantity, keep one row per product, derive fields.
-- Why the de-duplication is written this way: a window over every row would hold the whole store
-- in memory (and sort it), yet only a few products have more than one row. So the repeated codes
-- are found first (one narrow column), only their rows are ranked, and the losers are dropped
-- by their position in the staged file while every other row streams straight through. For the
-- same reason there is no final ORDER BY: the rows keep the order they were fetched in. Memory
-- stays flat in the store's size.
WITH repeated AS (
    SELECT codigo_producto FROM read_parquet($staged)
    WHERE codigo_producto IS NOT NULL AND cantidad_actual IS NOT NULL
    GROUP BY codigo_producto
    HAVING count(*) > 1
),
losers AS (
    SELECT file_row_number FROM read_parquet($staged, file_row_number = true)
    WHERE codigo_producto IN (SELECT codigo_producto FROM repeated)
      AND cantidad_actual IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY codigo_producto
        ORDER BY origen_id ASC NULLS LAST, cantidad_actual, codigo_barras, descripcion_producto
    ) > 1
),
winners AS (
    SELECT * FROM read_parquet($staged, file_row_number = true)
    WHERE codigo_producto IS NOT NULL AND cantidad_actual IS NOT NULL
      AND file_row_number NOT IN (SELECT file_row_number FROM losers)
)
SELECT
    CAST($ubicacion_id AS VARCHAR)       AS ubicacion_id,
    CAST($ubicacion_nombre AS VARCHAR)   AS ubicacion_nombre,
    CAST($tipo_ubicacion AS VARCHAR)     AS tipo_ubicacion,
    codigo_producto,
    codigo_barras,
    descripcion_producto,
    categoria,
    grupo,
    subgrupo,
    marca,
    presentacion,
    cuadrante,
    cantidad_actual,
    costo_unitario_actual,
    precio_venta_actual,
    impuesto_porcentaje,
    peso_producto,
    volumen_producto,
    cantidad_bultos,
    TRY_CAST(
        CAST(cantidad_actual AS DECIMAL(38,3)) * costo_unitario_actual AS DECIMAL(18,2)
    )                                    AS valor_inventario_actual,
    CASE WHEN precio_venta_actual > 0 AND costo_unitario_actual IS NOT NULL THEN
        TRY_CAST(
            (precio_venta_actual - costo_unitario_actual) * 100 / precio_venta_actual
            AS DECIMAL(12,2)
        )
    END                                  AS margen_porcentaje,
    CASE
        WHEN cantidad_actual < 0 THEN 'negativo'
        WHEN cantidad_actual = 0 THEN 'sin_stock'
        ELSE 'disponible'
    END                                  AS estado_stock,
    CAST($fecha_extraccion AS TIMESTAMP) AS fecha_extraccion,
    CAST($batch_id AS VARCHAR)           AS batch_id
FROM winners
