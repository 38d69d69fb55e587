-- fluxion de-duplication: the rows of the cleaned staged file ($rows) that lose to another row
-- of the same product, by their position in the file (file_row_number).
-- Deterministic winner: the lowest source row id, then the values. Rows without code or
-- quantity are rejected anyway, so they take no part.
-- Why it is written this way: a window over every row would hold the whole store in memory and
-- sort it, yet only a few products have more than one row. So the repeated codes are found first
-- (one narrow column) and only their rows are ranked: memory stays flat in the store's size.
WITH repeated AS (
    SELECT codigo_producto FROM read_parquet($rows)
    WHERE codigo_producto IS NOT NULL AND cantidad_actual IS NOT NULL
    GROUP BY codigo_producto
    HAVING count(*) > 1
)
SELECT file_row_number FROM read_parquet($rows, file_row_number = true)
WHERE codigo_producto IN (SELECT codigo_producto FROM repeated)
  AND cantidad_actual IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY codigo_producto
    ORDER BY origen_id ASC NULLS LAST, cantidad_actual, codigo_barras, descripcion_producto
) > 1
