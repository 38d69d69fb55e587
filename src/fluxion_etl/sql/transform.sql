-- fluxion transform: staged extract (read_parquet($staged)) -> rows of inventario_raw.
-- Parameters: $staged, $ubicacion_id, $ubicacion_nombre, $tipo_ubicacion, $fecha_extraccion, $batch_id.
-- Text clean-up is lossless: trim, collapse whitespace/control runs to one space, Unicode NFC.
-- Characters such as / % & ( ) are kept. Numbers become exact DECIMALs (TRY_CAST: a value that
-- is not a number becomes NULL and is counted, a row without code or quantity is rejected).
WITH cleaned AS (
    SELECT
        origen_id,
        upper(fluxion_clean(codigo_producto))     AS codigo_producto,
        fluxion_clean(codigo_barras)              AS codigo_barras,
        fluxion_clean(descripcion_producto)       AS descripcion_producto,
        fluxion_clean(categoria)                  AS categoria,
        fluxion_clean(grupo)                      AS grupo,
        fluxion_clean(subgrupo)                   AS subgrupo,
        fluxion_clean(marca)                      AS marca,
        fluxion_clean(presentacion)               AS presentacion,
        fluxion_clean(cuadrante)                  AS cuadrante,
        TRY_CAST(cantidad_actual AS DECIMAL(18,3))       AS cantidad_actual,
        TRY_CAST(costo_unitario_actual AS DECIMAL(18,4)) AS costo_unitario_actual,
        TRY_CAST(precio_venta_actual AS DECIMAL(18,4))   AS precio_venta_actual,
        TRY_CAST(impuesto_porcentaje AS DECIMAL(9,2))    AS impuesto_porcentaje,
        TRY_CAST(peso_producto AS DECIMAL(18,3))         AS peso_producto,
        TRY_CAST(volumen_producto AS DECIMAL(18,3))      AS volumen_producto,
        TRY_CAST(cantidad_bultos AS DECIMAL(18,3))       AS cantidad_bultos
    FROM read_parquet($staged)
),
accepted AS (
    SELECT * FROM cleaned
    WHERE codigo_producto IS NOT NULL AND cantidad_actual IS NOT NULL
),
winners AS (
    -- one row per product; deterministic winner: the lowest source row id, then the values
    SELECT * FROM accepted
    QUALIFY row_number() OVER (
        PARTITION BY codigo_producto
        ORDER BY origen_id ASC NULLS LAST, cantidad_actual, codigo_barras, descripcion_producto
    ) = 1
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
ORDER BY codigo_producto
