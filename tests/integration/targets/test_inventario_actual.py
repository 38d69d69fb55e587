"""The ``inventario_actual`` layout: fluxion publishes what the chain's backend reads on PostgreSQL.

Real parts: the local PostgreSQL server (stores through psqlODBC, the target a separate
database), the CLI in a child process. The backend's tables are created first with the backend's
own DDL (tools/fluxion_harness/backend_pg.py, a copy on purpose), its read patterns run unchanged,
and their numbers are compared with the data generator's oracle and with fluxion's ledger. A
second writer (the chain's other POS feed) publishes other locations into the same tables.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from etl_cli import json_lines, run_cli, write_stores
from running import BackgroundRun, event, table_locked

from fluxion_etl.demo.runner import demo_examples
from fluxion_etl.demo.stellar import generate_store
from fluxion_harness import backend_pg
from fluxion_harness.backend_pg import OtherFeed, query, table_contents
from fluxion_harness.postgres_source import PgServer, PgStore

pytestmark = pytest.mark.postgres

OTHER = ("tienda_20", "KLK-20")  # the other feed's location and warehouse
CODES = {"tienda_02": "TIENDA-02", "tienda_03": "TIENDA-03", "cedi_seco": "CEDI-SECO"}


@pytest.fixture
def actual_env(pg_target_env: dict[str, str]) -> dict[str, str]:
    env = dict(pg_target_env)
    env.update(
        ETL_TARGET_LAYOUT="inventario_actual",
        ETL_LEDGER_SCHEMA=f"{env['DATABASE_SCHEMA']}_fx",
    )
    return env


@pytest.fixture
def chain(actual_env: dict[str, str], pg_server: PgServer) -> Iterator[psycopg.Connection[Any]]:
    """A session in the chain's schema (created empty), as the backend opens one."""
    schema = actual_env["DATABASE_SCHEMA"]
    con = psycopg.connect(actual_env["DATABASE_URL"], password=pg_server.password, autocommit=True)
    con.execute(f"CREATE SCHEMA {schema}")
    con.execute(f"SET search_path = {schema}")
    try:
        yield con
    finally:
        con.close()


def backend_tables(con: psycopg.Connection[Any]) -> None:
    con.execute(backend_pg.BACKEND_DDL.encode())


def fluxion_ledger(con: psycopg.Connection[Any], env: dict[str, str]) -> dict[str, dict[str, Any]]:
    rows = query(
        con,
        f"SELECT * FROM {env['ETL_LEDGER_SCHEMA']}.etl_ejecuciones "
        "WHERE run_id = (SELECT max(run_id) FROM "
        f"{env['ETL_LEDGER_SCHEMA']}.etl_ejecuciones)",
    )
    return {row["ubicacion_id"]: row for row in rows}


def fitted(text: str | None, code: str, limit: int) -> str:
    return (text or code)[:limit]


def expected_cuts(store: PgStore) -> int:
    """What fluxion must count as cut, from the oracle: nombre and descripcion VARCHAR(200),
    categoria VARCHAR(50), marca VARCHAR(100), a barcode over VARCHAR(50)."""
    cut = 0
    for code, want in store.data.expected.items():
        description = want.descripcion_producto or code
        cut += 2 * (len(description) > 200)
        cut += len(want.categoria or "SIN CATEGORIA") > 50
        cut += len(want.marca or "") > 100
        cut += len(want.codigo_barras or "") > 50
    return cut


def test_backend_reads_return_the_oracle_and_the_other_feed_is_untouched(
    actual_env: dict[str, str],
    chain: psycopg.Connection[Any],
    pg_stores: Sequence[PgStore],
) -> None:
    backend_tables(chain)
    feed = OtherFeed(chain)
    shared = next(iter(pg_stores[0].data.expected))  # a product both feeds carry
    feed.publish(*OTHER, {"KLK001": Decimal("5"), shared: Decimal("-2")})
    chain.execute(
        "INSERT INTO ubicaciones (id, nombre, tipo) VALUES ('cedi_seco', 'EDITADO', 'cedi')"
    )
    other_before = query(
        chain, "SELECT * FROM inventario_actual WHERE ubicacion_id = %s", [OTHER[0]]
    )
    started = dt.datetime.now(ZoneInfo("America/Caracas")).replace(tzinfo=None)

    result = run_cli(["run"], actual_env)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    per_store = [line for line in json_lines(result.stdout) if "StoreSnapshotAgeSeconds" in line]
    assert {doc["Store"] for doc in per_store} == {s.id for s in pg_stores}
    assert all(0 <= doc["StoreSnapshotAgeSeconds"] < 120 for doc in per_store)  # freshness

    ledger = fluxion_ledger(chain, actual_env)
    catalogue: dict[str, set[tuple[str, str, str | None]]] = {}
    for store in pg_stores:
        for code, want in store.data.expected.items():
            catalogue.setdefault(code, set()).add(
                (
                    fitted(want.descripcion_producto, code, 200),
                    fitted(want.categoria, "SIN CATEGORIA", 50),
                    want.marca,
                )
            )
    for store in pg_stores:
        expected = store.data.expected
        page = {row["producto_id"]: row for row in query(chain, backend_pg.STOCK_PAGE, [store.id])}
        assert set(page) == set(expected), store.id
        for code, want in expected.items():
            got = page[code]
            assert got["cantidad"] == want.cantidad_actual, (store.id, code)
            assert got["almacen_codigo"] == CODES[store.id]
            assert started - dt.timedelta(minutes=1) <= got["fecha_actualizacion"]
            assert got["fecha_actualizacion"] <= started + dt.timedelta(minutes=5)
            if code != shared:  # the other feed's description is kept (fluxion fills NULLs only)
                # products are shared: the first store to publish a code inserts it, the others
                # fill its NULL columns
                for index, column in enumerate(("descripcion", "categoria", "marca")):
                    assert got[column] in {values[index] for values in catalogue[code]}
        row = ledger[store.id]
        assert row["estado"] == "exitoso" and row["registros_cargados"] == len(expected)
        assert row["almacen_codigo"] == CODES[store.id]
        assert row["registros_textos_recortados"] == expected_cuts(store)
    assert expected_cuts(pg_stores[0]) > 0  # the traps' long descriptions were cut and counted
    assert query(chain, "SELECT descripcion FROM productos WHERE id = %s", [shared]) == [
        {"descripcion": f"KLK {shared}"}
    ]

    summary = {row["ubicacion_id"]: row for row in query(chain, backend_pg.SUMMARY)}
    names = {"tienda_02": "AV. BOLIVAR", "tienda_03": "MAÑONGO", "cedi_seco": "EDITADO"}
    for store in pg_stores:
        quantities = [want.cantidad_actual for want in store.data.expected.values()]
        row = summary[store.id]
        assert row["nombre"] == names[store.id]  # an edited name is never overwritten
        assert row["total_productos"] == len(quantities)
        assert row["stock_negativo"] == sum(q < 0 for q in quantities) > 0
        assert row["stock_cero"] == sum(q == 0 for q in quantities)
    assert summary[OTHER[0]]["total_productos"] == 2

    categories = {row["categoria"] for row in query(chain, backend_pg.CATEGORIES)}
    brands = {row["marca"] for row in query(chain, backend_pg.BRANDS)}
    for store in pg_stores:
        for code, want in store.data.expected.items():
            if code != shared:
                assert fitted(want.categoria, "SIN CATEGORIA", 50) in categories
                assert want.marca is None or want.marca in brands

    sums = {
        row["ubicacion_id"]: row
        for row in query(chain, backend_pg.ORDER_SUMS, [[s.id for s in pg_stores]])
    }
    for store in pg_stores:
        quantities = [want.cantidad_actual for want in store.data.expected.values()]
        assert sums[store.id]["cantidad"] == sum(quantities)
        assert sums[store.id]["productos"] == ledger[store.id]["registros_cargados"]

    detail = query(chain, backend_pg.PRODUCT_DETAIL, [shared])
    carriers = {
        s.id: s.data.expected[shared].cantidad_actual
        for s in pg_stores
        if shared in s.data.expected
    }
    assert {row["ubicacion_id"]: row["cantidad"] for row in detail} == {
        **carriers,
        OTHER[0]: Decimal("-2"),
    }

    assert query(chain, "SELECT * FROM inventario_actual WHERE ubicacion_id = %s", [OTHER[0]]) == (
        other_before
    )
    assert query(chain, backend_pg.HISTORY, ["tienda_02"]) == []  # nothing replaced yet
    assert chain.execute("SELECT count(*) FROM etl_ejecuciones").fetchone() == (0,)  # the chain's

    status = run_cli(["status", "--json"], actual_env)
    assert status.returncode == 0, status.stderr
    served = {row["ubicacion_id"]: row["registros_servidos"] for row in json.loads(status.stdout)}
    assert served == {s.id: len(s.data.expected) for s in pg_stores}


def test_second_run_copies_exactly_the_replaced_snapshot_while_another_feed_writes(
    actual_env: dict[str, str],
    chain: psycopg.Connection[Any],
    pg_stores: Sequence[PgStore],
    pg_server: PgServer,
) -> None:
    # an empty database: fluxion creates the backend's tables itself
    first = run_cli(["run"], actual_env)
    assert first.returncode == 0, first.stderr + first.stdout[-3000:]
    published = {
        s.id: query(
            chain,
            "SELECT producto_id, cantidad, fecha_actualizacion FROM inventario_actual "
            "WHERE ubicacion_id = %s ORDER BY producto_id",
            [s.id],
        )
        for s in pg_stores
    }
    writer = psycopg.connect(
        actual_env["DATABASE_URL"], password=pg_server.password, autocommit=True
    )
    writer.execute(f"SET search_path = {actual_env['DATABASE_SCHEMA']}")
    feed = OtherFeed(writer)
    rounds: list[dict[str, Decimal]] = []
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set() or len(rounds) < 2:
            rows = {f"KLK{n:03d}": Decimal(len(rounds) + n) for n in range(40)}
            feed.publish(*OTHER, rows)
            rounds.append(rows)

    thread = threading.Thread(target=keep_writing)
    run = BackgroundRun(["run"], actual_env)
    thread.start()
    code, _, stderr = run.finish(300)
    stop.set()
    thread.join()
    writer.close()
    assert code == 0, stderr + run.text[-3000:]

    for store in pg_stores:
        history = query(
            chain,
            "SELECT producto_id, cantidad, fecha_snapshot AS fecha_actualizacion "
            "FROM inventario_historico WHERE ubicacion_id = %s ORDER BY producto_id",
            [store.id],
        )
        assert history == published[store.id]  # exactly the replaced snapshot, once
        snapshots = query(chain, backend_pg.HISTORY, [store.id])
        assert len(snapshots) == 1 and snapshots[0]["productos"] == len(store.data.expected)
    other = query(
        chain,
        "SELECT producto_id, cantidad FROM inventario_actual WHERE ubicacion_id = %s",
        [OTHER[0]],
    )
    assert {r["producto_id"]: r["cantidad"] for r in other} == rounds[-1]
    other_history = chain.execute(
        "SELECT count(*) FROM inventario_historico WHERE ubicacion_id = %s", [OTHER[0]]
    ).fetchone()
    assert other_history == (40 * (len(rounds) - 1),)


def test_a_held_back_store_leaves_all_five_tables_as_they_were(
    actual_env: dict[str, str],
    chain: psycopg.Connection[Any],
    pg_server: PgServer,
    make_pg_store: Any,
) -> None:
    big: PgStore = make_pg_store(600, seed=71, id="cedi_frio", name="CEDI FRIO", warehouse="1710")
    write_stores(actual_env, ([big], pg_server))
    assert run_cli(["run"], actual_env).returncode == 0
    OtherFeed(chain).publish(*OTHER, {"KLK001": Decimal("1")})
    before = table_contents(chain)

    small: PgStore = make_pg_store(100, seed=72, id="cedi_frio", name="CEDI FRIO", warehouse="1710")
    write_stores(actual_env, ([small], pg_server))
    result = run_cli(["run"], actual_env)
    assert result.returncode == 1, result.stderr + result.stdout[-2000:]
    assert table_contents(chain) == before
    row = fluxion_ledger(chain, actual_env)["cedi_frio"]
    assert row["error_tipo"] == "retenido" and row["registros_cargados"] == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            "ALTER TABLE inventario_actual ALTER COLUMN cantidad TYPE VARCHAR(20)",
            "inventario_actual.cantidad",
        ),
        ("ALTER TABLE productos DROP COLUMN marca", "productos.marca"),
        ("ALTER TABLE ubicaciones ADD COLUMN zona VARCHAR(10) NOT NULL", "ubicaciones.zona"),
        (
            "ALTER TABLE inventario_historico ALTER COLUMN fecha_snapshot TYPE TIMESTAMPTZ",
            "inventario_historico.fecha_snapshot",
        ),
    ],
)
def test_existing_tables_of_the_wrong_shape_are_exit_2_and_left_alone(
    actual_env: dict[str, str],
    chain: psycopg.Connection[Any],
    pg_stores: Sequence[PgStore],
    change: str,
    named: str,
) -> None:
    backend_tables(chain)
    chain.execute(change)
    shape = query(
        chain,
        "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable "
        "FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2",
        [actual_env["DATABASE_SCHEMA"]],
    )
    result = run_cli(["run"], actual_env)
    assert result.returncode == 2, result.stderr + result.stdout[-2000:]
    assert named in result.stderr
    assert not [line for line in json_lines(result.stdout) if line.get("phase") == "extract"]
    assert (
        query(
            chain,
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable "
            "FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2",
            [actual_env["DATABASE_SCHEMA"]],
        )
        == shape
    )
    assert table_contents(chain) == {table: [] for table in backend_pg.TABLES}
    ledger_schema = chain.execute(
        "SELECT 1 FROM pg_namespace WHERE nspname = %s", [actual_env["ETL_LEDGER_SCHEMA"]]
    ).fetchone()
    assert ledger_schema is None  # the opening transaction was rolled back whole


def test_check_reads_the_tables_as_a_run_would_and_changes_nothing(
    actual_env: dict[str, str], chain: psycopg.Connection[Any], pg_stores: Sequence[PgStore]
) -> None:
    backend_tables(chain)
    good = run_cli(["check"], actual_env)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr
    assert "target: ok" in good.stdout and "layout=inventario_actual" in good.stdout
    chain.execute("ALTER TABLE productos ALTER COLUMN categoria TYPE INTEGER USING 0")
    bad = run_cli(["check"], actual_env)
    assert bad.returncode == 2  # what run refuses as configuration: exit 2, as run would
    assert "productos.categoria is of type int4" in bad.stderr, bad.stdout + bad.stderr
    ledger_schema = chain.execute(
        "SELECT 1 FROM pg_namespace WHERE nspname = %s", [actual_env["ETL_LEDGER_SCHEMA"]]
    ).fetchone()
    assert ledger_schema is None  # the check's transaction is rolled back


def test_a_warehouse_code_of_another_location_is_exit_2(
    actual_env: dict[str, str], chain: psycopg.Connection[Any], pg_stores: Sequence[PgStore]
) -> None:
    backend_tables(chain)
    OtherFeed(chain).publish("tienda_20", "CEDI-SECO", {"KLK001": Decimal("1")})
    result = run_cli(["run"], actual_env)
    assert result.returncode == 2, result.stderr + result.stdout[-2000:]
    assert "'CEDI-SECO'" in result.stderr and "tienda_20" in result.stderr
    assert chain.execute("SELECT count(*) FROM inventario_actual").fetchone() == (1,)


def test_the_demo_publishes_into_postgresql_in_the_layout_named(
    actual_env: dict[str, str], chain: psycopg.Connection[Any], tmp_path: Path
) -> None:
    db = tmp_path / "demo" / "fluxion.duckdb"
    result = run_cli(["demo", "--stores", "2", "--rows", "300", "--db", str(db)], actual_env)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    assert not db.exists()  # nothing written to a DuckDB file
    examples = demo_examples()[:2]
    counts = dict(
        chain.execute(
            "SELECT ubicacion_id, count(*) FROM inventario_actual GROUP BY ubicacion_id"
        ).fetchall()
    )
    assert counts == {
        store.id: len(generate_store(store.warehouse, 300, seed=seed).expected)
        for seed, store in enumerate(examples, start=1)
    }
    assert "demo target: postgresql://" in result.stdout


def test_as_the_catalogues_owner_fluxion_updates_existing_products(
    actual_env: dict[str, str],
    chain: psycopg.Connection[Any],
    pg_server: PgServer,
    make_pg_store: Any,
) -> None:
    store: PgStore = make_pg_store(
        300, seed=81, id="cedi_verde", name="CEDI VERDE", warehouse="1801"
    )
    write_stores(actual_env, ([store], pg_server))
    backend_tables(chain)
    code, want = next(
        (c, w) for c, w in store.data.expected.items() if w.descripcion_producto and w.categoria
    )
    OtherFeed(chain).publish(*OTHER, {code: Decimal("3")})  # inserted by the other feed first

    assert run_cli(["run"], actual_env).returncode == 0
    row = query(chain, "SELECT descripcion, categoria FROM productos WHERE id = %s", [code])
    assert row == [{"descripcion": f"KLK {code}", "categoria": "KLK"}]  # filled NULLs only

    owner = {**actual_env, "ETL_OWNS_PRODUCTS": "true"}
    assert run_cli(["run"], owner).returncode == 0
    row = query(chain, "SELECT descripcion, categoria FROM productos WHERE id = %s", [code])
    assert row == [
        {
            "descripcion": fitted(want.descripcion_producto, code, 200),
            "categoria": fitted(want.categoria, "", 50),
        }
    ]


def test_a_reader_never_sees_a_location_half_replaced(
    actual_env: dict[str, str],
    chain: psycopg.Connection[Any],
    pg_server: PgServer,
    make_pg_store: Any,
) -> None:
    """The publish is caught with its transaction open at its last statement (its ledger row in
    the fluxion schema held by another session): history copied, rows deleted and inserted, not
    committed. A reader sees the previous snapshot whole, and the next one whole after."""
    store: PgStore = make_pg_store(400, seed=91, id="cedi_seco", name="CEDI SECO", warehouse="1413")
    write_stores(actual_env, ([store], pg_server))
    assert run_cli(["run"], actual_env).returncode == 0
    read = "SELECT producto_id, cantidad, fecha_actualizacion FROM inventario_actual ORDER BY 1"
    before = query(chain, read)
    ledger = f"{actual_env['ETL_LEDGER_SCHEMA']}.etl_ejecuciones"
    holder = psycopg.connect(actual_env["DATABASE_URL"], password=pg_server.password)
    try:
        with table_locked(pg_server, store.database):  # the fetch waits: time to hold the row
            run = BackgroundRun(["run"], actual_env)
            run.wait_for(event("extract started", store=store.id))
            run_id = run.lines[0]["run_id"]
            held = holder.execute(
                f"SELECT 1 FROM {ledger} WHERE run_id = %s FOR UPDATE", [run_id]
            ).fetchall()
            assert held
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fluxion-etl' "
        waiting += "AND wait_event_type = 'Lock' AND datname = current_database()"
        ends = time.monotonic() + 60
        while chain.execute(waiting).fetchone() != (1,):
            assert time.monotonic() < ends, "the publish never reached its ledger row"
            time.sleep(0.05)
        assert query(chain, read) == before  # the old snapshot, whole
        assert chain.execute("SELECT count(*) FROM inventario_historico").fetchone() == (0,)
    finally:
        holder.rollback()
        holder.close()
    code, _, stderr = run.finish(120)
    assert code == 0, stderr + run.text[-2000:]
    after = query(chain, read)
    assert [(r["producto_id"], r["cantidad"]) for r in after] == [
        (r["producto_id"], r["cantidad"]) for r in before
    ]
    assert {r["fecha_actualizacion"] for r in after}.isdisjoint(
        {r["fecha_actualizacion"] for r in before}
    )  # the new snapshot, whole
    assert chain.execute("SELECT count(*) FROM inventario_historico").fetchone() == (len(before),)
