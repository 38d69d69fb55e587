"""The target's write lock, shared with the web backend: waited for politely, held only to publish.

On DuckDB another process opening the file read-write (as the backend might) is real: DuckDB
allows one writer process per file. On PostgreSQL the same situation is a session holding a lock
that conflicts with the run's writes (``SHARE`` on the target's tables, as a non-concurrent
``CREATE INDEX`` takes). Either way the ETL waits up to ETL_LOCK_WAIT_SECONDS (DuckDB: retries
with back-off; PostgreSQL: ``lock_timeout``), then gives up on that publish (``bloqueo``) with the
store's previous snapshot intact; the deadline cuts the wait short and, on PostgreSQL, leaves no
statement running on the server.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

import pytest
from etl_cli import json_lines, run_cli, write_stores
from running import BackgroundRun, event, table_locked, target_held
from target_db import TargetReader

from fluxion_harness.postgres_source import PgServer, PgStore

pytestmark = pytest.mark.postgres

WAITING = "target database is locked by another process; waiting"


@pytest.fixture
def store(target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any) -> PgStore:
    """The test's store, published once (so the PostgreSQL tables exist to be locked)."""
    made: PgStore = make_pg_store(600, seed=41)
    write_stores(target_env, ([made], pg_server))
    first = run_cli(["run"], target_env)
    assert first.returncode == 0, first.stdout[-3000:]
    return made


def etl_sessions(env: dict[str, str], server: PgServer) -> list[dict[str, Any]]:
    """The ETL's sessions still on the target server (PostgreSQL; none on DuckDB)."""
    if not env.get("DATABASE_URL"):
        return []
    return TargetReader(env, server).query(
        "SELECT pid, state, query FROM pg_stat_activity "
        "WHERE application_name = 'fluxion-etl' AND datname = current_database()"
    )


def test_a_publish_waits_for_the_other_process_and_then_succeeds(
    target_env: dict[str, str], pg_server: PgServer, store: PgStore
) -> None:
    target = TargetReader(target_env, pg_server)
    with target_held(target_env, pg_server, seconds=4):
        run = BackgroundRun(["run"], {**target_env, "ETL_LOCK_WAIT_SECONDS": "120"})
        time.sleep(4)
    code, seconds, stderr = run.finish(timeout=120)
    assert code == 0, run.text[-3000:] + stderr
    assert seconds >= 4  # it waited for the holder rather than failing
    run_id = run.lines[-1]["run_id"]
    assert target.ledger(run_id)[store.id]["estado"] == "exitoso"
    assert {row["batch_id"] for row in target.rows(store.id).values()} == {run_id}
    assert set(target.rows(store.id)) == set(store.data.expected)
    waits = [line for line in run.lines if line.get("event") == WAITING]
    if not target_env.get("DATABASE_URL"):  # DuckDB logs its retries; lock_timeout waits quietly
        assert {(w["run_id"], w.get("store"), w["step"]) for w in waits} == {
            (run_id, None, "opening the run")
        }


def test_the_lock_is_held_only_to_publish_and_a_long_holder_gives_bloqueo(
    target_env: dict[str, str], pg_server: PgServer, store: PgStore
) -> None:
    """While the store's query runs, another process can take the target for writing (the ETL
    holds nothing); that process then keeps it past ETL_LOCK_WAIT_SECONDS, so the publish fails
    cleanly, the previous snapshot stays, and readers of the target still get it."""
    target = TargetReader(target_env, pg_server)
    previous = target.rows(store.id)

    env = {**target_env, "ETL_LOCK_WAIT_SECONDS": "3"}
    with ExitStack() as holding:
        with table_locked(pg_server, store.database):
            run = BackgroundRun(["run"], env)
            run.wait_for(event("extract started", store=store.id))
            # taken mid-run: the ETL holds no lock while it fetches
            holding.enter_context(target_held(target_env, pg_server))
        # the source's lock is released: the fetch completes and the publish meets the holder
        code, _, stderr = run.finish(timeout=60)
        if target_env.get("DATABASE_URL"):  # a reader is not blocked by the holder
            assert target.rows(store.id) == previous
    assert code == 1, run.text[-3000:] + stderr
    failed = [line for line in run.lines if line.get("event") == "store failed"]
    assert [(line["store"], line["error_tipo"]) for line in failed] == [(store.id, "bloqueo")]
    assert "ETL_LOCK_WAIT_SECONDS" in failed[0]["error"]
    assert target.rows(store.id) == previous
    assert etl_sessions(target_env, pg_server) == []
    # The holder also kept the ledger write out; the next run closes the row it left open.
    again = run_cli(["run"], target_env)
    assert again.returncode == 0, again.stdout[-3000:]
    interrupted = [
        line for line in json_lines(again.stdout) if line.get("event", "").startswith("closed")
    ]
    assert interrupted and interrupted[0]["rows"] == 1


def test_the_deadline_cuts_a_lock_wait_short_and_leaves_no_session_on_the_server(
    target_env: dict[str, str], pg_server: PgServer, store: PgStore
) -> None:
    env = {**target_env, "ETL_LOCK_WAIT_SECONDS": "600", "ETL_TIMEOUT_SECONDS": "3"}
    with target_held(target_env, pg_server):
        started = time.monotonic()
        result = run_cli(["run"], env, timeout=120)
        seconds = time.monotonic() - started
        left = etl_sessions(target_env, pg_server)  # looked at while the holder still holds
    assert result.returncode == 1, result.stdout[-3000:]
    assert seconds < 60  # the deadline (3 s), not ETL_LOCK_WAIT_SECONDS (600 s)
    failed = [line for line in json_lines(result.stdout) if line.get("event") == "ETL failed"]
    assert failed and "stopped" in failed[0]["error"], failed
    assert left == []  # the waiting statement was cancelled on the server, the session closed
