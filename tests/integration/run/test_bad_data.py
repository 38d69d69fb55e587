"""Bad data from real drivers: never a crash, and what cannot be published is counted with why.

PostgreSQL through psqlODBC: a blank product code, a text longer than the engine's default
buffer, a LATIN1 server, a server that stores bytes that are not text in its encoding. SQLite
through its ODBC driver, which lets through what SQL Server's drivers may too: non-numeric text
in a numeric column and bytes that are not UTF-8.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from etl_cli import json_lines, ledger_rows, published_rows, run_cli, write_stores

from fluxion_etl.demo.sqlite_source import write_sqlite
from fluxion_etl.demo.stellar import DEFAULT_TRAPS, generate_store
from fluxion_harness.postgres_source import PgServer, PgStore

ENGINES = ("arrow", "pyodbc")
REFETCH = "fetching the store again with wider settings"
PRODUCT_COLUMNS = (
    "c_codigo, c_descri, c_departamento, c_grupo, c_subgrupo, c_marca, text2, n_costoact,"
    " n_precio1, n_impuesto1, c_presenta, n_peso, n_volumen, n_tipopeso, n_cantibul, n_activo"
)


def execute(server: PgServer, database: str, *statements: str) -> None:
    conn = server.connect(database)
    with conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def a_published_code(store: PgStore) -> str:
    return sorted(store.data.expected)[0]


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ENGINES)
def test_a_text_longer_than_the_fetch_buffer_is_published_whole(
    etl_env: dict[str, str], pg_server: PgServer, make_pg_store: Any, engine: str
) -> None:
    """SQL Server's varchar(max) reaches arrow-odbc as a 8,000-character buffer; a longer value
    is fetched again with a buffer as wide as the driver says, never truncated or dropped."""
    store: PgStore = make_pg_store(300, seed=61)
    code = a_published_code(store)
    long_text = " ".join(["CAFÉ 1/2 KG"] * 1500)  # 16,499 characters
    execute(
        pg_server,
        store.database,
        "ALTER TABLE ma_productos ALTER COLUMN c_descri TYPE text",
        f"UPDATE ma_productos SET c_descri = '{long_text}' WHERE upper(trim(c_codigo)) = '{code}'",
    )
    write_stores(etl_env, ([store], pg_server))
    result = run_cli(["run"], {**etl_env, "ETL_ENGINE": engine})
    assert result.returncode == 0, result.stdout[-3000:]
    rows = published_rows(Path(etl_env["DATABASE_PATH"]), store.id)
    assert rows[code]["descripcion_producto"] == long_text
    assert set(rows) == set(store.data.expected)
    refetched = [line for line in json_lines(result.stdout) if line.get("event") == REFETCH]
    assert len(refetched) == (1 if engine == "arrow" else 0)  # pyodbc reads long text in parts


@pytest.mark.postgres
def test_a_blank_product_code_is_rejected_and_counted(
    etl_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    store: PgStore = make_pg_store(300, seed=62)
    code = a_published_code(store)
    execute(
        pg_server,
        store.database,
        # a copy of a published product under a blank code, with its barcode and stock row
        f"INSERT INTO ma_productos ({PRODUCT_COLUMNS}) SELECT '   ', "
        f"{PRODUCT_COLUMNS.split(', ', 1)[1]} FROM ma_productos"
        f" WHERE upper(trim(c_codigo)) = '{code}' LIMIT 1",
        "INSERT INTO ma_codigos (c_codigo, c_codnasa, c_descripcion, nu_intercambio)"
        " VALUES ('7590000000001', '   ', 'BARRA', 1)",
        "INSERT INTO ma_depoprod (id, c_coddeposito, c_codarticulo, n_cantidad)"
        f" SELECT max(id) + 1, '{store.warehouse}', '   ', 5 FROM ma_depoprod",
    )
    write_stores(etl_env, ([store], pg_server))
    result = run_cli(["run"], etl_env)
    assert result.returncode == 0, result.stdout[-3000:]
    entry = ledger_rows(Path(etl_env["DATABASE_PATH"]))[store.id]
    assert entry["registros_rechazados"] == 1
    assert entry["registros_extraidos"] - entry["registros_duplicados"] - 1 == len(
        store.data.expected
    )
    assert set(published_rows(Path(etl_env["DATABASE_PATH"]), store.id)) == set(
        store.data.expected
    )


@pytest.mark.postgres
def test_a_latin1_server_publishes_its_accents_exactly(
    etl_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    # LATIN1 has every Spanish letter, not the combining accents of the NFD "dirty text" trap
    traps = dataclasses.replace(DEFAULT_TRAPS, dirty_text=0.0)
    store: PgStore = make_pg_store(600, seed=63, encoding="LATIN1", traps=traps)
    write_stores(etl_env, ([store], pg_server))
    result = run_cli(["run"], etl_env)
    assert result.returncode == 0, result.stdout[-3000:]
    rows = published_rows(Path(etl_env["DATABASE_PATH"]), store.id)
    accented = 0
    for code, want in store.data.expected.items():
        assert rows[code]["descripcion_producto"] == want.descripcion_producto
        accented += any(ch in (want.descripcion_producto or "") for ch in "ÑÉÁÍÓÚ")
    assert accented > 0  # the data did carry non-ASCII text


@pytest.mark.postgres
def test_bytes_the_server_cannot_convert_fail_that_store_alone(
    etl_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    """A SQL_ASCII database holding Latin-1 bytes: the server itself refuses to send them as
    UTF-8 (SQLSTATE 22021). The store fails with ``datos`` and says why; the other publishes."""
    broken: PgStore = make_pg_store(300, seed=64, encoding="SQL_ASCII")
    steady: PgStore = make_pg_store(300, seed=65, id="tienda_03", warehouse="0302")
    code = a_published_code(broken)
    execute(
        pg_server,
        broken.database,
        "UPDATE ma_productos SET c_descri = convert_from('\\x4d41d14f4e474f'::bytea, 'SQL_ASCII')"
        f" WHERE upper(trim(c_codigo)) = '{code}'",
    )
    write_stores(etl_env, ([broken, steady], pg_server))
    result = run_cli(["run"], etl_env)
    assert result.returncode == 3, result.stdout[-3000:]
    ledger = ledger_rows(Path(etl_env["DATABASE_PATH"]))
    failed = ledger[broken.id]
    assert (failed["estado"], failed["error_tipo"], failed["intentos"]) == ("fallido", "datos", 1)
    assert "invalid byte sequence" in failed["error_mensaje"]
    assert ledger[steady.id]["estado"] == "exitoso"


@pytest.mark.parametrize("engine", ENGINES)
def test_sqlite_lets_through_non_numbers_and_non_utf8_and_neither_crashes(
    tmp_path: Path, engine: str
) -> None:
    data = generate_store("0202", 300, seed=66)
    source = tmp_path / "store.sqlite"
    write_sqlite(data, source)
    code, other = sorted(data.expected)[:2]
    with sqlite3.connect(source) as conn:
        conn.execute(
            "UPDATE MA_PRODUCTOS SET c_Descri = CAST(x'4d41d14f4e474f' AS TEXT)"
            " WHERE upper(trim(c_Codigo)) = ?",
            [code],
        )
        conn.execute(
            "UPDATE MA_PRODUCTOS SET n_Peso = 'no es número' WHERE upper(trim(c_Codigo)) = ?",
            [other],
        )
    stores = tmp_path / "stores.toml"
    stores.write_text(
        f'[[stores]]\nid = "tienda_02"\nname = "AV. BOLIVAR"\ntype = "tienda"\nhost = ""\n'
        f'port = 1\ndatabase = "{source}"\nwarehouse = "0202"\ndriver = "SQLite3"\n',
        encoding="utf-8",
    )
    db = tmp_path / "target.duckdb"
    env = {
        "PATH": "/usr/bin:/bin",
        "ETL_STORES_FILE": str(stores),
        "DATABASE_PATH": str(db),
        "ETL_ENGINE": engine,
        "ETL_STAGING_DIR": str(tmp_path / "staging"),
    }
    result = run_cli(["run"], env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    rows = published_rows(db, "tienda_02")
    assert set(rows) == set(data.expected)
    # the driver reads the bytes as Latin-1 when they are not UTF-8: 0xD1 is Ñ
    assert rows[code]["descripcion_producto"] == "MAÑONGO"
    assert rows[other]["peso_producto"] is None
    entry = ledger_rows(db)["tienda_02"]
    assert entry["registros_valores_invalidos"] >= 1
    refetched = [line for line in json_lines(result.stdout) if line.get("event") == REFETCH]
    assert len(refetched) == (1 if engine == "arrow" else 0)  # arrow: again, as UTF-16
