"""What only the PostgreSQL target promises: readers never wait, runs over the same stores exclude
each other while disjoint shards run at once, lock waits are bounded, a stop cancels on the server.

Real parts: the target is a separate database on the local PostgreSQL server, reached by the CLI
through psycopg; the "reader" is a second session as the backend would open one. A publish is
caught half-way by holding its store's ledger row (``SELECT ... FOR UPDATE``): the publish has
deleted and copied the store's rows and waits to write its ledger row, its transaction open.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from etl_cli import json_lines, run_cli, write_stores
from running import BackgroundRun, event, table_locked
from target_db import TargetReader

from fluxion_etl.config import Settings
from fluxion_etl.targets.postgres.locks import serialize_store_publish
from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_etl.targets.postgres.url import resolve_login
from fluxion_harness.postgres_source import PgServer, PgStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any) -> PgStore:
    made: PgStore = make_pg_store(800, seed=61)
    write_stores(pg_target_env, ([made], pg_server))
    return made


@contextmanager
def ledger_row_held(target: TargetReader, run_id: str, store_id: str) -> Iterator[None]:
    """An open transaction holding the store's ledger row of ``run_id``: that store's publish
    blocks at its last statement, after DELETE and COPY, until the block exits."""
    con = target.connect_pg()
    con.autocommit = False
    try:
        held = con.execute(
            "SELECT 1 FROM etl_ejecuciones WHERE run_id = %s AND ubicacion_id = %s FOR UPDATE",
            [run_id, store_id],
        ).fetchall()
        assert held, "the run's ledger row is not there yet"
        yield
    finally:
        con.rollback()
        con.close()


def fluxion_backends(target: TargetReader) -> list[dict[str, Any]]:
    return target.query(
        "SELECT pid, state, wait_event_type FROM pg_stat_activity "
        "WHERE application_name = 'fluxion-etl' AND datname = current_database()"
    )


def wait_until(condition: Any, timeout: float = 30) -> None:
    ends = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < ends, "condition not met in time"
        time.sleep(0.05)


def publish_caught_half_way(
    env: dict[str, str], server: PgServer, store: PgStore, target: TargetReader
) -> tuple[BackgroundRun, Any]:
    """Start a run and stop its publish half-way; returns the run and the held-row context."""
    with table_locked(server, store.database):
        run = BackgroundRun(["run"], env)
        run.wait_for(event("extract started", store=store.id))
        run_id = run.lines[0]["run_id"]
        held = ledger_row_held(target, run_id, store.id)
        held.__enter__()
    wait_until(lambda: any(b["wait_event_type"] == "Lock" for b in fluxion_backends(target)))
    return run, held


def test_readers_keep_the_old_snapshot_and_never_wait_while_a_publish_is_open(
    pg_target_env: dict[str, str], pg_server: PgServer, store: PgStore
) -> None:
    target = TargetReader(pg_target_env, pg_server)
    first = run_cli(["run"], pg_target_env)
    assert first.returncode == 0, first.stdout[-3000:]
    old_batch = json_lines(first.stdout)[-1]["run_id"]
    old_rows = len(target.rows(store.id))

    run, held = publish_caught_half_way(pg_target_env, pg_server, store, target)
    try:
        with target.connect_pg() as reader:
            reader.execute("SET statement_timeout = '2s'")  # a blocked read fails the test
            started = time.monotonic()
            seen = reader.execute(
                "SELECT batch_id, count(*) FROM inventario_raw WHERE ubicacion_id = %s "
                "GROUP BY batch_id",
                [store.id],
            ).fetchall()
            seconds = time.monotonic() - started
    finally:
        held.__exit__(None, None, None)
    code, _, stderr = run.finish(timeout=60)
    assert code == 0, run.text[-3000:] + stderr
    assert seen == [(old_batch, old_rows)] and seconds < 1.0
    new_batch = run.lines[-1]["run_id"]
    after = target.query(
        "SELECT DISTINCT batch_id FROM inventario_raw WHERE ubicacion_id = ?", [store.id]
    )
    assert [r["batch_id"] for r in after] == [new_batch]


def test_a_lock_held_past_the_wait_bound_fails_the_store_with_bloqueo_and_keeps_its_rows(
    pg_target_env: dict[str, str], pg_server: PgServer, store: PgStore
) -> None:
    target = TargetReader(pg_target_env, pg_server)
    assert run_cli(["run"], pg_target_env).returncode == 0
    before = target.rows(store.id)
    env = {**pg_target_env, "ETL_LOCK_WAIT_SECONDS": "2"}
    with table_locked(pg_server, store.database):
        run = BackgroundRun(["run"], env)
        run.wait_for(event("extract started", store=store.id))
        run_id = run.lines[0]["run_id"]
        with ledger_row_held(target, run_id, store.id):
            pass  # the row exists; hold it below, once the fetch is free
    with ledger_row_held(target, run_id, store.id):
        started = time.monotonic()
        code, _, stderr = run.finish(timeout=60)
        seconds = time.monotonic() - started
    assert code == 1, run.text[-3000:] + stderr
    failed = [line for line in run.lines if line.get("event") == "store failed"]
    assert [(line["store"], line["error_tipo"]) for line in failed] == [(store.id, "bloqueo")]
    assert "ETL_LOCK_WAIT_SECONDS" in failed[0]["error"]
    assert failed[0]["phase"] == "publish"  # the fetch worked; the operator looks at the target
    assert seconds < 30  # 2 s for the publish, 2 s for the ledger's closing write
    assert target.rows(store.id) == before


@pytest.mark.parametrize(
    ("stop", "error_tipo"), [("SIGTERM", "interrumpido"), ("deadline", "timeout")]
)
def test_a_stop_cancels_the_publish_on_the_server_and_leaves_no_backend(
    pg_target_env: dict[str, str], pg_server: PgServer, store: PgStore, stop: str, error_tipo: str
) -> None:
    """Fargate's SIGTERM, or ETL_TIMEOUT_SECONDS, while a store's publish transaction is open
    on the server: the statement is cancelled there, the session closed, the rows as before."""
    target = TargetReader(pg_target_env, pg_server)
    assert run_cli(["run"], pg_target_env).returncode == 0
    before = target.rows(store.id)
    env = {**pg_target_env, "ETL_TIMEOUT_SECONDS": "8"} if stop == "deadline" else pg_target_env
    run, held = publish_caught_half_way(env, pg_server, store, target)
    try:
        if stop == "SIGTERM":
            run.process.send_signal(signal.SIGTERM)
        code, seconds, stderr = run.finish(timeout=60)
        backends_after_exit = fluxion_backends(target)
    finally:
        held.__exit__(None, None, None)
    assert code == 1, run.text[-3000:] + stderr
    failed = [line for line in run.lines if line.get("event") == "store failed"]
    assert [(line["store"], line["error_tipo"]) for line in failed] == [(store.id, error_tipo)]
    assert backends_after_exit == []  # the copy was cancelled server-side, the session closed
    assert target.rows(store.id) == before


def test_the_targets_own_session_terminated_mid_publish_fails_that_store_alone(
    pg_target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    """The target server ends the ETL's publishing session (an RDS fail-over, a DBA's
    ``pg_terminate_backend``) while the store's transaction has deleted and copied its rows:
    nothing of it is committed, that store fails ``conexion`` with its previous snapshot and a
    ledger row saying why, the other store publishes, and the next run publishes it."""
    victim = make_pg_store(700, seed=71, id="tienda_02", warehouse="0202")
    steady = make_pg_store(500, seed=72, id="tienda_03", warehouse="0302", name="MAÑONGO")
    write_stores(pg_target_env, ([victim, steady], pg_server))
    target = TargetReader(pg_target_env, pg_server)
    assert run_cli(["run"], pg_target_env).returncode == 0
    before = target.rows(victim.id)
    for store in (victim, steady):  # new quantities: a new snapshot is told from the old one
        conn = pg_server.connect(store.database)
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE ma_depoprod SET n_cantidad = n_cantidad + 1")
        conn.close()

    run, held = publish_caught_half_way(pg_target_env, pg_server, victim, target)
    try:
        waiting = [b["pid"] for b in fluxion_backends(target) if b["wait_event_type"] == "Lock"]
        with target.connect_pg() as dba:
            ended = dba.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [waiting]
            ).fetchall()
        assert ended == [(True,)], waiting
    finally:  # let go of the row: the run closes the store's ledger row with why it failed
        held.__exit__(None, None, None)
    code, _, stderr = run.finish(timeout=60)
    assert code == 3, run.text[-3000:] + stderr
    run_id = run.lines[-1]["run_id"]
    ledger = target.ledger(run_id)
    failed = ledger[victim.id]
    assert (failed["estado"], failed["error_tipo"]) == ("fallido", "conexion")
    assert "lost the target" in failed["error_mensaje"]
    assert "administrator command" in failed["error_mensaje"]
    assert pg_server.password not in failed["error_mensaje"]
    assert target.rows(victim.id) == before  # nothing of the cut transaction is visible
    assert ledger[steady.id]["estado"] == "exitoso"
    assert {r["batch_id"] for r in target.rows(steady.id).values()} == {run_id}

    again = run_cli(["run"], pg_target_env)
    assert again.returncode == 0, again.stdout[-3000:]
    rows = target.rows(victim.id)
    assert set(rows) == set(before)
    assert all(rows[c]["cantidad_actual"] == before[c]["cantidad_actual"] + 1 for c in rows)


def test_a_run_whose_guard_session_ended_publishes_nothing_without_its_lock(
    pg_target_env: dict[str, str], pg_server: PgServer, store: PgStore
) -> None:
    """The server ends the session holding the run's advisory locks (a fail-over, a DBA) while
    the store is fetched: the locks went with it, so another run could now take the store. The
    publish sees it in ``pg_locks`` and fails the store instead of publishing unguarded."""
    target = TargetReader(pg_target_env, pg_server)
    assert run_cli(["run"], pg_target_env).returncode == 0
    before = target.rows(store.id)
    with table_locked(pg_server, store.database):
        run = BackgroundRun(["run"], pg_target_env)
        run.wait_for(event("extract started", store=store.id))
        guards = target.query(
            "SELECT DISTINCT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
            "AND l.locktype = 'advisory' WHERE a.application_name = 'fluxion-etl' "
            "AND a.datname = current_database()"
        )
        assert len(guards) == 1, guards
        ended = target.query("SELECT pg_terminate_backend(?) AS ok", [guards[0]["pid"]])
        assert ended == [{"ok": True}]
    code, _, stderr = run.finish(timeout=60)
    assert code == 1, run.text[-3000:] + stderr
    failed = [line for line in run.lines if line.get("event") == "store failed"]
    assert [(line["store"], line["error_tipo"]) for line in failed] == [(store.id, "conexion")]
    assert "run guard's session" in failed[0]["error"]
    assert target.rows(store.id) == before
    assert run_cli(["run"], pg_target_env).returncode == 0  # a new run takes the lock again


def test_two_publishes_of_one_store_take_turns_so_their_rows_never_mix(
    pg_target_env: dict[str, str], pg_server: PgServer, store: PgStore
) -> None:
    """Another transaction publishing the same store (a run whose guard session was lost, so the
    run guard no longer kept them apart) holds the store's publish lock: this run's publish
    waits on it, then replaces every row, its own batch alone in the snapshot."""
    target = TargetReader(pg_target_env, pg_server)
    assert run_cli(["run"], pg_target_env).returncode == 0
    rows = len(target.rows(store.id))
    other = target.connect_pg()
    other.autocommit = False
    try:
        with table_locked(pg_server, store.database):
            run = BackgroundRun(["run"], pg_target_env)
            run.wait_for(event("extract started", store=store.id))
            with other.cursor() as cur:
                serialize_store_publish(cur, pg_target_env["DATABASE_SCHEMA"], store.id)
        wait_until(
            lambda: bool(
                target.query(
                    "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND NOT l.granted "
                    "AND a.application_name = 'fluxion-etl'"
                )
            )
        )
        assert run.process.poll() is None  # still waiting for the other publish
    finally:
        other.commit()
        other.close()
    code, _, stderr = run.finish(timeout=60)
    assert code == 0, run.text[-3000:] + stderr
    batch = run.lines[-1]["run_id"]
    served = target.query(
        "SELECT batch_id, count(*) AS n FROM inventario_raw WHERE ubicacion_id = ? "
        "GROUP BY batch_id",
        [store.id],
    )
    assert served == [{"batch_id": batch, "n": rows}]


def test_runs_over_the_same_store_exit_4_and_disjoint_shards_run_at_once(
    pg_target_env: dict[str, str], pg_stores: Any, pg_server: PgServer
) -> None:
    """A run holding tienda_02 (the real run guard, taken in this process) blocks any run that
    includes tienda_02; a shard over the other stores publishes meanwhile."""
    settings = Settings.from_env(pg_target_env)
    assert settings.database_url is not None
    running = PostgresTarget(
        resolve_login(settings.database_url, pg_target_env),
        settings.database_schema,
        lock_wait_seconds=5,
    )
    first, *others = [store.id for store in pg_stores]
    with running.guard("running-shard", [first]):
        overlapping = run_cli(["run"], pg_target_env)
        disjoint = run_cli(["run", "--stores", ",".join(others)], pg_target_env)
    after = run_cli(["run", "--stores", first], pg_target_env)
    assert overlapping.returncode == 4, overlapping.stdout[-2000:] + overlapping.stderr
    assert f"another run holds store {first}" in overlapping.stderr
    assert overlapping.stdout == ""  # nothing started, nothing logged as a run
    assert disjoint.returncode == 0, disjoint.stdout[-3000:]
    assert after.returncode == 0, after.stdout[-3000:]
    published = TargetReader(pg_target_env, pg_server).query(
        "SELECT DISTINCT ubicacion_id FROM inventario_raw ORDER BY 1"
    )
    assert [r["ubicacion_id"] for r in published] == sorted(store.id for store in pg_stores)


def test_check_proves_the_target_is_writable_and_leaves_nothing(
    pg_target_env: dict[str, str], pg_server: PgServer
) -> None:
    result = run_cli(["check"], pg_target_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "target: ok:" in result.stdout and "create/insert/delete ok" in result.stdout
    left = TargetReader(pg_target_env, pg_server).query(
        "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'fluxion_check'"
    )
    assert left == [{"n": 0}]
    bad = {**pg_target_env, "PGPASSWORD": "wrong-password-123"}
    failed = run_cli(["check"], bad)
    assert failed.returncode == 1
    assert "target: FAIL" in failed.stdout and "wrong-password-123" not in failed.stdout


def test_a_target_server_that_is_down_fails_the_run_in_one_line(
    pg_target_env: dict[str, str],
) -> None:
    env = {
        **pg_target_env,
        "DATABASE_URL": "postgresql://fluxion@127.0.0.1:9/nowhere?sslmode=disable",
    }
    result = run_cli(["run"], env)
    assert result.returncode == 1
    assert "cannot connect" in result.stdout + result.stderr
    assert psycopg.__name__  # the real client library is what refused


@pytest.mark.aws
def test_the_target_login_can_come_from_an_rds_shaped_secret(
    pg_target_env: dict[str, str], pg_server: PgServer, moto_endpoint: Any, pg_target_database: str
) -> None:
    """TARGET_CREDENTIALS_SECRET_ID alone (no PGPASSWORD): the secret gives the login and the
    address the URL leaves out, and the password shows up nowhere in the output."""
    import json
    import secrets as random

    name = f"fluxion-target-{random.token_hex(4)}"
    moto_endpoint.client("secretsmanager").create_secret(
        Name=name,
        SecretString=json.dumps(
            {
                "username": pg_server.user,
                "password": pg_server.password,
                "host": pg_server.host,
                "port": pg_server.port,
                "dbname": pg_target_database,
            }
        ),
    )
    env = {k: v for k, v in pg_target_env.items() if k != "PGPASSWORD"}
    env.update(
        moto_endpoint.env,
        AWS_ENDPOINT_URL=moto_endpoint.url,
        DATABASE_URL="postgresql:///?sslmode=disable",
        TARGET_CREDENTIALS_SECRET_ID=name,
    )
    env.pop("PGPASSWORD", None)
    checked = run_cli(["check"], env)
    assert "target: ok:" in checked.stdout, checked.stdout + checked.stderr
    assert f"/{pg_target_database} schema=" in checked.stdout
    run = run_cli(["run"], env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert pg_server.password not in checked.stdout + checked.stderr + run.stdout + run.stderr
