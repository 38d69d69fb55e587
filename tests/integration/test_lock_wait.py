"""The DuckDB write lock, shared with the web backend: waited for politely, held only to publish.

A second process opening the target read-write (as the backend might) is real: DuckDB allows one
writer process per file, and the ETL must wait for it with backoff up to ETL_LOCK_WAIT_SECONDS,
then give up on that publish (``bloqueo``) with the store's previous snapshot intact.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from etl_cli import json_lines, published_rows, run_cli, write_stores
from running import BackgroundRun, duckdb_held, event, table_locked

from fluxion_etl.demo.postgres_source import PgServer, PgStore

pytestmark = pytest.mark.postgres

WAITING = "target database is locked by another process; waiting"


@pytest.fixture
def store(etl_env: dict[str, str], pg_server: PgServer, make_pg_store: Any) -> PgStore:
    made: PgStore = make_pg_store(600, seed=41)
    write_stores(etl_env, ([made], pg_server))
    return made


def test_a_publish_waits_for_the_other_process_and_then_succeeds(
    etl_env: dict[str, str], store: PgStore
) -> None:
    db = Path(etl_env["DATABASE_PATH"])
    with duckdb_held(db, seconds=4):
        result = run_cli(["run"], {**etl_env, "ETL_LOCK_WAIT_SECONDS": "120"})
    assert result.returncode == 0, result.stdout[-3000:]
    lines = json_lines(result.stdout)
    waits = [line for line in lines if line.get("event") == WAITING]
    assert waits  # held before the run began: the run waits to open its ledger rows
    assert {(w["run_id"], w.get("store"), w["step"]) for w in waits} == {
        (lines[-1]["run_id"], None, "opening the run")
    }
    assert set(published_rows(db, store.id)) == set(store.data.expected)


def test_the_lock_is_held_only_to_publish_and_a_long_holder_gives_bloqueo(
    etl_env: dict[str, str], pg_server: PgServer, store: PgStore
) -> None:
    """While the store's query runs, another process can open the file read-write (the ETL does
    not hold it); that process then keeps it past ETL_LOCK_WAIT_SECONDS, so the publish fails
    cleanly and the previous snapshot stays."""
    db = Path(etl_env["DATABASE_PATH"])
    first = run_cli(["run"], etl_env)
    assert first.returncode == 0, first.stdout[-3000:]
    previous = published_rows(db, store.id)

    env = {**etl_env, "ETL_LOCK_WAIT_SECONDS": "3"}
    with ExitStack() as holding:
        with table_locked(pg_server, store.database):
            run = BackgroundRun(["run"], env)
            run.wait_for(event("extract started", store=store.id))
            # opened read-write mid-run: the ETL holds no lock while it fetches
            holding.enter_context(duckdb_held(db))
        # the table lock is released: the fetch completes and the publish meets the holder
        code, _, stderr = run.finish(timeout=60)
    assert code == 1, run.text[-3000:] + stderr
    failed = [line for line in run.lines if line.get("event") == "store failed"]
    assert [(line["store"], line["error_tipo"]) for line in failed] == [(store.id, "bloqueo")]
    assert "ETL_LOCK_WAIT_SECONDS" in failed[0]["error"]
    assert published_rows(db, store.id) == previous
    # The holder also kept the ledger write out; the next run closes the row it left open.
    again = run_cli(["run"], etl_env)
    assert again.returncode == 0, again.stdout[-3000:]
    interrupted = [
        line for line in json_lines(again.stdout) if line.get("event", "").startswith("closed")
    ]
    assert interrupted and interrupted[0]["rows"] == 1


def test_the_deadline_cuts_a_lock_wait_short(etl_env: dict[str, str], store: PgStore) -> None:
    db = Path(etl_env["DATABASE_PATH"])
    env = {**etl_env, "ETL_LOCK_WAIT_SECONDS": "600", "ETL_TIMEOUT_SECONDS": "3"}
    with duckdb_held(db):
        started = time.monotonic()
        result = run_cli(["run"], env, timeout=120)
        seconds = time.monotonic() - started
    assert result.returncode == 1, result.stdout[-3000:]
    assert seconds < 60  # the deadline (3 s), not ETL_LOCK_WAIT_SECONDS (600 s)
    failed = [line for line in json_lines(result.stdout) if line.get("event") == "ETL failed"]
    assert failed and "stopped while waiting" in failed[0]["error"]
