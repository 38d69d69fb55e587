"""What the ledger and the logs say after a stop or a lock wait is what happened.

A real signal to the real CLI while a store hangs in its server (a table lock) and another waits
its turn; a real second process holding the DuckDB file while a store publishes.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from etl_cli import ledger_rows, write_stores
from running import BackgroundRun, duckdb_held, event, table_locked

from fluxion_etl.ledger import utcnow
from fluxion_harness.postgres_source import PgServer, PgStore

pytestmark = pytest.mark.postgres

WAITING = "target database is locked by another process; waiting"


def logged_at(line: dict[str, Any]) -> dt.datetime:
    """A log line's timestamp as naive UTC, the ledger's convention."""
    return dt.datetime.fromisoformat(line["timestamp"]).astimezone(dt.UTC).replace(tzinfo=None)


@pytest.fixture
def stores(etl_env: dict[str, str], pg_server: PgServer, make_pg_store: Any) -> list[PgStore]:
    made = [
        make_pg_store(400, seed=51, id="tienda_02", warehouse="0202"),
        make_pg_store(400, seed=52, id="tienda_03", warehouse="0302", name="MAÑONGO"),
    ]
    write_stores(etl_env, (made, pg_server))
    return made


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_after_a_stop_no_store_starts_and_the_ledger_keeps_what_really_happened(
    etl_env: dict[str, str], pg_server: PgServer, stores: list[PgStore], sig: signal.Signals
) -> None:
    """One worker: the first store hangs in its server for two seconds, the second waits its
    turn; then the signal. The second never starts; the first keeps its start, attempt and
    duration; each is logged as failed once; the run's last line is the final one."""
    hung, queued = stores
    db = Path(etl_env["DATABASE_PATH"])
    with table_locked(pg_server, hung.database):
        run = BackgroundRun(["run"], {**etl_env, "ETL_WORKERS": "1"})
        run.wait_for(event("extract started", store=hung.id))
        time.sleep(2)
        signalled = utcnow()
        run.process.send_signal(sig)
        code, _, stderr = run.finish(timeout=60)
    assert code == 1, run.text[-3000:] + stderr
    assert "Traceback" not in stderr
    started = [line["store"] for line in run.lines if line.get("event") == "extract started"]
    assert started == [hung.id]
    failed = [line["store"] for line in run.lines if line.get("event") == "store failed"]
    assert sorted(failed) == sorted([hung.id, queued.id])
    assert run.lines[-1].get("phase") == "done", run.lines[-3:]
    assert run.lines[-1]["stores_failed"] == [hung.id, queued.id]

    ledger = ledger_rows(db)
    stopped = ledger[hung.id]
    assert (stopped["estado"], stopped["intentos"]) == ("interrumpido", 1)
    assert stopped["fecha_inicio"] <= signalled - dt.timedelta(seconds=2)
    assert stopped["duracion_segundos"] >= 2
    assert stopped["duracion_segundos"] == pytest.approx(
        (stopped["fecha_fin"] - stopped["fecha_inicio"]).total_seconds(), abs=0.01
    )
    never = ledger[queued.id]
    assert (never["estado"], never["intentos"]) == ("interrumpido", 0)
    assert sig.name in never["error_mensaje"]


def test_after_a_lock_wait_the_ledger_says_when_the_snapshot_became_visible(
    etl_env: dict[str, str], pg_server: PgServer, stores: list[PgStore]
) -> None:
    """Another process takes the DuckDB file while the store fetches and keeps it four
    seconds: the publish waits, and fecha_fin is the moment it published, not the moment it
    began to wait. The waits name the run, the store and the step that waits."""
    store = stores[0]
    write_stores(etl_env, ([store], pg_server))
    db = Path(etl_env["DATABASE_PATH"])
    with ExitStack() as holding:
        with table_locked(pg_server, store.database):
            run = BackgroundRun(["run"], {**etl_env, "ETL_LOCK_WAIT_SECONDS": "60"})
            run.wait_for(event("extract started", store=store.id))
            holding.enter_context(duckdb_held(db, seconds=4))
        code, _, stderr = run.finish(timeout=90)
    assert code == 0, run.text[-3000:] + stderr
    run_id = run.lines[-1]["run_id"]
    waits = [line for line in run.lines if line.get("event") == WAITING]
    assert waits
    assert {(w["run_id"], w["store"], w["step"]) for w in waits} == {
        (run_id, store.id, "publishing the store")
    }
    (published,) = [line for line in run.lines if line.get("event") == "store published"]
    row = ledger_rows(db)[store.id]
    assert row["fecha_fin"] > logged_at(waits[-1])
    assert abs((row["fecha_fin"] - logged_at(published)).total_seconds()) < 1.0
    assert published["total_seconds"] == pytest.approx(row["duracion_segundos"], abs=0.01)
