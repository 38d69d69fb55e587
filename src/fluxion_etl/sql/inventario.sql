-- fluxion default inventory query (ANSI SQL; runs unchanged on SQL Server, PostgreSQL, SQLite).
-- One row per stock record of the location's own warehouse (the single bound parameter).
-- Rules: active products sold by unit, with at least one exchangeable barcode, not PROCURA.
-- No fan-out: barcodes are reduced to one per product before the join, and groups/subgroups are
-- joined on their full keys (their codes repeat across departments).
-- Column aliases are the staging contract read by the transform; a custom query
-- (ETL_QUERY_FILE) must return the same names.
SELECT
    d.id              AS origen_id,
    p.c_Codigo        AS codigo_producto,
    b.codigo_barras   AS codigo_barras,
    p.c_Descri        AS descripcion_producto,
    dep.C_DESCRIPCIO  AS categoria,
    g.C_DESCRIPCIO    AS grupo,
    sg.C_DESCRIPCIO   AS subgrupo,
    p.c_Marca         AS marca,
    p.c_Presenta      AS presentacion,
    p.Text2           AS cuadrante,
    d.n_cantidad      AS cantidad_actual,
    p.n_CostoAct      AS costo_unitario_actual,
    p.n_Precio1       AS precio_venta_actual,
    p.n_Impuesto1     AS impuesto_porcentaje,
    p.n_Peso          AS peso_producto,
    p.n_Volumen       AS volumen_producto,
    p.n_CantiBul      AS cantidad_bultos,
    p.n_TipoPeso      AS tipo_peso
FROM MA_DEPOPROD d
JOIN MA_PRODUCTOS p
    ON p.c_Codigo = d.c_codarticulo
JOIN (
    SELECT c.c_CodNasa, MIN(c.c_Codigo) AS codigo_barras
    FROM MA_CODIGOS c
    WHERE c.c_Descripcion = 'BARRA' AND c.nu_Intercambio = 1
    GROUP BY c.c_CodNasa
) b
    ON b.c_CodNasa = p.c_Codigo
LEFT JOIN MA_DEPARTAMENTOS dep
    ON dep.C_CODIGO = p.c_Departamento
LEFT JOIN MA_GRUPOS g
    ON g.c_CODIGO = p.c_Grupo
   AND g.c_departamento = p.c_Departamento
LEFT JOIN MA_SUBGRUPOS sg
    ON sg.c_CODIGO = p.c_Subgrupo
   AND sg.c_in_grupo = p.c_Grupo
   AND sg.c_in_departamento = p.c_Departamento
WHERE d.c_coddeposito = ?
  AND p.n_Activo = 1
  AND p.n_TipoPeso = 0
  AND p.c_Departamento <> '000017'
