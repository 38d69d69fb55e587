"""Generated Stellar stores read back through the real ODBC drivers: SQLite3 (the demo's embedded
source) and psqlODBC (the PostgreSQL stand-in for the stores' SQL Servers).

Besides row counts, a reference ANSI query (the business rules, written here independently of
the pipeline) must reproduce the generator's expected rows on both engines: that proves the
oracle is reachable by SQL as the real drivers return the data, not only by Python.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyodbc
import pytest

from fluxion_etl.demo.sqlite_source import write_sqlite
from fluxion_etl.demo.stellar import ExpectedRow, StellarStore, Traps, generate_store
from fluxion_harness.postgres_source import PgServer, PgStore, write_postgres

postgres = pytest.mark.postgres

REFERENCE_QUERY = """
SELECT d.id, p.c_Codigo, b.barcode, p.c_Descri, dep.C_DESCRIPCIO, g.C_DESCRIPCIO,
       s.C_DESCRIPCIO, p.c_Marca, p.c_Presenta, p.Text2, d.n_cantidad, p.n_CostoAct,
       p.n_Precio1, p.n_Impuesto1, p.n_Peso, p.n_Volumen, p.n_CantiBul
FROM MA_DEPOPROD d
JOIN MA_PRODUCTOS p ON p.c_Codigo = d.c_codarticulo
JOIN (SELECT c_CodNasa, MIN(c_Codigo) AS barcode FROM MA_CODIGOS
      WHERE c_Descripcion = 'BARRA' AND nu_Intercambio = 1 GROUP BY c_CodNasa) b
  ON b.c_CodNasa = p.c_Codigo
LEFT JOIN MA_DEPARTAMENTOS dep ON dep.C_CODIGO = p.c_Departamento
LEFT JOIN MA_GRUPOS g ON g.c_departamento = p.c_Departamento AND g.c_CODIGO = p.c_Grupo
LEFT JOIN MA_SUBGRUPOS s ON s.c_in_departamento = p.c_Departamento
  AND s.c_in_grupo = p.c_Grupo AND s.c_CODIGO = p.c_Subgrupo
WHERE d.c_coddeposito = ? AND p.n_Activo = 1 AND p.n_TipoPeso = 0
  AND p.c_Departamento <> '000017'
"""


def clean(value: object) -> str | None:
    if value is None:
        return None
    return " ".join(unicodedata.normalize("NFC", str(value)).split()) or None


def number(value: object) -> Decimal | None:
    # psqlODBC returns Decimal; the SQLite3 driver returns the stored INTEGER/REAL as text.
    return None if value is None else Decimal(str(value))


def published_by_reference_query(
    conn: pyodbc.Connection, warehouse: str
) -> tuple[int, dict[str, ExpectedRow]]:
    rows = conn.cursor().execute(REFERENCE_QUERY, warehouse).fetchall()
    published: dict[str, ExpectedRow] = {}
    for row in sorted(rows, key=lambda r: int(r[0])):  # lowest stock row id wins
        code = str(row[1]).strip().upper()
        quantity = number(row[10])
        assert quantity is not None
        published.setdefault(
            code,
            ExpectedRow(
                codigo_producto=code,
                codigo_barras=str(row[2]),
                descripcion_producto=clean(row[3]),
                categoria=clean(row[4]),
                grupo=clean(row[5]),
                subgrupo=clean(row[6]),
                marca=clean(row[7]),
                presentacion=clean(row[8]),
                cuadrante=clean(row[9]),
                cantidad_actual=quantity,
                costo_unitario_actual=number(row[11]),
                precio_venta_actual=number(row[12]),
                impuesto_porcentaje=number(row[13]),
                peso_producto=number(row[14]),
                volumen_producto=number(row[15]),
                cantidad_bultos=number(row[16]),
            ),
        )
    return len(rows), published


def count_rows(conn: pyodbc.Connection, store: StellarStore) -> dict[str, int]:
    cursor = conn.cursor()
    return {
        table: int(cursor.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        for table in store.tables
    }


def some_row(
    store: StellarStore, table: str, predicate: Callable[[dict[str, object]], bool]
) -> dict[str, object]:
    columns, rows = store.tables[table]
    return next(r for row in rows if predicate(r := dict(zip(columns, row, strict=True))))


def has_enye(row: dict[str, object]) -> bool:
    return "Ñ" in str(row["c_Descri"])


def is_negative_here(store: StellarStore) -> Callable[[dict[str, object]], bool]:
    def predicate(row: dict[str, object]) -> bool:
        return row["c_coddeposito"] == store.warehouse and row["n_cantidad"] < 0  # type: ignore[operator]

    return predicate


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[StellarStore, Path]:
    store = generate_store("0302", 3000, seed=21)
    path = tmp_path_factory.mktemp("stellar") / "stellar.sqlite"
    write_sqlite(store, path)
    return store, path


def sqlite_odbc(path: Path) -> pyodbc.Connection:
    return pyodbc.connect(f"Driver=SQLite3;Database={path};")


# -- SQLite through the SQLite3 ODBC driver -------------------------------------------------------


def test_sqlite_file_read_through_the_sqlite3_driver_has_every_row(
    sqlite_store: tuple[StellarStore, Path],
) -> None:
    store, path = sqlite_store
    with sqlite_odbc(path) as conn:
        assert count_rows(conn, store) == store.row_counts


def test_sqlite_file_keeps_texts_and_negative_stock(
    sqlite_store: tuple[StellarStore, Path],
) -> None:
    store, path = sqlite_store
    product = some_row(store, "MA_PRODUCTOS", has_enye)
    stock = some_row(store, "MA_DEPOPROD", is_negative_here(store))
    with sqlite_odbc(path) as conn:
        cursor = conn.cursor()
        text = cursor.execute(
            "SELECT c_Descri FROM MA_PRODUCTOS WHERE c_Codigo = ?", product["c_Codigo"]
        ).fetchone()[0]
        quantity = cursor.execute(
            "SELECT n_cantidad FROM MA_DEPOPROD WHERE id = ?", stock["id"]
        ).fetchone()[0]
    assert text == product["c_Descri"]
    assert Decimal(str(quantity)) == stock["n_cantidad"]
    assert Decimal(str(quantity)) < 0


def test_reference_query_over_sqlite_gives_the_expected_rows(
    sqlite_store: tuple[StellarStore, Path],
) -> None:
    store, path = sqlite_store
    with sqlite_odbc(path) as conn:
        selected, published = published_by_reference_query(conn, store.warehouse)
    assert selected == store.source_rows_selected
    assert published == store.expected


def test_write_sqlite_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "stellar.sqlite"
    write_sqlite(generate_store("0202", 300, seed=1), path)
    smaller = generate_store("0202", 40, seed=2, traps=Traps.disabled())
    write_sqlite(smaller, path)
    with sqlite_odbc(path) as conn:
        assert count_rows(conn, smaller) == smaller.row_counts
    assert [p.name for p in tmp_path.iterdir()] == ["stellar.sqlite"]


# -- PostgreSQL through psqlODBC ------------------------------------------------------------------


def pg_odbc(server: PgServer, store: PgStore) -> pyodbc.Connection:
    return pyodbc.connect(server.odbc_connection_string(store.database), timeout=10)


@postgres
def test_postgres_stores_read_through_psqlodbc_have_every_row(
    pg_server: PgServer, pg_stores: list[PgStore]
) -> None:
    assert [s.id for s in pg_stores] == ["tienda_02", "tienda_03", "cedi_seco"]
    assert len({s.database for s in pg_stores}) == len({s.warehouse for s in pg_stores}) == 3
    for store in pg_stores:
        assert store.database.startswith("fluxion_t_")
        with pg_odbc(pg_server, store) as conn:
            assert count_rows(conn, store.data) == store.data.row_counts, store.id


@postgres
def test_postgres_keeps_negative_stock_and_enye_exactly(
    pg_server: PgServer, pg_stores: list[PgStore]
) -> None:
    store = pg_stores[1]
    product = some_row(store.data, "MA_PRODUCTOS", has_enye)
    stock = some_row(store.data, "MA_DEPOPROD", is_negative_here(store.data))
    with pg_odbc(pg_server, store) as conn:
        cursor = conn.cursor()
        text = cursor.execute(
            "SELECT c_Descri FROM MA_PRODUCTOS WHERE c_Codigo = ?", product["c_Codigo"]
        ).fetchone()[0]
        quantity = cursor.execute(
            "SELECT n_cantidad FROM MA_DEPOPROD WHERE id = ?", stock["id"]
        ).fetchone()[0]
    assert text == product["c_Descri"]
    assert isinstance(quantity, Decimal)
    assert quantity == stock["n_cantidad"]
    assert quantity < 0
    assert quantity.as_tuple().exponent == -3


@postgres
def test_reference_query_over_postgres_gives_the_expected_rows(
    pg_server: PgServer, pg_stores: list[PgStore]
) -> None:
    for store in pg_stores:
        with pg_odbc(pg_server, store) as conn:
            selected, published = published_by_reference_query(conn, store.warehouse)
        assert selected == store.data.source_rows_selected, store.id
        assert published == store.data.expected, store.id


@postgres
def test_naive_joins_multiply_rows_on_postgres(
    pg_server: PgServer, pg_stores: list[PgStore]
) -> None:
    store = pg_stores[0]
    naive = """
        SELECT COUNT(*) FROM MA_DEPOPROD d
        JOIN MA_PRODUCTOS p ON p.c_Codigo = d.c_codarticulo
        JOIN MA_CODIGOS c ON c.c_CodNasa = p.c_Codigo
        LEFT JOIN MA_GRUPOS g ON g.c_CODIGO = p.c_Grupo
        WHERE d.c_coddeposito = ? AND p.n_Activo = 1 AND p.n_TipoPeso = 0
          AND c.c_Descripcion = 'BARRA' AND c.nu_Intercambio = 1
          AND p.c_Departamento <> '000017'
    """
    with pg_odbc(pg_server, store) as conn:
        count = conn.cursor().execute(naive, store.warehouse).fetchone()[0]
    assert count > 2 * store.data.source_rows_selected


@postgres
def test_make_pg_store_gives_a_test_its_own_database(
    pg_server: PgServer, pg_stores: list[PgStore], make_pg_store: Callable[..., PgStore]
) -> None:
    own = make_pg_store(120, seed=9, traps=Traps.disabled(), warehouse="0402", id="tienda_04")
    assert own.database not in {s.database for s in pg_stores}
    assert (own.id, own.warehouse, len(own.data.expected)) == ("tienda_04", "0402", 120)
    with pg_odbc(pg_server, own) as conn:
        assert count_rows(conn, own.data) == own.data.row_counts


@postgres
def test_write_postgres_replaces_the_tables_on_a_rerun(
    pg_server: PgServer, make_pg_store: Callable[..., PgStore]
) -> None:
    own = make_pg_store(200, seed=3)
    smaller = generate_store("0202", 30, seed=4, traps=dataclasses.replace(Traps(), dirty_text=1.0))
    conn = pg_server.connect(own.database)
    try:
        write_postgres(smaller, conn)
    finally:
        conn.close()
    with pyodbc.connect(pg_server.odbc_connection_string(own.database)) as odbc:
        assert count_rows(odbc, smaller) == smaller.row_counts
        descriptions = dict(
            odbc.cursor().execute("SELECT c_Codigo, c_Descri FROM MA_PRODUCTOS").fetchall()
        )
    _, rows = smaller.tables["MA_PRODUCTOS"]
    assert descriptions == {row[0]: row[1] for row in rows}  # tabs and NFD survive COPY


def test_odbc_connection_string_braces_the_password_and_refuses_unquotable_values() -> None:
    server = PgServer("127.0.0.1", 5432, "fluxion_test", "a}b;c=d{e f")
    assert server.odbc_connection_string("fluxion_t_1") == (
        "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=fluxion_t_1;"
        "Uid=fluxion_test;Pwd={a}}b;c=d{e f};"
    )
    assert "a}b" not in repr(server)
    with pytest.raises(ValueError, match="Database"):
        server.odbc_connection_string("x;Uid=postgres")
