"""What the live view's "rows fetched so far" costs the fetch: prints figures, asserts nothing.

The fetch process stores its running row count in a shared 64-bit integer once per fetched batch
(run/fetch.py, run/stage.py). This measures the fetch-and-stage of one SQLite demo store
(the real SQLite3 ODBC driver, the arrow engine) with and without that update, alternating, and
the update's own cost per call.

    PYTHONPATH=src python benchmarks/fetch_progress.py [--products 60000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
import timeit
from functools import partial
from pathlib import Path

from fluxion_etl.config import Settings
from fluxion_etl.demo.runner import build_demo_stores
from fluxion_etl.run.stage import stage_batches
from fluxion_etl.source.engines import get_engine
from fluxion_etl.source.engines.base import FetchRequest
from fluxion_etl.source.query import load_query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shared = multiprocessing.get_context("forkserver").Value("q", 0, lock=False)
    with tempfile.TemporaryDirectory(prefix="fluxion-progress-") as scratch:
        directory = Path(scratch)
        (store,) = build_demo_stores(directory / "stores", 1, args.products)
        request = FetchRequest.for_store(store, Settings(), None, load_query(None))
        engine = get_engine("arrow")
        timings: dict[str, list[float]] = {"without": [], "with": []}
        batches = rows = 0
        for round_ in range(args.rounds):
            for variant in ("without", "with") if round_ % 2 == 0 else ("with", "without"):
                on_rows = partial(setattr, shared, "value") if variant == "with" else None
                path = directory / f"{variant}-{round_}.parquet"
                started = time.perf_counter()
                staged = stage_batches(engine.batches(request), path, store.label, on_rows)
                timings[variant].append(time.perf_counter() - started)
                batches, rows = staged.batches, staged.rows
                path.unlink()
        per_update = min(timeit.repeat(partial(setattr, shared, "value", 1), number=100_000,
                                       repeat=5)) / 100_000  # fmt: skip
    without, with_ = (statistics.median(timings[v]) for v in ("without", "with"))
    print(f"one SQLite demo store: {rows:,} rows in {batches} batches, {args.rounds} rounds")
    print(f"fetch + stage without the row count: median {without:.3f} s")
    print(f"fetch + stage with the row count:    median {with_:.3f} s ({with_ / without - 1:+.1%})")
    print(f"one update of the shared count: {per_update * 1e9:.0f} ns; "
          f"{batches} updates: {batches * per_update * 1e6:.1f} us per store")  # fmt: skip


if __name__ == "__main__":
    main()
