"""Where a DuckDB publish of many small stores spends its write lock: per statement, per checkpoint.

Makes ``--stores`` ready databases of ``--products`` generated products each (real staging and
transform, :mod:`fluxion_harness.ready`; kept in ``--work`` between invocations, so a second
invocation starts at once), then publishes them ``--rounds`` times into one target file (the
first round fills it, the next ones replace every store's snapshot), ``--batch`` stores per
publishing session as a run publishes the stores ready together. Prints, per round, the wall
time, the lock held per store, the sessions' closes (DuckDB's checkpoint) and the statements that
cost most. ``--vacuum-every`` sets how often a close vacuums (1: every checkpoint, as before;
a huge number: never). ``--setting`` appends a DuckDB setting to the writer's (an A/B of a
setting: run it once with and once without, alternating); ``--hold`` overrides
MAX_HOLD_SECONDS.

    PYTHONPATH=src:tools python benchmarks/publish_profile.py --stores 200 --products 3000
    PYTHONPATH=src:tools python benchmarks/publish_profile.py --setting "SET max_vacuum_tasks = 100"
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import structlog

from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.targets.base import Publication
from fluxion_etl.targets.duckdb import connect
from fluxion_etl.targets.duckdb import publisher as publish
from fluxion_harness.ready import demo_store, ready_database

EXECUTE = duckdb.DuckDBPyConnection.execute


def statement_key(sql: str) -> str:
    words = sql.split()
    verb = words[0].upper()
    return f"{verb} {words[1][:24]}" if verb in ("SELECT", "DELETE", "UPDATE", "INSERT") else verb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--products", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=8, help="stores per publishing session")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--setting", default="", help="appended to the writer's settings")
    parser.add_argument("--hold", type=float, default=publish.MAX_HOLD_SECONDS)
    parser.add_argument(
        "--vacuum-every", type=int, default=publish.VACUUM_EVERY_OPENINGS, help="openings"
    )
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "fluxion-publish-profile"
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("target.duckdb*"):
        old.unlink()
    settings = connect.WRITER_SETTINGS + (f"; {args.setting}" if args.setting else "")
    ids = [f"s{number:05d}" for number in range(args.stores)]
    started = time.perf_counter()
    ready = []
    for number, store_id in enumerate(ids):
        path = work / f"{store_id}.ready.duckdb"
        if not path.exists():
            store = replace(demo_store(number % 21 + 1), id=store_id)
            path = ready_database(work, store, args.products, "r", seed=number).path
        ready.append(path)
    print(f"{args.stores} ready databases in {time.perf_counter() - started:.1f} s; {settings}")

    times: dict[str, float] = {}
    closes: list[float] = []

    def timed(con: duckdb.DuckDBPyConnection, sql: str, *rest: Any, **named: Any) -> Any:
        began = time.perf_counter()
        try:
            return EXECUTE(con, sql, *rest, **named)
        finally:
            key = statement_key(sql)
            times[key] = times.get(key, 0.0) + time.perf_counter() - began

    release = publish.Publisher._release

    def timed_release(self: publish.Publisher) -> None:
        began = time.perf_counter()
        release(self)
        closes.append(time.perf_counter() - began)

    target = publish.Publisher(work / "target.duckdb", lock_wait_seconds=10)
    with (
        mock.patch.object(connect, "WRITER_SETTINGS", settings),
        mock.patch.object(publish, "MAX_HOLD_SECONDS", args.hold),
        mock.patch.object(publish, "VACUUM_EVERY_OPENINGS", args.vacuum_every),
        mock.patch.object(duckdb.DuckDBPyConnection, "execute", timed),
        mock.patch.object(publish.Publisher, "_release", timed_release),
    ):
        for number in range(args.rounds):
            run_id = f"run{number}"
            target.open_run(run_id, ids, "arrow")
            times.clear()
            closes.clear()
            held, began = target.lock_held_seconds, time.perf_counter()
            for first in range(0, args.stores, args.batch):
                now = utcnow()
                batch = [
                    Publication(ids[i], ready[i], LedgerEntry(run_id, ids[i], "exitoso", now, now,
                                                              1, "arrow"))
                    for i in range(first, min(args.stores, first + args.batch))
                ]  # fmt: skip
                with target.publishing():
                    target.publish_batch(batch)
            wall, lock = time.perf_counter() - began, target.lock_held_seconds - held
            quarter = max(1, len(closes) // 4)
            size = (work / "target.duckdb").stat().st_size / 2**20
            first_closes = 1000 * sum(closes[:quarter]) / quarter
            last_closes = 1000 * sum(closes[-quarter:]) / quarter
            print(
                f"round {number}: wall {wall:.1f} s, lock {lock:.1f} s = "
                f"{1000 * lock / args.stores:.1f} ms per store; {len(closes)} closes, "
                f"{sum(closes):.1f} s (first quarter {first_closes:.0f} ms each, last "
                f"{last_closes:.0f}); file {size:.0f} MiB"
            )
            for key, seconds in sorted(times.items(), key=lambda kv: -kv[1])[:6]:
                print(f"   {key:<32} {seconds:6.2f} s {1000 * seconds / args.stores:6.1f} ms/store")


if __name__ == "__main__":
    main()
