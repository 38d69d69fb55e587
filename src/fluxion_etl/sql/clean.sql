-- fluxion per-row clean-up: one chunk of fetched rows (extract_batch) -> the same rows, cleaned,
-- typed and derived, in the column order of inventario_raw (without the store's constants).
-- Runs on each chunk while the next one is being fetched (transform.RowCleanup), so that after
-- the fetch only the de-duplication is left (sql/duplicates.sql, sql/transform.sql).
-- Text clean-up is lossless: trim, collapse whitespace/control runs to one space, Unicode NFC
-- (fluxion_clean, transform.CLEAN_MACRO). Characters such as / % & ( ) are kept. The catalog
-- texts (categoria ... cuadrante) arrive here already cleaned the same way: they repeat on every
-- product, so RowCleanup cleans each distinct value once before this query. Numbers become
-- exact DECIMALs (the types of transform.DECIMAL_TYPES): TRY_CAST makes a value that is not a
-- number NULL, and valor_invalido flags the row so it is counted; a row without code or
-- quantity is rejected later. The backend's per-row columns are made here too: a uuid per row
-- (id), the group as subcategoria, and tipo_peso as text ('0', not '0.000' from a decimal).
WITH typed AS (
    SELECT
        origen_id,
        upper(fluxion_clean(codigo_producto))            AS codigo_producto,
        fluxion_clean(codigo_barras)                     AS codigo_barras,
        fluxion_clean(descripcion_producto)              AS descripcion_producto,
        categoria                                        AS categoria,
        grupo                                            AS grupo,
        subgrupo                                         AS subgrupo,
        marca                                            AS marca,
        presentacion                                     AS presentacion,
        cuadrante                                        AS cuadrante,
        TRY_CAST(cantidad_actual AS DECIMAL(18,3))       AS cantidad_actual,
        TRY_CAST(costo_unitario_actual AS DECIMAL(18,4)) AS costo_unitario_actual,
        TRY_CAST(precio_venta_actual AS DECIMAL(18,4))   AS precio_venta_actual,
        TRY_CAST(impuesto_porcentaje AS DECIMAL(9,2))    AS impuesto_porcentaje,
        TRY_CAST(peso_producto AS DECIMAL(18,3))         AS peso_producto,
        TRY_CAST(volumen_producto AS DECIMAL(18,3))      AS volumen_producto,
        TRY_CAST(cantidad_bultos AS DECIMAL(18,3))       AS cantidad_bultos,
        -- how many numbers the row brought: compared below with how many survived the casts
        (cantidad_actual IS NOT NULL)::INTEGER
            + (costo_unitario_actual IS NOT NULL)::INTEGER
            + (precio_venta_actual IS NOT NULL)::INTEGER
            + (impuesto_porcentaje IS NOT NULL)::INTEGER
            + (peso_producto IS NOT NULL)::INTEGER
            + (volumen_producto IS NOT NULL)::INTEGER
            + (cantidad_bultos IS NOT NULL)::INTEGER   AS numeros_recibidos,
        left(coalesce(
            regexp_replace(CAST(TRY_CAST(tipo_peso AS DECIMAL(18,6)) AS VARCHAR), '\.?0+$', ''),
            fluxion_clean(tipo_peso)
        ), 20)                                           AS tipo_peso
    FROM extract_batch
)
SELECT
    origen_id,
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
    CAST(gen_random_uuid() AS VARCHAR)   AS id,
    grupo                                AS subcategoria,
    tipo_peso,
    numeros_recibidos > (cantidad_actual IS NOT NULL)::INTEGER
        + (costo_unitario_actual IS NOT NULL)::INTEGER
        + (precio_venta_actual IS NOT NULL)::INTEGER
        + (impuesto_porcentaje IS NOT NULL)::INTEGER
        + (peso_producto IS NOT NULL)::INTEGER
        + (volumen_producto IS NOT NULL)::INTEGER
        + (cantidad_bultos IS NOT NULL)::INTEGER AS valor_invalido
FROM typed
