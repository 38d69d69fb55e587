"""PostgreSQL: the stores ready together share one session, each still in its own transaction.

A session per store cost more than a small store's publish (connecting and authenticating, a
server process forked per session), so a run of thousands of small stores spent its publishes
logging in. Real parts: ready databases from the real staging and transform
(:mod:`fluxion_harness.ready`), the target a fresh schema on the real server, read back by a
second session as the backend would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from target_db import postgres_target

from fluxion_etl.errors import SnapshotHeldBack
from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.targets.base import Publication
from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_harness.postgres_source import PgServer
from fluxion_harness.ready import demo_store, ready_database

pytestmark = pytest.mark.postgres

STORES = [demo_store(i) for i in range(1, 5)]
ROWS = 200


@pytest.fixture
def target(pg_server: PgServer, pg_target_database: str) -> Iterator[PostgresTarget]:
    with postgres_target(pg_server, pg_target_database) as made:
        yield made


def publications(target: PostgresTarget, tmp_path: Path, run_id: str) -> list[Publication]:
    target.open_run(run_id, [s.id for s in STORES], "arrow")
    work = tmp_path / run_id
    work.mkdir()
    made = []
    for index, store in enumerate(STORES):
        ready = ready_database(work, store, ROWS, run_id, seed=index)
        now = utcnow()
        entry = LedgerEntry(run_id, store.id, "exitoso", now, now, 1, "arrow", ready.counters)
        made.append(Publication(store.id, ready.path, entry))
    return made


def served(target: PostgresTarget) -> dict[str, str]:
    """The run each store's served rows come from (``batch_id``), read by a backend session."""
    with target.connect(autocommit=True) as con:
        rows = con.execute(
            "SELECT ubicacion_id, min(batch_id), max(batch_id) FROM inventario_raw GROUP BY 1"
        ).fetchall()
    assert all(low == high for _, low, high in rows)  # never rows of two runs
    return {str(store): str(low) for store, low, _ in rows}


def ledger(target: PostgresTarget, run_id: str) -> dict[str, str]:
    with target.connect(autocommit=True) as con:
        rows = con.execute(
            "SELECT ubicacion_id, estado FROM etl_ejecuciones WHERE run_id = %s", [run_id]
        ).fetchall()
    return {str(store): str(state) for store, state in rows}


def test_a_batch_shares_one_session_and_a_failing_store_alone_keeps_its_snapshot(
    target: PostgresTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = publications(target, tmp_path, "run-1")
    with target.publishing():
        assert all(not isinstance(o, Exception) for o in target.publish_batch(first))
    assert served(target) == {s.id: "run-1" for s in STORES}

    sessions: list[int] = []
    connect = target.connect

    def counted(*, autocommit: bool = False) -> psycopg.Connection[Any]:
        con = connect(autocommit=autocommit)
        sessions.append(con.info.backend_pid)
        return con

    def hold_back_the_second(entry: LedgerEntry, rows: int) -> LedgerEntry:
        if entry.store_id == STORES[1].id:
            raise SnapshotHeldBack(f"{entry.store_id}: held back by the test")
        return entry

    second = [
        Publication(p.store_id, p.ready, p.entry, hold_back_the_second)
        for p in publications(target, tmp_path, "run-2")
    ]
    monkeypatch.setattr(target, "connect", counted)
    with target.publishing():
        outcomes = target.publish_batch(second)
    monkeypatch.undo()

    assert isinstance(outcomes[1], SnapshotHeldBack)
    assert [o.state for i, o in enumerate(outcomes) if i != 1] == ["exitoso"] * 3  # type: ignore[union-attr]
    # the first two stores in one session; the failed transaction ended it, and the last two
    # shared the next one (a session per store: four)
    assert len(sessions) == 2
    assert served(target) == {s.id: ("run-1" if s is STORES[1] else "run-2") for s in STORES}
    states = ledger(target, "run-2")
    assert {s: states[s] for s in states if s != STORES[1].id} == {
        s.id: "exitoso" for s in STORES if s is not STORES[1]
    }
    assert states[STORES[1].id] == "en_proceso"  # the run records its failure afterwards
