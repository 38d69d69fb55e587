"""Faults of the stores' links and servers, end to end through the real CLI and psqlODBC, on each
target (a DuckDB file, a PostgreSQL database: ``target_env``).

Each test reproduces one thing the chain's operators lived through -- a VPN reset mid-transfer,
a store whose server accepts TCP and never answers, a server that hangs mid-query, a deadline,
Fargate's SIGTERM -- and checks the ledger, the exit code and the published rows.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from typing import Any

import pytest
from etl_cli import json_lines, run_cli, write_stores
from running import BackgroundRun, event, table_locked
from target_db import TargetReader

from fluxion_etl.source.query import load_query
from fluxion_harness.linkproxy import FaultyProxy, SilentListener
from fluxion_harness.postgres_source import PgServer, PgStore

pytestmark = pytest.mark.postgres


def via(server: PgServer, port: int) -> PgServer:
    return dataclasses.replace(server, port=port)


def assert_published_exactly(db: TargetReader, store: PgStore) -> None:
    rows = db.rows(store.id)
    assert set(rows) == set(store.data.expected)
    assert len({row["batch_id"] for row in rows.values()}) == 1


@pytest.fixture
def two_stores(make_pg_store: Any) -> tuple[PgStore, PgStore]:
    return (
        make_pg_store(1500, seed=11, id="tienda_02", warehouse="0202"),
        make_pg_store(1500, seed=12, id="tienda_03", warehouse="0302", name="MAÑONGO"),
    )


# --- retries ---------------------------------------------------------------------------------


def test_a_vpn_reset_mid_transfer_is_retried_from_scratch_without_duplicates(
    target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    # ~16,000 rows, ~3.8 MB on the wire; psqlODBC fetches 10,000 rows a round trip, so when the
    # link drops at 3 MB the first 10,000 rows have already been staged, in 700-row batches.
    flaky = make_pg_store(20_000, seed=11, id="tienda_02", warehouse="0202")
    steady = make_pg_store(1500, seed=12, id="tienda_03", warehouse="0302", name="MAÑONGO")
    upstream = (pg_server.host, pg_server.port)
    with FaultyProxy(upstream, fault="reset", after_bytes=3_000_000, spoil=1) as proxy:
        write_stores(target_env, ([flaky], via(pg_server, proxy.port)), ([steady], pg_server))
        result = run_cli(["run"], {**target_env, "ETL_MAX_RETRIES": "3"})
    assert result.returncode == 0, result.stdout[-3000:]
    assert (proxy.connections, proxy.spoiled) == (2, 1)
    retried = [
        line
        for line in json_lines(result.stdout)
        if line.get("event") == "transient error; retrying the store from scratch"
    ]
    assert [line["store"] for line in retried] == [flaky.id]
    db = TargetReader(target_env, pg_server)
    ledger = db.ledger()
    assert (ledger[flaky.id]["estado"], ledger[flaky.id]["intentos"]) == ("exitoso", 2)
    assert ledger[steady.id]["intentos"] == 1
    for store in (flaky, steady):  # the half-fetched first attempt left no row behind
        assert_published_exactly(db, store)
        assert ledger[store.id]["registros_cargados"] == len(store.data.expected)


def test_a_link_that_keeps_resetting_fails_after_etl_max_retries_and_alone(
    target_env: dict[str, str], pg_server: PgServer, two_stores: tuple[PgStore, PgStore]
) -> None:
    flaky, steady = two_stores
    upstream = (pg_server.host, pg_server.port)
    with FaultyProxy(upstream, fault="reset", after_bytes=4096, spoil=None) as proxy:
        write_stores(target_env, ([flaky], via(pg_server, proxy.port)), ([steady], pg_server))
        result = run_cli(["run"], {**target_env, "ETL_MAX_RETRIES": "2"})
    assert result.returncode == 3, result.stdout[-3000:]
    assert proxy.connections == 2
    ledger = TargetReader(target_env, pg_server).ledger()
    failed = ledger[flaky.id]
    assert (failed["estado"], failed["error_tipo"], failed["intentos"]) == (
        "fallido",
        "conexion",
        2,
    )
    assert ledger[steady.id]["estado"] == "exitoso"


def test_a_serialization_failure_is_retried_and_then_succeeds(
    target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any, tmp_path: Path
) -> None:
    """SQLSTATE 40001 raised by the store's server on the first execution only."""
    store = make_pg_store(800, seed=21)
    conn = pg_server.connect(store.database)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE SEQUENCE fluxion_executions")
        cur.execute(
            "CREATE FUNCTION fluxion_victim_once() RETURNS integer LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('fluxion_executions') = 1 THEN RAISE EXCEPTION 'could not serialize "
            "access' USING ERRCODE = '40001'; END IF; RETURN 1; END $$"
        )
    conn.close()
    query = tmp_path / "query.sql"
    query.write_text(load_query(None) + "\n  AND fluxion_victim_once() = 1\n", encoding="utf-8")
    write_stores(target_env, ([store], pg_server))
    result = run_cli(["run"], {**target_env, "ETL_QUERY_FILE": str(query)})
    assert result.returncode == 0, result.stdout[-3000:]
    ledger = TargetReader(target_env, pg_server).ledger()
    assert ledger[store.id]["intentos"] == 2
    assert_published_exactly(TargetReader(target_env, pg_server), store)


@pytest.mark.parametrize(
    ("change", "error_tipo"),
    [
        ("wrong_database", "login"),
        ("wrong_password", "login"),
        ("query_error", "consulta"),
    ],
)
def test_login_and_query_errors_are_not_retried(
    target_env: dict[str, str],
    pg_server: PgServer,
    make_pg_store: Any,
    tmp_path: Path,
    change: str,
    error_tipo: str,
) -> None:
    store = make_pg_store(300, seed=31)
    env = {**target_env, "ETL_MAX_RETRIES": "3"}
    if change == "wrong_database":
        store = dataclasses.replace(store, database=store.database + "_missing")
    elif change == "wrong_password":
        env["SQL_PASS"] = "not-" + pg_server.password
    else:
        query = tmp_path / "query.sql"
        query.write_text(load_query(None).replace("p.n_Peso", "p.n_PesoX"), encoding="utf-8")
        env["ETL_QUERY_FILE"] = str(query)
    write_stores(env, ([store], pg_server))
    result = run_cli(["run"], env)
    assert result.returncode == 1, result.stdout[-3000:]
    entry = TargetReader(env, pg_server).ledger()[store.id]
    assert (entry["estado"], entry["error_tipo"], entry["intentos"]) == ("fallido", error_tipo, 1)
    assert "retrying" not in result.stdout


def test_a_server_that_never_answers_is_bounded_by_the_login_timeout(
    target_env: dict[str, str], pg_server: PgServer, two_stores: tuple[PgStore, PgStore]
) -> None:
    silent_store, steady = two_stores
    with SilentListener() as silent:
        silent_server = via(pg_server, silent.port)
        write_stores(target_env, ([silent_store], silent_server), ([steady], pg_server))
        result = run_cli(
            ["run"],
            {**target_env, "ETL_CONNECT_TIMEOUT_SECONDS": "2", "ETL_MAX_RETRIES": "1"},
            timeout=120,
        )
    assert result.returncode == 3, result.stdout[-3000:]
    ledger = TargetReader(target_env, pg_server).ledger()
    failed = ledger[silent_store.id]
    assert (failed["estado"], failed["error_tipo"]) == ("fallido", "conexion")
    assert "timeout expired" in failed["error_mensaje"]
    assert failed["duracion_segundos"] < 10  # 2 s login timeout, not the OS's minutes
    assert ledger[steady.id]["estado"] == "exitoso"


# --- deadline and signals ----------------------------------------------------------------------


@pytest.fixture
def previous_snapshot(
    target_env: dict[str, str], pg_server: PgServer, two_stores: tuple[PgStore, PgStore]
) -> dict[str, dict[str, dict[str, Any]]]:
    """A first good run of both stores, then new quantities at the source of every store."""
    write_stores(target_env, (two_stores, pg_server))
    first = run_cli(["run"], target_env)
    assert first.returncode == 0, first.stdout[-3000:]
    db = TargetReader(target_env, pg_server)
    snapshot = {store.id: db.rows(store.id) for store in two_stores}
    for store in two_stores:
        conn = pg_server.connect(store.database)
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE ma_depoprod SET n_cantidad = n_cantidad + 1")
        conn.close()
    return snapshot


def assert_new_snapshot(db: TargetReader, store_id: str, old: dict[str, dict[str, Any]]) -> None:
    rows = db.rows(store_id)
    assert set(rows) == set(old)
    assert all(rows[code]["cantidad_actual"] == old[code]["cantidad_actual"] + 1 for code in rows)
    assert len({row["batch_id"] for row in rows.values()}) == 1


@pytest.mark.parametrize(
    ("stop", "estado", "error_tipo"),
    [("deadline", "fallido", "timeout"), ("SIGTERM", "interrumpido", "interrumpido")],
)
def test_a_stopped_run_ends_promptly_and_every_store_is_wholly_old_or_wholly_new(
    target_env: dict[str, str],
    pg_server: PgServer,
    two_stores: tuple[PgStore, PgStore],
    previous_snapshot: dict[str, dict[str, dict[str, Any]]],
    stop: str,
    estado: str,
    error_tipo: str,
) -> None:
    """One store publishes, the other hangs in its server; then ETL_TIMEOUT_SECONDS expires or
    SIGTERM arrives (Fargate allows 120 s before SIGKILL). The hung store's fetch process is
    killed, not awaited; it keeps its previous snapshot, the other has its new one."""
    done, hung = two_stores
    db = TargetReader(target_env, pg_server)
    env = {**target_env, "ETL_TIMEOUT_SECONDS": "6"} if stop == "deadline" else target_env
    with table_locked(pg_server, hung.database):
        run = BackgroundRun(["run"], env)
        run.wait_for(event("store published", store=done.id))
        if stop == "SIGTERM":
            run.process.send_signal(signal.SIGTERM)
        code, seconds, stderr = run.finish(timeout=60)
    assert code == 3, run.text[-3000:] + stderr
    assert seconds < 6 + 10
    ledger = db.ledger()
    stopped = ledger[hung.id]
    assert (stopped["estado"], stopped["error_tipo"]) == (estado, error_tipo)
    assert ("SIGTERM" in stopped["error_mensaje"]) == (stop == "SIGTERM")
    assert ledger[done.id]["estado"] == "exitoso"
    assert db.rows(hung.id) == previous_snapshot[hung.id]
    assert_new_snapshot(db, done.id, previous_snapshot[done.id])
