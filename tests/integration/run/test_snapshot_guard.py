"""The snapshot guard end to end: PostgreSQL stand-in stores through psqlODBC, the real CLI,
each target in turn (a DuckDB file, a PostgreSQL database: ``target_env``). Each test breaks a
store's source the way production did (a mistyped warehouse, an emptied stock table, a partial
one, rows without a quantity) and checks that the store keeps serving its previous rows, fails
with ``retenido`` and the numbers, and that the operator's override publishes once and is
written down. ``check`` and ``stores --warehouses`` ask the stores only, not the target: those
two tests run once.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest
from etl_cli import json_lines, run_cli, write_stores
from target_db import TargetReader

from fluxion_etl.demo.stellar import Traps
from fluxion_harness.postgres_source import PgServer, PgStore

pytestmark = pytest.mark.postgres


def execute(server: PgServer, database: str, *statements: str) -> None:
    conn = server.connect(database)
    with conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def events(stdout: str, name: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(stdout) if line.get("event") == name]


def emf(stdout: str) -> dict[str, Any]:
    """The run's EMF document (the per-store ones carry a ``Store`` dimension)."""
    (document,) = [line for line in json_lines(stdout) if "_aws" in line and "Store" not in line]
    return document


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of a table the CLI printed, a wrapped row joined back into one."""
    rows: list[list[str]] = []
    for line in stdout.splitlines():
        if "│" not in line:
            continue
        cells = [cell.strip() for cell in line.split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:  # a continuation line of the previous row
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def test_a_mistyped_warehouse_keeps_the_store_serving_its_previous_snapshot(
    target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    store: PgStore = make_pg_store(400, seed=111)
    steady: PgStore = make_pg_store(300, seed=112, id="tienda_03", warehouse="0302")
    db = TargetReader(target_env, pg_server)
    write_stores(target_env, ([store, steady], pg_server))
    assert run_cli(["run"], target_env).returncode == 0
    before = db.rows(store.id)
    first_run = db.ledger()[store.id]

    write_stores(target_env, ([dataclasses.replace(store, warehouse="9999"), steady], pg_server))
    result = run_cli(["run"], target_env)

    assert result.returncode == 3, result.stdout[-3000:]
    assert db.rows(store.id) == before  # the same rows, the first run's batch
    entry = db.ledger()[store.id]
    assert (entry["estado"], entry["error_tipo"]) == ("fallido", "retenido")
    assert (entry["registros_extraidos"], entry["registros_cargados"]) == (0, 0)
    assert entry["error_mensaje"].startswith(
        f"{store.id}: snapshot held back: 0 rows where {len(before):,} were served; "
        "warehouse '9999' is not in MA_DEPOSITO and has no stock rows in MA_DEPOPROD "
        "(codes with stock here: "
    )
    assert f"--accept-shrink {store.id}" in entry["error_mensaje"]
    assert db.ledger()[steady.id]["estado"] == "exitoso"
    (held,) = events(result.stdout, "snapshot held back")
    assert (held["store"], held["rules"], held["rows"], held["served"]) == (
        store.id, ["empty"], 0, len(before),
    )  # fmt: skip
    assert held["run_id"] == json_lines(result.stdout)[-1]["run_id"]
    metrics = emf(result.stdout)
    assert (metrics["StoresFailed"], metrics["StoresHeldBack"], metrics["RunSucceeded"]) == (
        1, 1, 1,
    )  # fmt: skip
    assert json_lines(result.stdout)[-1]["stores_held_back"] == [store.id]
    # Its own document: failed, nothing published, and the age of the snapshot it still serves.
    (own,) = [d for d in json_lines(result.stdout) if "_aws" in d and d.get("Store") == store.id]
    assert (own["StoreFailed"], own["StoreRowsPublished"]) == (1, 0)
    assert own["StoreSnapshotAgeSeconds"] > 0

    status = run_cli(["status", "--json"], target_env)
    row = {r["ubicacion_id"]: r for r in json.loads(status.stdout)}[store.id]
    assert (row["estado"], row["error_tipo"], row["registros_servidos"]) == (
        "fallido", "retenido", len(before),
    )  # fmt: skip
    assert row["fecha_publicacion"] == str(first_run["fecha_fin"])  # when it was published
    (shown,) = [r for r in table_rows(run_cli(["status"], target_env).stdout) if r[0] == store.id]
    assert [shown[1], shown[3], shown[4]] == ["fallido", "", f"{len(before):,}"]
    assert shown[5] == str(first_run["fecha_fin"])[:19]
    assert not shown[6].endswith("STALE")  # it still serves a snapshot of seconds ago
    assert shown[7].startswith("retenido: ")


def test_an_emptied_stock_table_is_held_back_and_check_names_it(
    target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    store: PgStore = make_pg_store(300, seed=113)
    db = TargetReader(target_env, pg_server)
    write_stores(target_env, ([store], pg_server))
    assert run_cli(["run"], target_env).returncode == 0
    served = len(db.rows(store.id))
    emptied = f"DELETE FROM ma_depoprod WHERE c_coddeposito = '{store.warehouse}'"
    execute(pg_server, store.database, emptied)

    result = run_cli(["run"], target_env)
    checked = run_cli(["check"], target_env)

    assert result.returncode == 1, result.stdout[-3000:]  # the only store: nothing published
    assert len(db.rows(store.id)) == served
    message = db.ledger()[store.id]["error_mensaje"]
    assert f"0 rows where {served:,} were served; warehouse '0202' (DEPOSITO AV. BOLIVAR) " + (
        "has no stock rows in MA_DEPOPROD."
    ) in message
    assert checked.returncode == 1
    (row,) = [r for r in table_rows(checked.stdout) if r[0] == store.id]
    assert row[2:6] == ["ok", "ok", "FAIL", "-"]  # tcp, login, warehouse, query
    assert row[8] == "warehouse '0202' (DEPOSITO AV. BOLIVAR) has no stock rows in MA_DEPOPROD"


def test_a_shrink_above_the_threshold_publishes_and_one_below_is_held_back(
    target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    """Clean data (one published row per stock row), so each deletion sets the row count."""
    store: PgStore = make_pg_store(400, seed=114, traps=Traps.disabled())
    assert len(store.data.expected) == 400
    db = TargetReader(target_env, pg_server)  # DuckDB file or PostgreSQL schema
    write_stores(target_env, ([store], pg_server))
    assert run_cli(["run"], target_env).returncode == 0

    execute(pg_server, store.database, "DELETE FROM ma_depoprod WHERE id > 240")
    above = run_cli(["run"], target_env)  # 240 of 400: above half, a normal change
    assert above.returncode == 0, above.stdout[-3000:]
    assert len(db.rows(store.id)) == 240

    execute(pg_server, store.database, "DELETE FROM ma_depoprod WHERE id > 100")
    below = run_cli(["run"], target_env)  # 100 of 240: under half
    assert below.returncode == 1, below.stdout[-3000:]
    assert len(db.rows(store.id)) == 240
    entry = db.ledger()[store.id]
    assert entry["error_mensaje"].startswith(
        f"{store.id}: snapshot held back: 100 rows where 240 were served (fewer than "
        "ETL_MAX_SHRINK=0.5 of them); warehouse '0202' (DEPOSITO AV. BOLIVAR) has 100 stock "
        "rows in MA_DEPOPROD and the inventory query selected 100."
    )
    (held,) = events(below.stdout, "snapshot held back")
    assert (held["rules"], held["fetched"], held["rows"], held["served"]) == (
        ["shrink"], 100, 100, 240,
    )  # fmt: skip

    lower = run_cli(["run"], {**target_env, "ETL_MAX_SHRINK": "0.4"})  # 100 >= 0.4 x 240
    assert lower.returncode == 0, lower.stdout[-3000:]
    assert len(db.rows(store.id)) == 100
    assert db.ledger()[store.id]["guardia_aceptada"] is None  # nothing was overridden


def test_too_many_rejected_rows_hold_back_a_new_store_judged_without_the_shrink_rule(
    target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    store: PgStore = make_pg_store(400, seed=115, traps=Traps.disabled())
    fresh: PgStore = make_pg_store(300, seed=116, id="tienda_04", warehouse="0402")
    db = TargetReader(target_env, pg_server)
    execute(pg_server, store.database, "UPDATE ma_depoprod SET n_cantidad = NULL WHERE id % 10 = 0")
    write_stores(target_env, ([store, dataclasses.replace(fresh, warehouse="0499")], pg_server))

    result = run_cli(["run"], target_env)  # neither store has a previous snapshot

    assert result.returncode == 1, result.stdout[-3000:]
    assert db.rows(store.id) == {} and db.rows(fresh.id) == {}
    ledger = db.ledger()
    rejected = ledger[store.id]
    assert (rejected["error_tipo"], rejected["registros_extraidos"]) == ("retenido", 400)
    assert rejected["registros_rechazados"] == 40
    assert "40 of 400 fetched rows rejected for no product code or no numeric quantity " in (
        rejected["error_mensaje"]
    )
    assert "(10.0%, more than ETL_MAX_REJECTED=0.05)" in rejected["error_mensaje"]
    assert ledger[fresh.id]["error_mensaje"].startswith(
        f"{fresh.id}: snapshot held back: 0 rows (an empty snapshot; the store has none "
        "published yet); warehouse '0499' is not in MA_DEPOSITO"
    )
    assert emf(result.stdout)["StoresHeldBack"] == 2

    looser = run_cli(["run", "--stores", store.id], {**target_env, "ETL_MAX_REJECTED": "0.1"})
    assert looser.returncode == 0, looser.stdout[-3000:]  # exactly 10 %: not more than 0.1
    assert len(db.rows(store.id)) == 360


def test_the_override_publishes_in_that_run_only_and_the_ledger_records_it(
    target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    store: PgStore = make_pg_store(400, seed=117, traps=Traps.disabled())
    db = TargetReader(target_env, pg_server)  # DuckDB file or PostgreSQL schema
    write_stores(target_env, ([store], pg_server))
    assert run_cli(["run"], target_env).returncode == 0

    execute(pg_server, store.database, "DELETE FROM ma_depoprod WHERE id > 150")
    by_env = run_cli(["run"], {**target_env, "ETL_ACCEPT_SHRINK": "all"})
    assert by_env.returncode == 0, by_env.stdout[-3000:]
    assert len(db.rows(store.id)) == 150
    entry = db.ledger()[store.id]
    assert (entry["estado"], entry["error_tipo"]) == ("exitoso", None)
    assert entry["guardia_aceptada"] == (
        "150 rows where 400 were served (fewer than ETL_MAX_SHRINK=0.5 of them)"
    )
    (accepted,) = events(by_env.stdout, "snapshot accepted despite the guard")
    assert (accepted["rows"], accepted["served"]) == (150, 400)

    wrong = dataclasses.replace(store, warehouse="9999")
    write_stores(target_env, ([wrong], pg_server))
    held = run_cli(["run"], target_env)  # the acceptance was for that run only
    assert held.returncode == 1 and len(db.rows(store.id)) == 150
    assert db.ledger()[store.id]["error_tipo"] == "retenido"

    by_flag = run_cli(["run", "--accept-shrink", store.id], target_env)
    assert by_flag.returncode == 0, by_flag.stdout[-3000:]
    assert db.rows(store.id) == {}
    assert db.ledger()[store.id]["guardia_aceptada"] == "0 rows where 150 were served"
    status = run_cli(["status"], target_env)
    (shown,) = [r for r in table_rows(status.stdout) if r[0] == store.id]
    assert not shown[6].endswith("STALE")  # the accepted (empty) snapshot is seconds old
    assert shown[7] == "accepted: 0 rows where 150 were served"


def test_check_counts_the_warehouse_and_the_query_rows_and_says_which_step_fails(
    etl_env: dict[str, str], pg_server: PgServer, pg_stores: list[PgStore], make_pg_store: Any
) -> None:
    good = pg_stores[0]
    idle: PgStore = make_pg_store(200, seed=118, id="tienda_05", warehouse="0502")
    execute(pg_server, idle.database, "UPDATE ma_productos SET n_activo = 0")
    typo = dataclasses.replace(pg_stores[1], id="tienda_06", warehouse="302")
    write_stores(etl_env, ([good, idle, typo], pg_server))

    checked = run_cli(["check"], etl_env)

    assert checked.returncode == 1, checked.stdout
    rows = {r[0]: r for r in table_rows(checked.stdout)}
    stock = Counter(row[1] for row in good.data.tables["MA_DEPOPROD"][1])
    assert rows[good.id][2:7] == ["ok", "ok", "ok", "ok", f"{good.data.source_rows_selected:,}"]
    assert rows[good.id][8] == (
        f"ok: warehouse {good.warehouse} (DEPOSITO AV. BOLIVAR): "
        f"{stock[good.warehouse]:,} stock rows"
    )
    assert rows[idle.id][2:7] == ["ok", "ok", "ok", "FAIL", "0"]
    assert rows[idle.id][8].endswith("but the inventory query returns no rows for it")
    assert rows[typo.id][2:6] == ["ok", "ok", "FAIL", "-"]
    assert rows[typo.id][8].startswith("warehouse '302' is not in MA_DEPOSITO")
    assert "0302" in rows[typo.id][8]  # the code it should have been is suggested


def test_stores_warehouses_lists_each_stores_codes_and_marks_the_configured_one(
    etl_env: dict[str, str], pg_server: PgServer, pg_stores: list[PgStore]
) -> None:
    store = pg_stores[0]
    typo = dataclasses.replace(pg_stores[1], warehouse="9999")
    write_stores(etl_env, ([store, typo], pg_server))

    listed = run_cli(["stores", "--warehouses", "--stores", f"{store.id},{typo.id}"], etl_env)

    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = table_rows(listed.stdout)
    stock = Counter(row[1] for row in store.data.tables["MA_DEPOPROD"][1])
    names = dict(store.data.tables["MA_DEPOSITO"][1])
    assert [r[1:] for r in rows if r[0] == store.id] == [
        [code, names[code], f"{stock[code]:,}", "<- configured" if code == store.warehouse else ""]
        for code in sorted(stock)
    ]
    mine = [r for r in rows if r[0] == typo.id]
    assert [r[1] for r in mine if r[4]] == ["9999"]
    assert mine[-1][1:] == ["9999", "(not in MA_DEPOSITO)", "0", "<- configured"]

    only = run_cli(["stores", "--warehouses", "--stores", store.id], etl_env)
    assert {r[0] for r in table_rows(only.stdout)} == {store.id}
