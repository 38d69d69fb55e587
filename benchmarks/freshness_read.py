"""What reading the snapshot ages back after a run costs: prints figures, asserts nothing.

After every run the CLI opens the target once more to read each store's last successful snapshot
from the ledger (fluxion_etl.freshness, for StoreSnapshotAgeSeconds and StoresStale). The ledger
grows by one row per store per run, so this measures that read on ledgers of one month to three
years of 6-hourly runs of the chain's 21 stores.

    PYTHONPATH=src python benchmarks/freshness_read.py [--stores 21] [--rounds 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from fluxion_etl.ledger import utcnow
from fluxion_etl.targets.duckdb.freshness import read_freshness
from fluxion_etl.targets.duckdb.schema import migrate


def build_ledger(path: Path, stores: list[str], runs: int) -> int:
    """A target whose ledger holds ``runs`` successful 6-hourly runs of ``stores``."""
    now = utcnow()
    rows = [
        (f"r{run}", "inventario", store, "exitoso",
         now - dt.timedelta(hours=6 * run + 1), now - dt.timedelta(hours=6 * run))
        for run in range(runs)
        for store in stores
    ]  # fmt: skip
    with duckdb.connect(str(path)) as con:
        migrate(con)
        con.executemany(
            "INSERT INTO etl_ejecuciones (run_id, etl_tipo, ubicacion_id, estado, fecha_inicio,"
            " fecha_fin) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=21)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    stores = [f"tienda_{i:02d}" for i in range(args.stores)]
    print(f"{'runs':>6} {'ledger rows':>12} {'median ms':>10} {'max ms':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for runs in (120, 1460, 4380):  # a month, a year, three years of rate(6 hours)
            path = Path(tmp) / f"ledger-{runs}.duckdb"
            rows = build_ledger(path, stores, runs)
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                read_freshness(path, stores, 43200)
                times.append((time.perf_counter() - started) * 1000)
            print(f"{runs:>6} {rows:>12} {statistics.median(times):>10.1f} {max(times):>8.1f}")


if __name__ == "__main__":
    main()
