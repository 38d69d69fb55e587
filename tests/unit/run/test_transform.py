"""Staging then transform on real DuckDB: per-row clean-up while staging, dedupe, derivation."""

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fluxion_etl.contract import BACKEND_COLUMNS, StockThresholds
from fluxion_etl.run import stage
from fluxion_etl.run.clean import RowCleanup
from fluxion_etl.run.clean_sql import CLEAN_MACRO, DECIMAL_TYPES
from fluxion_etl.run.stage import stage_batches
from fluxion_etl.run.staging_area import StagedFile
from fluxion_etl.run.transform import transform_store
from fluxion_etl.source.query import STAGED_COLUMNS
from fluxion_etl.stores import Store

STORE = Store("tienda_03", "MAÑONGO", "tienda", "192.168.3.10", 14348, "VAD10", "0302")
WHEN = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)


def staged(tmp_path: Path, rows: list[dict[str, object]], numeric: pa.DataType) -> StagedFile:
    types = {name: pa.string() for name in STAGED_COLUMNS}
    types["origen_id"] = pa.int64()
    for name in ("cantidad_actual", "costo_unitario_actual", "precio_venta_actual"):
        types[name] = numeric
    schema = pa.schema([(name, types[name]) for name in STAGED_COLUMNS])
    full = [{name: row.get(name) for name in STAGED_COLUMNS} for row in rows]
    batch = pa.RecordBatch.from_pylist(full, schema=schema)
    return stage_batches([batch], tmp_path / "staged.parquet", "tienda_03")


def published(ready: Path) -> dict[str, dict[str, object]]:
    """What the publish step copies: the ready database's view."""
    con = duckdb.connect(str(ready), read_only=True)
    try:
        cursor = con.execute("SELECT * FROM inventario")
        names = [c[0] for c in cursor.description]
        return {
            row[names.index("codigo_producto")]: dict(zip(names, row, strict=True))
            for row in cursor.fetchall()
        }
    finally:
        con.close()


ROWS: list[dict[str, object]] = [
    {
        "origen_id": 1,
        "codigo_producto": " ab-01 ",
        "codigo_barras": "7591",
        "descripcion_producto": "  CAFE\u0301  MOLIDO\t1/2 KG ",
        "marca": "P&G",
        "categoria": " VIVERES \t Y  ABARROTES ",
        "cantidad_actual": Decimal("12.500"),
        "costo_unitario_actual": Decimal("2.0000"),
        "precio_venta_actual": Decimal("2.5000"),
        "impuesto_porcentaje": "16.00",
        "grupo": " GRANOS ",
        "tipo_peso": "0",
    },
    {  # duplicate of AB-01 after upper-casing: loses (higher origen_id)
        "origen_id": 7,
        "codigo_producto": "AB-01",
        "descripcion_producto": "OTRO",
        "cantidad_actual": Decimal("99"),
    },
    {
        "origen_id": 2,
        "codigo_producto": "NEG",
        "descripcion_producto": "LECHE 50% GRASA (AZUL)",
        "categoria": "VIVERES Y ABARROTES",
        "cantidad_actual": Decimal("-3.000"),
        "costo_unitario_actual": Decimal("1.1111"),
        "precio_venta_actual": None,
    },
    {"origen_id": 3, "codigo_producto": "   ", "cantidad_actual": Decimal("1")},  # no code
    {
        "origen_id": 4,
        "codigo_producto": "ZERO",
        "descripcion_producto": " \u00a0 ",
        "cantidad_actual": Decimal("0"),
        "peso_producto": "no es número",
    },
]


@pytest.mark.parametrize("numeric", [pa.decimal128(18, 4), pa.float64()])
def test_a_store_of_one_chunk_is_cleaned_by_the_transform_into_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, numeric: pa.DataType
) -> None:
    """Staged as fetched (one chunk: the fetch process starts no DuckDB) or cleaned chunk by
    chunk beside the fetch (two chunks and more), a store publishes the same rows."""
    rows = as_floats(ROWS) if numeric == pa.float64() else ROWS
    for name in ("one", "chunked"):
        (tmp_path / name).mkdir()
    one = staged(tmp_path / "one", rows, numeric)
    monkeypatch.setattr(stage, "CLEAN_CHUNK_ROWS", 2)
    chunked = staged(tmp_path / "chunked", rows, numeric)
    assert (one.cleaned, chunked.cleaned) == (False, True)
    assert pq.read_table(one.path)["codigo_producto"].to_pylist()[0] == " ab-01 "  # as fetched

    def without_ids(made: StagedFile) -> dict[str, dict[str, object]]:
        ready = made.path.parent / "ready.duckdb"
        out = published(transform_store(made, ready, STORE, "run-1", WHEN).path)
        return {code: {k: v for k, v in row.items() if k != "id"} for code, row in out.items()}

    cleaned_here = without_ids(one)
    assert sorted(cleaned_here) == ["AB-01", "NEG", "ZERO"]
    assert cleaned_here == without_ids(chunked)


def test_each_cleaned_chunk_is_written_at_once_as_its_own_row_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch process holds no cleaned rows waiting to fill a row group of the target's size
    (up to ~40 MiB at 500k products): every chunk reaches the staged file as its own row group."""
    monkeypatch.setattr(stage, "CLEAN_CHUNK_ROWS", 2)
    made = staged(tmp_path, ROWS, pa.decimal128(18, 4))
    assert made.cleaned
    sizes = [
        pq.ParquetFile(made.path).metadata.row_group(i).num_rows
        for i in range(pq.ParquetFile(made.path).metadata.num_row_groups)
    ]
    assert sizes == [2, 2, 1]


@pytest.mark.parametrize(
    ("chunk_rows", "expected"),
    [
        (3, ["2 threads", "clean 3", "clean 2"]),  # a store of two chunks: both after the fetch
        (2, ["clean 2", "clean 2", "2 threads", "clean 1"]),
    ],
)
def test_what_is_cleaned_after_the_fetch_ended_is_cleaned_on_two_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int, expected: list[str]
) -> None:
    """Once the engine has no batch left, the engine, driver and server have left the cores: the
    clean-up of the last chunk takes two threads. A store of two chunks cleans its held first
    one then too; it was cleaned, with the last, on one thread."""
    monkeypatch.setattr(stage, "CLEAN_CHUNK_ROWS", chunk_rows)
    seen: list[str] = []
    clean, threads = RowCleanup.__call__, RowCleanup.threads

    def cleaning(self: RowCleanup, chunk: pa.Table) -> pa.Table:
        seen.append(f"clean {chunk.num_rows}")
        return clean(self, chunk)

    def threading(self: RowCleanup, count: int) -> None:
        seen.append(f"{count} threads")
        threads(self, count)

    monkeypatch.setattr(RowCleanup, "__call__", cleaning)
    monkeypatch.setattr(RowCleanup, "threads", threading)
    made = staged(tmp_path, ROWS, pa.decimal128(18, 4))
    assert (made.cleaned, made.rows) == (True, 5)
    assert seen == expected


def as_floats(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The same rows as a driver that reports decimals as doubles (SQLite) would stage them."""
    return [{k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("numeric", [pa.decimal128(18, 4), pa.float64()])
def test_transform_cleans_dedupes_and_derives(tmp_path: Path, numeric: pa.DataType) -> None:
    rows = as_floats(ROWS) if numeric == pa.float64() else ROWS
    result = transform_store(
        staged(tmp_path, rows, numeric), tmp_path / "ready.duckdb", STORE, "run-1", WHEN
    )
    out = published(result.path)
    assert sorted(out) == ["AB-01", "NEG", "ZERO"]

    cafe = out["AB-01"]
    assert cafe["descripcion_producto"] == "CAFÉ MOLIDO 1/2 KG"  # NFC, collapsed, trimmed
    assert cafe["marca"] == "P&G"
    assert cafe["categoria"] == "VIVERES Y ABARROTES"  # catalog texts: cleaned per value
    assert cafe["cantidad_actual"] == Decimal("12.500")
    assert cafe["valor_inventario_actual"] == Decimal("25.00")
    assert cafe["margen_porcentaje"] == Decimal("20.00")
    assert cafe["impuesto_porcentaje"] == Decimal("16.00")
    assert cafe["estado_stock"] == "BAJO"  # 10 < 12.5 <= 20 (default thresholds)
    assert (cafe["ubicacion_id"], cafe["ubicacion_nombre"], cafe["tipo_ubicacion"]) == (
        "tienda_03",
        "MAÑONGO",
        "tienda",
    )
    assert cafe["fecha_extraccion"] == dt.datetime(2026, 11, 27, 18, 0)  # Caracas, UTC-4
    assert cafe["batch_id"] == "run-1"
    # the backend's columns
    assert cafe["subcategoria"] == "GRANOS" and cafe["tipo_peso"] == "0"
    assert cafe["server_ip"] == "192.168.3.10"
    assert (cafe["stock_minimo"], cafe["stock_maximo"], cafe["punto_reorden"]) == (10, 100, 20)
    assert (cafe["activo"], cafe["es_perecedero"], cafe["dias_sin_movimiento"]) == (
        True,
        False,
        0,
    )
    assert cafe["cantidad_disponible"] == cafe["cantidad_en_transito"] == Decimal(0)
    assert cafe["pasillo"] is None and cafe["fecha_ultimo_conteo"] is None
    assert len({uuid.UUID(row["id"]) for row in out.values()}) == len(out)

    neg = out["NEG"]
    assert neg["cantidad_actual"] == Decimal("-3.000")  # kept, not clamped
    assert neg["estado_stock"] == "SIN_STOCK"  # negatives included
    assert neg["descripcion_producto"] == "LECHE 50% GRASA (AZUL)"
    assert neg["categoria"] == "VIVERES Y ABARROTES"
    assert neg["margen_porcentaje"] is None and neg["valor_inventario_actual"] == Decimal("-3.33")

    zero = out["ZERO"]
    assert zero["descripcion_producto"] is None and zero["estado_stock"] == "SIN_STOCK"
    assert zero["peso_producto"] is None

    c = result.counters
    assert (c.extracted, c.loaded, c.rejected, c.duplicates) == (5, 3, 1, 1)
    assert (c.negative_stock, c.missing_price, c.missing_description) == (1, 2, 1)
    assert c.invalid_values == 1


def test_published_types_are_exact_decimals(tmp_path: Path) -> None:
    result = transform_store(
        staged(tmp_path, as_floats(ROWS), pa.float64()),
        tmp_path / "ready.duckdb",
        STORE,
        "r",
        WHEN,
    )
    con = duckdb.connect(str(result.path), read_only=True)
    types = dict(
        con.execute("SELECT column_name, column_type FROM (DESCRIBE inventario)").fetchall()
    )
    con.close()
    for column, sql_type in DECIMAL_TYPES.items():
        assert types[column] == sql_type, column
    assert types["valor_inventario_actual"] == "DECIMAL(18,2)"
    assert types["margen_porcentaje"] == "DECIMAL(12,2)"
    assert types["fecha_extraccion"] == "TIMESTAMP"
    for column, sql_type in BACKEND_COLUMNS.items():
        if column != "created_at":  # added by the publish, at publish time
            # DuckDB keeps a DECIMAL's precision and scale, and drops a VARCHAR's length
            expected = sql_type if sql_type.startswith("DECIMAL") else sql_type.split("(")[0]
            assert types[column] == expected, column


@pytest.mark.parametrize(
    ("quantity", "state"),
    [
        ("-1", "SIN_STOCK"),
        ("0", "SIN_STOCK"),
        ("0.5", "CRITICO"),
        ("5", "CRITICO"),
        ("5.001", "BAJO"),
        ("8", "BAJO"),
        ("8.5", "NORMAL"),
        ("49.999", "NORMAL"),
        ("50", "EXCESO"),
        ("900", "EXCESO"),
    ],
)
def test_estado_stock_grades_against_the_stores_own_thresholds(
    tmp_path: Path, quantity: str, state: str
) -> None:
    rows = [{"origen_id": 1, "codigo_producto": "X", "cantidad_actual": Decimal(quantity)}]
    thresholds = StockThresholds(Decimal(5), Decimal(50), Decimal(8))
    result = transform_store(
        staged(tmp_path, rows, pa.decimal128(18, 4)),
        tmp_path / "ready.duckdb",
        STORE,
        "r",
        WHEN,
        thresholds=thresholds,
    )
    assert published(result.path)["X"]["estado_stock"] == state


@pytest.mark.parametrize(
    ("value", "numeric", "text"),
    [("0", pa.int64(), "0"), ("2", pa.float64(), "2"), ("1.5", pa.float64(), "1.5")],
)
def test_tipo_peso_is_the_sources_number_as_text(
    tmp_path: Path, value: str, numeric: pa.DataType, text: str
) -> None:
    rows = [{"origen_id": 1, "codigo_producto": "X", "cantidad_actual": Decimal(1)}]
    types = {name: pa.string() for name in STAGED_COLUMNS} | {
        "origen_id": pa.int64(),
        "cantidad_actual": pa.decimal128(18, 4),
        "tipo_peso": numeric,
    }
    schema = pa.schema([(name, types[name]) for name in STAGED_COLUMNS])
    number = int(value) if numeric == pa.int64() else float(value)
    full = [
        {name: row.get(name) for name in STAGED_COLUMNS} | {"tipo_peso": number} for row in rows
    ]
    batch = pa.RecordBatch.from_pylist(full, schema=schema)
    staged = stage_batches([batch], tmp_path / "staged.parquet", "tienda_03")
    result = transform_store(staged, tmp_path / "ready.duckdb", STORE, "r", WHEN)
    assert published(result.path)["X"]["tipo_peso"] == text


def test_fecha_extraccion_follows_the_chains_time_zone(tmp_path: Path) -> None:
    rows = [{"origen_id": 1, "codigo_producto": "X", "cantidad_actual": Decimal(1)}]
    result = transform_store(
        staged(tmp_path, rows, pa.decimal128(18, 4)),
        tmp_path / "ready.duckdb",
        STORE,
        "r",
        dt.datetime(2026, 3, 1, 2, 30),  # naive: UTC, fluxion's convention
        timezone="Europe/Madrid",
    )
    assert published(result.path)["X"]["fecha_extraccion"] == dt.datetime(2026, 3, 1, 3, 30)


def test_empty_extract_publishes_nothing(tmp_path: Path) -> None:
    result = transform_store(
        staged(tmp_path, [], pa.string()), tmp_path / "ready.duckdb", STORE, "r", WHEN
    )
    assert published(result.path) == {}
    assert result.counters.extracted == 0 and result.counters.duplicates == 0


TRICKY_TEXTS = [
    "a b",
    " a",
    "a ",
    "a  b",
    "a\tb",
    "a\u00a0b",
    "a \u00a0b",
    "\u2028",
    "\u3000x\u3000",
    "a\x85b",
    "a\x00b",
    "a\x1fb",
    "  ",
    "",
    "CAFE\u0301",
    "x\u200bx",
    "50% (AZUL) / P&G",
    "ÑAME\r\n",
]


def test_the_fast_clean_up_gives_what_the_plain_rule_gives() -> None:
    """The CASE in CLEAN_MACRO only skips work: same result as always running the regex."""
    con = duckdb.connect()
    con.execute(CLEAN_MACRO)
    plain = r"nullif(trim(regexp_replace(nfc_normalize(x), '[\s\p{Z}\p{Cc}]+', ' ', 'g')), '')"
    rows = con.execute(
        f"SELECT x, fluxion_clean(x), {plain} FROM unnest(?) AS t(x)", [TRICKY_TEXTS]
    ).fetchall()
    assert [(x, fast) for x, fast, _ in rows] == [(x, slow) for x, _, slow in rows]
