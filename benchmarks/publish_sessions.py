"""The publish alone: one opening of the DuckDB file per store, against one per batch of stores.

The fleet's stores are small (2,000-3,800 rows), so a publish that opens the target file, swaps
the store and closes it (DuckDB checkpoints on close) spends most of its lock on the opening and
the checkpoint. This script publishes ``--stores`` ready databases of ``--rows`` rows each (real
staging, transform and :class:`fluxion_etl.targets.duckdb.publisher.Publisher`; generated rows,
:mod:`fluxion_harness.ready`) into a target already serving them, three ways:

* ``per store``: every store in its own opening (what a run did before publishing sessions);
* ``sessions``: all of them ready together, inside :meth:`Publisher.publishing` (the file is let go
  every ``MAX_HOLD_SECONDS`` and re-opened after the reader gap), one transaction each (what a
  run did before batches);
* ``batch``: the same stores as one :meth:`Publisher.publish_batch` in a session, one transaction
  for as many as the hold bound allows (what a run does);
* ``one opening``: a session of one transaction each without the hold bound (not what a run
  does).

    PYTHONPATH=src python benchmarks/publish_sessions.py --stores 21 --rows 2700 --rounds 5

Prints, per way, the median wall time (with the reader gap before each re-opening, as in a
run), the lock held, the openings and the CPU seconds of this process. No database server
needed; the files live in a temp dir.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.run.transform import Transformed
from fluxion_etl.targets.base import Publication
from fluxion_etl.targets.duckdb import publisher as publish
from fluxion_etl.targets.duckdb.connect import READER_GAP_SECONDS
from fluxion_etl.targets.duckdb.publisher import Publisher
from fluxion_harness.ready import demo_store, ready_database

RUN_ID = "bench"


def entry(store_id: str) -> LedgerEntry:
    now = utcnow()
    return LedgerEntry(RUN_ID, store_id, "exitoso", now, now, 1, "arrow")


@contextlib.contextmanager
def session(target: Publisher, way: str) -> Iterator[None]:
    """No session (``per store``), a real one, or one that never lets go of the file early."""
    if way == "per store":
        yield
        return
    with contextlib.ExitStack() as stack:
        if way == "one opening":
            stack.enter_context(mock.patch.object(publish, "MAX_HOLD_SECONDS", float("inf")))
        stack.enter_context(target.publishing())
        yield


def publish_all(
    target: Publisher, ready: list[Transformed], way: str
) -> tuple[float, float, int, float]:
    """Publish every store one ``way``: wall seconds, lock seconds, openings, CPU seconds."""
    openings = 0
    connect = target._connect

    def counted(*args: object) -> object:
        nonlocal openings
        openings += 1
        return connect(*args)  # type: ignore[arg-type]

    held_before = target.lock_held_seconds
    started, cpu = time.perf_counter(), time.process_time()
    stores = [(transformed.path.name.split(".")[0], transformed.path) for transformed in ready]
    with mock.patch.object(target, "_connect", counted), session(target, way):
        if way == "batch":
            target.publish_batch([Publication(s, path, entry(s)) for s, path in stores])
        else:
            for store_id, path in stores:
                target.publish(store_id, path, entry(store_id))
    seconds = time.perf_counter() - started
    return (
        seconds,
        target.lock_held_seconds - held_before,
        openings,
        time.process_time() - cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=21)
    parser.add_argument("--rows", type=int, default=2700, help="generated products per store")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    ways = ("per store", "sessions", "batch", "one opening")
    results: dict[str, list[tuple[float, float, int, float]]] = {way: [] for way in ways}
    with tempfile.TemporaryDirectory(prefix="fluxion-publish-") as tmp:
        work = Path(tmp)
        stores = [demo_store(i + 1) for i in range(args.stores)]
        target = Publisher(work / "target.duckdb", lock_wait_seconds=10)
        target.open_run(RUN_ID, [s.id for s in stores], "arrow")
        for _ in range(args.rounds + 1):  # the first round only fills the target
            for way in ways:
                ready = [
                    ready_database(work, store, args.rows, RUN_ID, seed=i)
                    for i, store in enumerate(stores)
                ]
                time.sleep(READER_GAP_SECONDS)  # no round waits for the last one's gap
                results[way].append(publish_all(target, ready, way))
        size = (work / "target.duckdb").stat().st_size
    print(
        f"{args.stores} stores x {args.rows:,} generated products, {args.rounds} rounds "
        f"(target file {size / 2**20:.1f} MiB); medians:"
    )
    print(f"  {'way':<12} {'seconds':>8} {'lock held':>10} {'openings':>9} {'CPU s':>6}")
    for way in ways:
        runs = results[way][1:]
        seconds, lock, openings, cpu = (statistics.median(r[i] for r in runs) for i in range(4))
        print(f"  {way:<12} {seconds:8.3f} {lock:10.3f} {openings:9.0f} {cpu:6.2f}")
    print(
        f"  seconds include the reader gap ({READER_GAP_SECONDS:g} s) before every"
        " re-opening, as in a run"
    )


if __name__ == "__main__":
    main()
