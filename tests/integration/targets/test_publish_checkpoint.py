"""What a publish's checkpoint writes, on real DuckDB files: the store's own rows, not the others'.

DuckDB checkpoints the file when a publish lets go of it. Its vacuum used to merge the row group
a store's delete touched with its neighbours, so every small store's publish rewrote the other
stores' rows too (the whole first row group, up to 122,880 rows): most of the write lock of a
run of thousands of small stores. The writer's checkpoints vacuum only every few openings; a row
group whose rows are all deleted is still dropped, so a file re-published store by store keeps
its size.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.targets.duckdb import publisher
from fluxion_etl.targets.duckdb.publisher import Publisher
from fluxion_harness.ready import demo_store, ready_database

#: ids of at most 8 characters: DuckDB keeps that much of a string's min/max in its statistics
STORES = [replace(demo_store(i), id=f"t{i}") for i in range(1, 7)]
ROWS = 300


def publish_each_alone(target: Publisher, tmp_path: Path, run_id: str, stores: list[str]) -> None:
    """``stores`` published for ``run_id``, each in its own opening of the file (a checkpoint
    after each), as a run publishes stores that become ready one at a time."""
    target.open_run(run_id, [s.id for s in STORES], "arrow")
    for index, store in enumerate(s for s in STORES if s.id in stores):
        work = tmp_path / f"{run_id}-{store.id}"
        work.mkdir()
        ready = ready_database(work, store, ROWS, run_id, seed=index)
        now = utcnow()
        entry = LedgerEntry(run_id, store.id, "exitoso", now, now, 1, "arrow", ready.counters)
        assert target.publish(store.id, ready.path, entry).state == "exitoso"


def segments_by_store(db: Path) -> dict[str, set[tuple[int, int]]]:
    """Per store: where (block, offset) the segments of ``ubicacion_id`` holding only its rows
    are stored in the file."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT stats, block_id, block_offset FROM pragma_storage_info('inventario_raw') "
            "WHERE column_name = 'ubicacion_id' AND segment_type = 'VARCHAR'"
        ).fetchall()
    found: dict[str, set[tuple[int, int]]] = {}
    for stats, block, offset in rows:
        if stats["min"] == stats["max"]:
            found.setdefault(str(stats["min"]), set()).add((int(block), int(offset)))
    return found


def test_a_publish_writes_its_own_rows_and_leaves_the_other_stores_rows_where_they_are(
    tmp_path: Path,
) -> None:
    db = tmp_path / "target.duckdb"
    target = Publisher(db, lock_wait_seconds=5)
    everyone = [s.id for s in STORES]
    publish_each_alone(target, tmp_path, "r1", everyone)
    before = segments_by_store(db)
    # each store's rows stayed in storage of their own (the vacuum merged them all into one)
    assert sorted(before) == sorted(everyone)
    size = db.stat().st_size

    publish_each_alone(target, tmp_path, "r2", [STORES[0].id])
    after = segments_by_store(db)
    for store in everyone[1:]:
        assert after[store] == before[store], f"{store}'s rows were rewritten"
    assert after[STORES[0].id] != before[STORES[0].id]

    for run in (3, 4):  # whole runs re-published store by store: the file does not grow
        publish_each_alone(target, tmp_path, f"r{run}", everyone)
    with duckdb.connect(str(db), read_only=True) as con:
        served = con.execute(
            "SELECT ubicacion_id, batch_id, count(*) FROM inventario_raw GROUP BY ALL"
        ).fetchall()
    # one snapshot per store, the last run's (batch_id is the run), nothing older left
    assert sorted((store, batch) for store, batch, _ in served) == [(s, "r4") for s in everyone]
    assert db.stat().st_size <= 1.5 * size


def test_every_few_openings_a_checkpoint_merges_the_small_row_groups_they_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without any vacuum each opening's stores stay a row group of their own, and every
    opening of the file reads all their metadata: a run of thousands of small stores slowed
    down store after store. Every VACUUM_EVERY_OPENINGS-th close merges them."""
    monkeypatch.setattr(publisher, "VACUUM_EVERY_OPENINGS", 4)
    db = tmp_path / "target.duckdb"
    target = Publisher(db, lock_wait_seconds=5)
    stores = [replace(demo_store(i), id=f"m{i}") for i in range(1, 13)]
    target.open_run("r1", [s.id for s in stores], "arrow")
    for index, store in enumerate(stores):
        ready = ready_database(tmp_path, store, 100, "r1", seed=index)
        now = utcnow()
        entry = LedgerEntry("r1", store.id, "exitoso", now, now, 1, "arrow", ready.counters)
        target.publish(store.id, ready.path, entry)  # one opening each
    with duckdb.connect(str(db), read_only=True) as con:
        row_groups, stored = con.execute(
            "SELECT count(DISTINCT row_group_id), (SELECT count(DISTINCT ubicacion_id) "
            "FROM inventario_raw) FROM pragma_storage_info('inventario_raw')"
        ).fetchone() or (0, 0)
    assert stored == len(stores)
    # 12 openings: one row group each, had nothing merged them. The first opening vacuums (see
    # the next test), then the 5th and the 9th: one merged row group and the 10th-12th's own.
    assert row_groups <= 1 + 3


def row_group_count(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('inventario_raw')"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_run_of_few_openings_merges_the_row_groups_the_runs_before_it_left(
    tmp_path: Path,
) -> None:
    """The cadence counts a run's openings; a run with fewer than VACUUM_EVERY_OPENINGS of them
    (the chain's fleet) never vacuumed, so the small row groups of run after run stayed, and a
    60-run soak's file peaked at 2.82x its smallest. Each run's first opening vacuums now."""
    db = tmp_path / "target.duckdb"
    everyone = [s.id for s in STORES]
    publish_each_alone(Publisher(db, lock_wait_seconds=5), tmp_path, "r1", everyone)
    filled = row_group_count(db)
    assert filled >= len(STORES) - 1  # one small row group per opening after the first

    # the next run: a single opening (the other stores down), far fewer than the cadence
    publish_each_alone(Publisher(db, lock_wait_seconds=5), tmp_path, "r2", [STORES[0].id])
    with duckdb.connect(str(db), read_only=True) as con:
        served = con.execute(
            "SELECT ubicacion_id, batch_id FROM inventario_raw GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert served == [(STORES[0].id, "r2")] + [(s, "r1") for s in everyone[1:]]
    assert row_group_count(db) == 1, f"{filled} row groups left unmerged"
