"""Publishing sessions on real DuckDB files: stores ready together share one opening of the file,
each still in its own transaction, and a reader still gets the file within a bounded wait.

The ready databases come from the real staging and transform code (fluxion_harness.ready); the
reader is a separate process opening the file read-only, as the web backend does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import duckdb
import pytest
from etl_cli import ledger_rows
from running import BackgroundRun, duckdb_held, table_locked

from fluxion_etl.errors import SnapshotHeldBack
from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.run.transform import Transformed
from fluxion_etl.stores import Store
from fluxion_etl.targets.base import Publication
from fluxion_etl.targets.duckdb import publisher as publish
from fluxion_etl.targets.duckdb.connect import WRITER_SHARE
from fluxion_etl.targets.duckdb.publisher import Publisher
from fluxion_harness.postgres_source import PgServer, PgStore
from fluxion_harness.ready import demo_store, ready_database

STORES = [demo_store(i) for i in range(1, 5)]
ROWS = 300


def entry(run_id: str, ready: Transformed, store: Store) -> LedgerEntry:
    now = utcnow()
    return LedgerEntry(run_id, store.id, "exitoso", now, now, 1, "arrow", ready.counters)


def prepare(
    target: Publisher, tmp_path: Path, run_id: str, stores: list[Store], break_store: str | None
) -> dict[str, Transformed]:
    """Open ``run_id``'s ledger rows and make each store's ready database; ``break_store``'s is
    overwritten with bytes DuckDB cannot attach."""
    target.open_run(run_id, [s.id for s in stores], "arrow")
    work = tmp_path / run_id
    work.mkdir()
    ready = {s.id: ready_database(work, s, ROWS, run_id, seed=i) for i, s in enumerate(stores)}
    if break_store:
        ready[break_store].path.write_bytes(b"not a database" * 100)
    return ready


def session(
    target: Publisher,
    run_id: str,
    stores: list[Store],
    ready: dict[str, Transformed],
    vet: Callable[[LedgerEntry, int], LedgerEntry] | None = None,
) -> dict[str, str]:
    """Publish ``stores`` in one session, as a run does; each store's state or error type."""
    outcomes: dict[str, str] = {}
    with target.publishing():
        for store in stores:
            made = ready[store.id]
            try:
                recorded = target.publish(store.id, made.path, entry(run_id, made, store), vet)
                outcomes[store.id] = recorded.state
            except (duckdb.Error, SnapshotHeldBack) as exc:
                outcomes[store.id] = type(exc).__name__
    return outcomes


def publish_run(
    target: Publisher,
    tmp_path: Path,
    run_id: str,
    stores: list[Store],
    vet: Callable[[LedgerEntry, int], LedgerEntry] | None = None,
    break_store: str | None = None,
) -> dict[str, str]:
    """Publish ``stores`` for ``run_id`` in one session; each store's outcome (or error type)."""
    ready = prepare(target, tmp_path, run_id, stores, break_store)
    return session(target, run_id, stores, ready, vet)


def counting_openings(target: Publisher, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When the target opened the file (read-write), each time."""
    opened: list[float] = []
    connect = target._connect

    def counted(interruptible: bool, step: str, store: str | None) -> duckdb.DuckDBPyConnection:
        opened.append(time.monotonic())
        return connect(interruptible, step, store)

    monkeypatch.setattr(target, "_connect", counted)
    return opened


def served(db: Path) -> dict[str, tuple[int, int, str]]:
    """Per store: rows, distinct batch_ids, and the batch_id served."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT ubicacion_id, count(*), count(DISTINCT batch_id), min(batch_id) "
            "FROM inventario_raw GROUP BY 1"
        ).fetchall()
    return {str(r[0]): (int(r[1]), int(r[2]), str(r[3])) for r in rows}


def ledger(db: Path, run_id: str) -> dict[str, tuple[str, int | None]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT ubicacion_id, estado, registros_cargados FROM etl_ejecuciones WHERE run_id = ?",
            [run_id],
        ).fetchall()
    return {str(r[0]): (str(r[1]), r[2]) for r in rows}


def test_stores_ready_together_share_one_opening_and_each_gets_its_own_swap_and_ledger_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "target.duckdb"
    target = Publisher(db, lock_wait_seconds=10)
    assert set(publish_run(target, tmp_path, "run-a", STORES).values()) == {"exitoso"}
    opened = counting_openings(target, monkeypatch)
    monkeypatch.setattr(publish, "MAX_HOLD_SECONDS", 60.0)

    outcomes = publish_run(target, tmp_path, "run-b", STORES)

    assert outcomes == {s.id: "exitoso" for s in STORES}
    # open_run's transaction, then the four stores in a single opening
    assert len(opened) == 2
    now_served = served(db)
    published = ledger(db, "run-b")
    for store in STORES:
        rows, batches, batch = now_served[store.id]
        assert (batches, batch) == (1, "run-b")  # the whole new snapshot, nothing of run-a
        assert published[store.id] == ("exitoso", rows)
    assert sum(rows for rows, _, _ in now_served.values()) > len(STORES) * ROWS * 0.5


@pytest.mark.parametrize("fault", ["unreadable ready database", "snapshot held back"])
def test_a_store_failing_inside_a_session_keeps_its_snapshot_and_the_others_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    db = tmp_path / "target.duckdb"
    target = Publisher(db, lock_wait_seconds=10)
    publish_run(target, tmp_path, "run-a", STORES)
    before = served(db)
    bad = STORES[1].id
    opened = counting_openings(target, monkeypatch)
    monkeypatch.setattr(publish, "MAX_HOLD_SECONDS", 60.0)

    def hold_back(written: LedgerEntry, rows: int) -> LedgerEntry:
        if written.store_id == bad:
            raise SnapshotHeldBack(f"{bad}: held back by the test")
        return written

    if fault == "snapshot held back":
        outcomes = publish_run(target, tmp_path, "run-b", STORES, vet=hold_back)
    else:
        outcomes = publish_run(target, tmp_path, "run-b", STORES, break_store=bad)

    assert outcomes[bad] != "exitoso"
    assert all(outcomes[s.id] == "exitoso" for s in STORES if s.id != bad)
    after = served(db)
    assert after[bad] == before[bad]  # rolled back: the previous snapshot, whole
    assert all(after[s.id][1:] == (1, "run-b") for s in STORES if s.id != bad)
    assert ledger(db, "run-b")[bad][0] == "en_proceso"  # the run records the failure itself
    if fault == "snapshot held back":  # judged before any of its rows changed: nothing to undo
        assert len(opened) == 2
    else:  # the failed store ended its opening; the store after it opened the file again
        assert len(opened) == 3


@pytest.mark.parametrize("fault", [None, "unreadable ready database", "snapshot held back"])
def test_a_batch_commits_its_stores_together_and_a_failing_store_alone_keeps_its_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str | None
) -> None:
    """The stores ready together go in one transaction: every swap with its ledger row, all
    visible at one commit. A store whose copy fails rolls that transaction back; the others are
    published again, each alone, and only the failing store keeps its previous snapshot."""
    db = tmp_path / "target.duckdb"
    target = Publisher(db, lock_wait_seconds=10)
    publish_run(target, tmp_path, "run-a", STORES)
    before = served(db)
    bad = STORES[2].id
    monkeypatch.setattr(publish, "MAX_HOLD_SECONDS", 60.0)

    def hold_back(written: LedgerEntry, rows: int) -> LedgerEntry:
        if written.store_id == bad and fault == "snapshot held back":
            raise SnapshotHeldBack(f"{bad}: held back by the test")
        return written

    ready = prepare(
        target, tmp_path, "run-b", STORES, bad if fault == "unreadable ready database" else None
    )
    batch = [
        Publication(s.id, ready[s.id].path, entry("run-b", ready[s.id], s), hold_back)
        for s in STORES
    ]
    opened = counting_openings(target, monkeypatch)
    with target.publishing():
        outcomes = dict(zip([s.id for s in STORES], target.publish_batch(batch), strict=True))

    good = [s.id for s in STORES if fault is None or s.id != bad]
    after, published = served(db), ledger(db, "run-b")
    finished = set()
    for store in good:
        recorded = outcomes[store]
        assert isinstance(recorded, LedgerEntry) and recorded.state == "exitoso"
        assert after[store][1:] == (1, "run-b")
        assert published[store] == ("exitoso", after[store][0])
        finished.add(recorded.finished)
    if fault is None:
        assert len(opened) == 1 and len(finished) == 1  # one opening, one commit
        return
    assert after[bad] == before[bad]  # its previous snapshot, whole
    assert published[bad][0] == "en_proceso"  # the run records the failure itself
    if fault == "snapshot held back":
        assert isinstance(outcomes[bad], SnapshotHeldBack)
        assert len(opened) == 1 and len(finished) == 1
    else:
        assert isinstance(outcomes[bad], duckdb.Error)
        # the first two were rolled back with it and published again, each alone
        assert len(finished) == len(good)


READER = """
import duckdb, json, sys, time
path, stop, out = sys.argv[1:4]
waits, opens, first = [], 0, None
while True:
    asked = time.monotonic()
    while True:
        try:
            duckdb.connect(path, read_only=True).close()
            break
        except duckdb.IOException:
            time.sleep(0.005)
    waits.append(time.monotonic() - asked)
    opens += 1
    if first is None:
        print("reading", flush=True)
        first = asked
    try:
        open(stop).close()
        break
    except FileNotFoundError:
        time.sleep(0.01)
json.dump({"waits": waits, "opens": opens}, open(out, "w"))
"""


def test_a_reader_waiting_during_a_long_batch_gets_the_file_within_the_hold_bound(
    tmp_path: Path,
) -> None:
    """Twelve stores whose publishes take 0.25 s each (a slow guard) make a 3 s batch; a reader
    polling the file meanwhile must never wait much longer than MAX_HOLD_SECONDS plus one
    store, where one opening for the whole batch would keep it out for 3 s."""
    db = tmp_path / "target.duckdb"
    target = Publisher(db, lock_wait_seconds=30)
    stores = [demo_store(i) for i in range(1, 13)]
    publish_run(target, tmp_path, "run-a", stores)
    slow_store = 0.25

    def slow(written: LedgerEntry, rows: int) -> LedgerEntry:
        time.sleep(slow_store)
        return written

    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db), str(stop), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
        ready = prepare(target, tmp_path, "run-b", stores, None)
        started = time.monotonic()
        outcomes = session(target, "run-b", stores, ready, vet=slow)
        batch = time.monotonic() - started
        stop.touch()
        assert reader.wait(timeout=60) == 0
    finally:
        reader.kill()
        reader.wait()
    figures = json.loads(out.read_text())
    assert set(outcomes.values()) == {"exitoso"}
    assert batch > 12 * slow_store
    bound = publish.MAX_HOLD_SECONDS + slow_store + 1.0  # + one store, a checkpoint, the load
    assert max(figures["waits"]) < bound, figures["waits"]
    assert max(figures["waits"]) < batch / 2
    assert figures["opens"] > 5  # the reader got in between the batch's openings, repeatedly


def every_store(name: str, stores: Sequence[PgStore]) -> Callable[[dict[str, Any]], bool]:
    """Matcher true at the line that completes ``name`` for every one of ``stores``, in any
    order."""
    seen: set[str] = set()

    def matches(line: dict[str, Any]) -> bool:
        if line.get("event") == name:
            seen.add(str(line.get("store")))
        return seen >= {store.id for store in stores}

    return matches


@pytest.mark.postgres
def test_a_run_publishes_the_stores_ready_together_in_one_opening_of_the_file(
    etl_env: dict[str, str], pg_server: PgServer, pg_stores: Sequence[PgStore]
) -> None:
    """The backend holds the file while all three stores finish their fetch: once it lets go,
    the run publishes them together (one opening of the file), one ledger row each."""
    db = Path(etl_env["DATABASE_PATH"])
    with ExitStack() as holding:
        with ExitStack() as busy_servers:
            for store in pg_stores:
                busy_servers.enter_context(table_locked(pg_server, store.database))
            run = BackgroundRun(["run"], {**etl_env, "ETL_LOCK_WAIT_SECONDS": "120"})
            run.wait_for(every_store("extract started", pg_stores))
            holding.enter_context(duckdb_held(db))
        # the servers answer now: every store gets ready while the file is held
        run.wait_for(every_store("transformed", pg_stores))
    code, _, stderr = run.finish(timeout=120)
    assert code == 0, run.text[-3000:] + stderr
    releases = [line["stores"] for line in run.lines if line.get("event") == "target released"]
    # one opening; two if a loaded machine stretched the first store past MAX_HOLD_SECONDS
    assert sum(releases) == len(pg_stores) and len(releases) < len(pg_stores), releases
    rows = ledger_rows(db)
    assert {store.id: rows[store.id]["estado"] for store in pg_stores} == {
        store.id: "exitoso" for store in pg_stores
    }


@pytest.mark.postgres
def test_a_run_waits_a_moment_for_more_ready_stores_before_opening_the_file(
    etl_env: dict[str, str], pg_server: PgServer, pg_stores: Sequence[PgStore]
) -> None:
    """Once a store is ready the run gathers what becomes ready within the DuckDB target's
    window (GATHER_SECONDS) and publishes it in the same opening: the first store's source
    answers alone, the others a moment after it is ready. Published as they came, the first
    store had an opening (an open and a checkpoint) of its own."""
    db = Path(etl_env["DATABASE_PATH"])
    first, *others = pg_stores
    with ExitStack() as busy_others:
        for store in others:
            busy_others.enter_context(table_locked(pg_server, store.database))
        with table_locked(pg_server, first.database):
            run = BackgroundRun(["run"], etl_env)
            run.wait_for(every_store("extract started", pg_stores))
        run.wait_for(every_store("transformed", [first]))
    # the others' servers answer now, well within the window
    code, _, stderr = run.finish(timeout=120)
    assert code == 0, run.text[-3000:] + stderr
    releases = [line["stores"] for line in run.lines if line.get("event") == "target released"]
    assert releases == [len(pg_stores)], releases
    rows = ledger_rows(db)
    assert {store.id: rows[store.id]["estado"] for store in pg_stores} == {
        store.id: "exitoso" for store in pg_stores
    }


def test_a_batch_past_the_transaction_bound_commits_in_several_transactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction takes its stores in one statement per step, so how many it holds is chosen
    before it starts: one while the pace of a store is unknown, then what the hold has time
    for, at most TRANSACTION_STORES (and TRANSACTION_ROWS): a reader waits for one such
    transaction at most past the hold bound. Before, only the hold's clock cut a batch, and six
    quick stores went in one transaction whatever the bound."""
    monkeypatch.setattr(publish, "TRANSACTION_STORES", 4, raising=False)
    monkeypatch.setattr(publish, "MAX_HOLD_SECONDS", 60.0)
    stores = [demo_store(i) for i in range(1, 7)]
    db = tmp_path / "target.duckdb"
    target = Publisher(db, lock_wait_seconds=10)
    ready = prepare(target, tmp_path, "run-a", stores, None)
    batch = [Publication(s.id, ready[s.id].path, entry("run-a", ready[s.id], s)) for s in stores]
    opened = counting_openings(target, monkeypatch)
    with target.publishing():
        outcomes = target.publish_batch(batch)
    assert len(opened) == 1
    commits = [o.finished for o in outcomes if isinstance(o, LedgerEntry)]
    assert len(commits) == len(stores)
    # the first store alone (its pace unknown), then four, then the last one
    assert [commits.count(when) for when in sorted(set(commits))] == [1, 4, 1]
    assert {store: value[1:] for store, value in served(db).items()} == {
        s.id: (1, "run-a") for s in stores
    }
    assert {store: state for store, (state, _) in ledger(db, "run-a").items()} == {
        s.id: "exitoso" for s in stores
    }


def test_the_publishes_leave_a_reader_the_file_three_quarters_of_the_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishes that follow one another (a run whose stores are ready faster than the file
    takes them) re-open the file only three times as long after each opening as it held it: the
    writer's share stays within WRITER_SHARE. Before, every re-opening waited READER_GAP_SECONDS
    (0.1 s) whatever the hold, and a 5,000-store run held the file 64 % of its time."""
    monkeypatch.setattr(publish, "MAX_HOLD_SECONDS", 0.3)
    stores = [demo_store(i) for i in range(1, 7)]
    db = tmp_path / "target.duckdb"
    target = Publisher(db, lock_wait_seconds=30)
    ready = prepare(target, tmp_path, "run-a", stores, None)
    spans: list[list[float]] = []  # [opened, released] of each opening, after the gap
    connect, release = target._connect, target._release

    def opened(interruptible: bool, step: str, store: str | None) -> duckdb.DuckDBPyConnection:
        con = connect(interruptible, step, store)
        spans.append([time.monotonic()])
        return con

    def released() -> None:
        held = target._held is not None
        release()
        if held:
            spans[-1].append(time.monotonic())

    monkeypatch.setattr(target, "_connect", opened)
    monkeypatch.setattr(target, "_release", released)

    def slow(written: LedgerEntry, rows: int) -> LedgerEntry:
        time.sleep(0.2)  # a store's swap that takes long on a busy machine
        return written

    batch = [
        Publication(s.id, ready[s.id].path, entry("run-a", ready[s.id], s), slow) for s in stores
    ]
    with target.publishing():
        outcomes = target.publish_batch(batch)
    assert all(isinstance(o, LedgerEntry) for o in outcomes)
    assert len(spans) >= 3  # the batch took several openings, each one past the hold bound
    for (opening, closing), (reopening, _) in zip(spans, spans[1:], strict=False):
        held = closing - opening
        assert reopening - closing >= 3 * held - 0.01, spans  # the reader's three quarters
    # from the first opening to the last re-opening, the writer held the file a quarter of it
    holds = sum(closing - opening for opening, closing in spans[:-1])
    assert holds / (spans[-1][0] - spans[0][0]) <= WRITER_SHARE + 0.01, spans
