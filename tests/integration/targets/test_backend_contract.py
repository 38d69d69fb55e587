"""The backend's contract: its own read patterns, run unchanged against what fluxion published.

Real parts: the PostgreSQL stand-in through psqlODBC, the CLI in a child process, DuckDB files,
a PostgreSQL target database (the read patterns run on both targets: ``published_on``), and
DuckDB 1.4 (the backend's release) installed in its own virtualenv. Numbers are checked against
the ledger and the data generator's oracle, never against the pipeline's own output. The
engines' and the demo's files, adoption of the old loader's file, DuckDB 1.4 and the storage
version are about the DuckDB file itself: those tests run on DuckDB only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import duckdb
import pytest
from etl_cli import json_lines, ledger_rows, run_cli, stores_toml
from target_db import TargetReader, pg_target_url

from fluxion_etl.contract import CONTRACT_COLUMNS, local_naive
from fluxion_etl.demo.stellar import DEFAULT_TRAPS, generate_store
from fluxion_harness import backend
from fluxion_harness.postgres_source import (
    PgServer,
    PgStore,
    create_store_database,
    new_database_name,
)

pytestmark = pytest.mark.postgres

DUCKDB_14 = "duckdb>=1.4,<1.5"
#: an old snapshot's store that this run does not cover: its rows must stay as they are
OTHER_STORE = ("tienda_09", "CATIA", "tienda")


def env_for(tmp: Path, pg_server: PgServer, stores: Sequence[PgStore], db: Path) -> dict[str, str]:
    stores_file = tmp / "stores.toml"
    stores_file.write_text(stores_toml(stores, pg_server), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))}
    env.update(
        ETL_STORES_FILE=str(stores_file),
        DATABASE_PATH=str(db),
        SQL_USER=pg_server.user,
        SQL_PASS=pg_server.password,
        ETL_STAGING_DIR=str(tmp / "staging"),
        ENVIRONMENT="test",
    )
    return env


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, pg_server: PgServer, pg_stores: Sequence[PgStore]
) -> dict[str, Path]:
    """The shared stores published into a new file by each engine."""
    files = {}
    for engine in ("arrow", "pyodbc"):
        tmp = tmp_path_factory.mktemp(f"contract-{engine}")
        env = env_for(tmp, pg_server, pg_stores, tmp / "fluxion.duckdb")
        result = run_cli(["run"], {**env, "ETL_ENGINE": engine})
        assert result.returncode == 0, result.stderr + result.stdout[-3000:]
        files[engine] = tmp / "fluxion.duckdb"
    return files


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def published_on(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: PgServer,
    pg_stores: Sequence[PgStore],
) -> TargetReader:
    """The shared stores published by the arrow engine, on each target in turn."""
    if request.param == "duckdb":
        published: dict[str, Path] = request.getfixturevalue("published")
        return TargetReader({"DATABASE_PATH": str(published["arrow"])})
    database: str = request.getfixturevalue("pg_target_database")
    tmp = tmp_path_factory.mktemp("contract-postgres")
    env = env_for(tmp, pg_server, pg_stores, tmp / "unused.duckdb")
    del env["DATABASE_PATH"]
    env.update(
        DATABASE_URL=pg_target_url(pg_server, database),
        DATABASE_SCHEMA="contract",
        PGPASSWORD=pg_server.password,
    )
    result = run_cli(["run"], env)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    return TargetReader(env, pg_server)


def reads_of(
    db: Path | TargetReader, sql: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """The backend's read ``sql`` on a DuckDB file or on either target (``?`` placeholders)."""
    if isinstance(db, TargetReader):
        return db.query(sql, params)
    with duckdb.connect(str(db), read_only=True) as con:
        return backend.rows(con, sql, params)


def with_rows_the_backend_must_not_list(db: TargetReader, tmp_path: Path) -> TargetReader:
    """A copy of the published target plus 5 wholesale rows (``mayor_01``) and 5 inactive ones
    (``viejo_01``): the published one is shared by the module's tests."""
    if db.kind == "duckdb":
        copy = tmp_path / "copy.duckdb"
        copy.write_bytes(Path(db.env["DATABASE_PATH"]).read_bytes())
        with duckdb.connect(str(copy)) as con:
            for replace in (
                "'mayor_01' AS ubicacion_id, 'mayorista' AS tipo_ubicacion",
                "'viejo_01' AS ubicacion_id, false AS activo",
            ):
                con.execute(
                    f"INSERT INTO inventario_raw BY NAME SELECT * REPLACE ({replace},"
                    " gen_random_uuid()::VARCHAR AS id) FROM inventario_raw LIMIT 5"
                )
        return TargetReader({"DATABASE_PATH": str(copy)})
    schema = f"copy_{tmp_path.name[-20:].lower().replace('-', '_')}"
    with db.connect_pg() as con:
        con.execute(f"CREATE SCHEMA {schema}")
        for table in ("inventario_raw", "etl_ejecuciones"):
            con.execute(f"CREATE TABLE {schema}.{table} AS SELECT * FROM {table}")
        for change in (
            {"ubicacion_id": "mayor_01", "tipo_ubicacion": "mayorista"},
            {"ubicacion_id": "viejo_01", "activo": False},
        ):
            con.execute(
                f"INSERT INTO {schema}.inventario_raw SELECT (jsonb_populate_record("
                f"NULL::{schema}.inventario_raw, to_jsonb(t) || %s::jsonb)).* "
                "FROM inventario_raw t LIMIT 5",
                [json.dumps(change)],
            )
    return TargetReader({**db.env, "DATABASE_SCHEMA": schema}, db.server)


def oracle(stores: Sequence[PgStore]) -> list[tuple[PgStore, Any]]:
    """(store, expected row) for every product a correct run publishes."""
    return [(store, row) for store in stores for row in store.data.expected.values()]


def grade(quantity: Decimal) -> str:
    """estado_stock with the default thresholds, written independently of the SQL."""
    if quantity <= 0:
        return "SIN_STOCK"
    if quantity <= 10:
        return "CRITICO"
    if quantity <= 20:
        return "BAJO"
    return "EXCESO" if quantity >= 100 else "NORMAL"


def test_location_list_and_summary_agree_with_the_ledger(
    published_on: TargetReader, pg_stores: Sequence[PgStore], tmp_path: Path
) -> None:
    db = with_rows_the_backend_must_not_list(published_on, tmp_path)
    locations = reads_of(db, backend.LOCATIONS)
    assert [(r["ubicacion_id"], r["ubicacion_nombre"], r["tipo_ubicacion"]) for r in locations] == [
        (s.id, s.name, "cedi" if s.id.startswith("cedi") else "tienda")
        for s in sorted(pg_stores, key=lambda s: s.id)
    ]
    ledger = db.ledger()
    summary = {r["ubicacion_id"]: r for r in reads_of(db, backend.SUMMARY)}
    assert set(summary) == {s.id for s in pg_stores}
    for store in pg_stores:
        row, entry = summary[store.id], ledger[store.id]
        assert row["total_productos"] == entry["registros_cargados"] == len(store.data.expected)
        assert row["stock_negativo"] == entry["registros_stock_negativo"]
        assert row["stock_negativo"] == store.data.expected_negative
        assert row["stock_cero"] == store.data.expected_zero
        # "last updated": the extraction's start, in Caracas time (the ledger is UTC)
        assert row["ultima_actualizacion"] == local_naive(entry["fecha_inicio"], "America/Caracas")


def test_categories_and_every_stock_page_filter_agree_with_the_oracle(
    published_on: TargetReader, pg_stores: Sequence[PgStore]
) -> None:
    db = published_on
    rows = oracle(pg_stores)
    categories = reads_of(db, backend.CATEGORIES)
    want: dict[str, set[str]] = {}
    for _, row in rows:
        if row.categoria is not None:
            want.setdefault(row.categoria, set()).add(row.codigo_producto)
    assert {r["categoria"]: r["productos"] for r in categories} == {
        k: len(v) for k, v in want.items()
    }

    def count(**filters: Any) -> int:
        _, _, sql, params = backend.stock_page(**filters)
        return int(reads_of(db, sql, params)[0]["total"])

    store = pg_stores[0]
    category = categories[0]["categoria"]
    assert count() == len(rows)
    assert count(ubicacion_id=store.id) == db.ledger()[store.id]["registros_cargados"]
    assert count(categoria=category) == sum(1 for _, r in rows if r.categoria == category)
    for state in ("SIN_STOCK", "CRITICO", "BAJO", "NORMAL", "EXCESO"):
        want_state = sum(1 for _, r in rows if grade(r.cantidad_actual) == state)
        assert count(estado=state) == want_state, state
    needle = "caf"
    matches = [
        r
        for _, r in rows
        if any(
            needle in (text or "").lower()
            for text in (r.descripcion_producto, r.codigo_producto, r.codigo_barras)
        )
    ]
    assert matches and count(buscar=needle) == len(matches)
    page, params, _, _ = backend.stock_page(buscar=needle, limite=500)
    assert all(
        needle
        in " ".join(
            filter(None, (r["descripcion_producto"], r["codigo_producto"], r["codigo_barras"]))
        ).lower()
        for r in reads_of(db, page, params)
    )
    combined, params, _, _ = backend.stock_page(ubicacion_id=store.id, estado="CRITICO", limite=500)
    assert {r["codigo_producto"] for r in reads_of(db, combined, params)} == {
        code for code, r in store.data.expected.items() if grade(r.cantidad_actual) == "CRITICO"
    }


SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "cajas": lambda r: -(r["stock_cajas"] or 0),
    "peso": lambda r: -(r["peso_total"] or 0),
    "categoria": lambda r: (
        r["categoria"] is None,
        r["categoria"] or "",
        r["descripcion_producto"] is None,
        r["descripcion_producto"] or "",
    ),
    "estado": lambda r: ("SIN_STOCK", "CRITICO", "BAJO", "NORMAL", "EXCESO").index(
        r["estado_stock"]
    ),
}


@pytest.mark.parametrize("orden", sorted(backend.SORTS))
def test_every_stock_page_sort_orders_and_pages_the_store(
    published_on: TargetReader, pg_stores: Sequence[PgStore], orden: str
) -> None:
    db, store = published_on, pg_stores[1]
    pages = []
    for pagina in (1, 2):
        sql, params, _, _ = backend.stock_page(
            ubicacion_id=store.id, orden=orden, limite=40, pagina=pagina
        )
        pages.append(reads_of(db, sql, params))
    both, params, _, _ = backend.stock_page(ubicacion_id=store.id, orden=orden, limite=80)
    whole = reads_of(db, both, params)
    assert [len(p) for p in pages] == [40, 40]
    assert pages[0] + pages[1] == whole  # page 2 continues page 1
    key = SORT_KEYS[orden]
    assert [key(r) for r in whole] == sorted(key(r) for r in whole)
    everything, params, _, _ = backend.stock_page(ubicacion_id=store.id, orden=orden, limite=10**6)
    assert key(whole[0]) == min(key(r) for r in reads_of(db, everything, params))


def test_order_suggestions_for_a_store_and_the_cedis(
    published_on: TargetReader, pg_stores: Sequence[PgStore]
) -> None:
    db = published_on
    store = pg_stores[0]
    suggestions = {
        r["codigo_producto"]: r for r in reads_of(db, backend.ORDER_SUGGESTIONS, [store.id])
    }
    below = {code: r for code, r in store.data.expected.items() if r.cantidad_actual <= 20}
    assert set(suggestions) == set(below) and below
    for code, row in suggestions.items():
        assert row["cantidad_sugerida"] == max(Decimal(100) - below[code].cantidad_actual, 0)
        assert row["grupo"] == below[code].grupo
    cedis = [s for s in pg_stores if s.id.startswith("cedi")]
    stock = reads_of(db, backend.CEDI_STOCK)
    want: dict[str, Decimal] = {}
    for _, row in oracle(cedis):
        want[row.codigo_producto] = want.get(row.codigo_producto, Decimal(0)) + row.cantidad_actual
    assert {r["codigo_producto"]: r["stock_cedis"] for r in stock} == want


def without_times(reads: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The reads without the run's own moment (each run extracts at its own time)."""
    moments = {"fecha_extraccion", "ultima_actualizacion"}
    return {
        name: [{k: v for k, v in r.items() if k not in moments} for r in rs]
        for name, rs in reads.items()
    }


def schema(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = 'inventario_raw' ORDER BY column_index"
        ).fetchall()


def test_the_demo_and_both_engines_publish_the_same_contract(
    published: dict[str, Path], tmp_path: Path
) -> None:
    demo_db = tmp_path / "demo" / "fluxion.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))}
    demo = run_cli(["demo", "--stores", "2", "--rows", "400", "--db", str(demo_db)], env)
    assert demo.returncode == 0, demo.stderr + demo.stdout[-2000:]
    columns = schema(published["arrow"])
    assert [name for name, _ in columns] == list(CONTRACT_COLUMNS)
    assert schema(published["pyodbc"]) == columns == schema(demo_db)
    with duckdb.connect(str(published["arrow"]), read_only=True) as con:
        arrow_reads = without_times(backend.standard_reads(con))
    with duckdb.connect(str(published["pyodbc"]), read_only=True) as con:
        pyodbc_reads = without_times(backend.standard_reads(con))
    assert backend.as_json(arrow_reads) == backend.as_json(pyodbc_reads)
    with duckdb.connect(str(demo_db), read_only=True) as con:
        demo_reads = backend.standard_reads(con)
    ledger = ledger_rows(demo_db)
    assert {r["ubicacion_id"]: r["total_productos"] for r in demo_reads["summary"]} == {
        store: entry["registros_cargados"] for store, entry in ledger.items()
    }


# --- adoption of the old loader's file, and DuckDB 1.4 ------------------------------------------


@pytest.fixture(scope="session")
def duckdb14(unavailable: Callable[[str], NoReturn]) -> Path:
    """A Python with DuckDB 1.4 (the backend's release) in its own virtualenv, built once per
    machine in the user's cache (PyPI must be reachable the first time)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "fluxion-tests" / "duckdb-1.4"
    python = venv / "bin" / "python"
    probe = [
        str(python),
        "-c",
        "import duckdb, sys; sys.exit(not duckdb.__version__.startswith('1.4'))",
    ]
    if python.exists() and subprocess.run(probe, check=False).returncode == 0:
        return python
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        unavailable(f"cannot create a virtualenv for DuckDB 1.4: {made.stderr.strip()[-300:]}")
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", DUCKDB_14],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if pip.returncode != 0 or subprocess.run(probe, check=False).returncode != 0:
        unavailable(f"cannot install {DUCKDB_14} from PyPI: {pip.stderr.strip()[-300:]}")
    return python


def in_duckdb14(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), backend.__file__, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def other_store_rows(columns: Sequence[str]) -> str:
    """The old snapshot of the store the run does not cover, in the old loader's columns."""
    names = ", ".join(f'"{name}"' for name in columns)
    return f"(SELECT {names} FROM inventario_raw WHERE ubicacion_id = '{OTHER_STORE[0]}')"


@pytest.fixture(scope="module")
def adopted(
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: PgServer,
    _pg_databases: list[str],
    duckdb14: Path,
) -> Iterator[dict[str, Any]]:
    """A production-like file made by DuckDB 1.4 (the old loader's table with an old snapshot of
    the run's store and of another one, and the backend's sales), then one fluxion run on it."""
    tmp = tmp_path_factory.mktemp("adopted")
    data = generate_store("0402", 400, seed=44, traps=DEFAULT_TRAPS)
    database = new_database_name("fluxion_t_")
    _pg_databases.append(database)
    create_store_database(pg_server, database, data)
    store = PgStore(
        id="tienda_04", name="NAGUANAGUA", database=database, warehouse="0402", data=data
    )
    huge_margin = min(
        code
        for code, row in data.expected.items()
        if row.precio_venta_actual and row.costo_unitario_actual is not None and " " not in code
    )
    conn = pg_server.connect(store.database)
    with conn, conn.cursor() as cur:  # a cost far over the price: a margin DECIMAL(5,2) can't hold
        cur.execute(
            "UPDATE MA_PRODUCTOS SET n_CostoAct = 1000000 WHERE upper(trim(c_Codigo)) = %s",
            [huge_margin],
        )
        assert cur.rowcount >= 1
    conn.close()
    db = tmp / "produccion.duckdb"
    old_stores = json.dumps([[store.id, store.name, "tienda"], list(OTHER_STORE)])
    built = in_duckdb14(duckdb14, "--build-old-loader", str(db), old_stores)
    assert built.returncode == 0, built.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        old_columns = [c[0] for c in con.execute("DESCRIBE inventario_raw").fetchall()]
        before = {
            "sales": backend.table_checksum(con, "ventas"),
            "other": backend.table_checksum(con, other_store_rows(old_columns)),
            "old_columns": old_columns,
        }
    env = env_for(tmp, pg_server, [store], db)
    result = run_cli(["run"], env)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    yield {
        "db": db,
        "store": store,
        "before": before,
        "huge_margin": huge_margin,
        "stdout": result.stdout,
    }


def test_an_old_loader_file_is_adopted_in_one_run(adopted: dict[str, Any]) -> None:
    db, store, before = adopted["db"], adopted["store"], adopted["before"]
    with duckdb.connect(str(db), read_only=True) as con:
        columns = [c[0] for c in con.execute("DESCRIBE inventario_raw").fetchall()]
        assert columns[: len(before["old_columns"])] == before["old_columns"]  # all kept, in order
        assert set(CONTRACT_COLUMNS) <= set(columns)
        # the backend's sales and the other store's old snapshot: untouched
        assert backend.table_checksum(con, "ventas") == before["sales"]
        assert before["sales"][0] > 0
        other = other_store_rows(before["old_columns"])
        assert backend.table_checksum(con, other) == before["other"]
        rows = {
            r["codigo_producto"]: r
            for r in backend.rows(
                con, "SELECT * FROM inventario_raw WHERE ubicacion_id = ?", [store.id]
            )
        }
        ledger = ledger_rows(db)[store.id]
    assert set(rows) == set(store.data.expected)  # the old snapshot replaced, not added to
    assert all(r["usuario_carga"] == "etl_legacy" for r in rows.values())  # the old default
    huge = rows[adopted["huge_margin"]]
    assert huge["margen_porcentaje"] is None and huge["valor_inventario_actual"] is not None
    assert ledger["registros_valores_anulados"] == 1
    blanks = [r for r in rows.values() if r["descripcion_producto"] == ""]
    assert (
        len(blanks) == ledger["registros_sin_descripcion"] == store.data.expected_null_description
    )
    assert any(
        line.get("event", "").startswith("values the target's column types") and line["rows"] == 1
        for line in json_lines(adopted["stdout"])
    )


def test_files_fluxion_created_and_adopted_answer_the_reads_in_duckdb_14(
    published: dict[str, Path], adopted: dict[str, Any], duckdb14: Path
) -> None:
    for db in (published["arrow"], adopted["db"]):
        old = in_duckdb14(duckdb14, str(db))
        assert old.returncode == 0, old.stderr
        with duckdb.connect(str(db), read_only=True) as con:
            assert json.loads(old.stdout) == json.loads(
                backend.as_json(backend.standard_reads(con))
            )


def test_a_table_that_cannot_be_adopted_stops_the_run_before_any_fetch(
    tmp_path: Path, pg_server: PgServer, pg_stores: Sequence[PgStore]
) -> None:
    db = tmp_path / "produccion.duckdb"
    ddl = backend.OLD_LOADER_INVENTARIO.replace(
        "    UNIQUE (", "    sucursal_id INTEGER NOT NULL,\n    UNIQUE ("
    )
    with duckdb.connect(str(db)) as con:
        backend.build_old_loader_file(con, [], products=0, sales=100, inventario_ddl=ddl)
        before = con.execute("DESCRIBE inventario_raw").fetchall()
    result = run_cli(["run"], env_for(tmp_path, pg_server, pg_stores, db))
    assert result.returncode == 2, result.stdout[-2000:]
    assert result.stderr.strip().count("\n") == 0
    assert "sucursal_id is NOT NULL without a default" in result.stderr
    assert not any(line.get("phase") == "extract" for line in json_lines(result.stdout))
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("DESCRIBE inventario_raw").fetchall() == before
        assert "etl_ejecuciones" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}


def test_status_and_check_show_the_files_storage_version(
    published: dict[str, Path], pg_server: PgServer, pg_stores: Sequence[PgStore], tmp_path: Path
) -> None:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(published["arrow"].read_bytes())
    env = env_for(tmp_path, pg_server, pg_stores[:1], db)
    status = run_cli(["status"], env)
    assert status.returncode == 0 and "DuckDB storage version v1.0.0+" in status.stdout
    as_json = json.loads(run_cli(["status", "--json"], env).stdout)
    assert {row["storage_version"] for row in as_json} == {"v1.0.0+"}
    check = run_cli(["check"], env)
    assert check.returncode == 0 and "DuckDB storage version v1.0.0+" in check.stdout
    newer = {
        **env,
        "DATABASE_PATH": str(tmp_path / "new.duckdb"),
        "ETL_DUCKDB_STORAGE_VERSION": "v1.4.0",
    }
    assert run_cli(["run"], newer).returncode == 0
    assert "storage version v1.4.0+" in run_cli(["status"], newer).stdout
    # an existing file keeps its version, whatever the setting says
    assert run_cli(["run"], {**env, "ETL_DUCKDB_STORAGE_VERSION": "latest"}).returncode == 0
    assert "storage version v1.0.0+" in run_cli(["status"], env).stdout
