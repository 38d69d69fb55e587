"""What the snapshot guard adds to the DuckDB write lock: the served-rows counts.

The guard counts the rows a store serves inside the publish transaction (so the count cannot
race the swap), and counts every store's rows once when the run opens. Both happen while the
ETL holds the target's write lock, which the web backend waits for, so this script measures
them against the publish's own work (delete the store's rows, insert its new snapshot) on a
target of ``--stores`` x ``--rows`` synthetic rows, the real schema (``schema.migrate``) and the
real :class:`fluxion_etl.targets.duckdb.publisher.Publisher`.

    PYTHONPATH=src python benchmarks/guard_cost.py --stores 20 --rows 50000 --rounds 7

Prints medians in milliseconds. No database server needed; the file lives in a temp dir.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from fluxion_etl.targets.duckdb import schema
from fluxion_etl.targets.duckdb.publisher import PUBLISH_MEMORY_LIMIT, Publisher

FILL = """
INSERT INTO inventario_raw (ubicacion_id, ubicacion_nombre, tipo_ubicacion, codigo_producto,
    cantidad_actual, estado_stock, fecha_extraccion, batch_id)
SELECT printf('tienda_%02d', s), 'TIENDA', 'tienda', printf('P%07d', r), (r % 500)::DECIMAL(18,3),
       'NORMAL', now()::TIMESTAMP, 'bench'
FROM range(?) t(s), range(?) u(r)
"""


def medians_ms(works: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median wall time of each work, the works interleaved round by round (no order bias)."""
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(rounds):
        for name, work in works.items():
            started = time.perf_counter()
            work()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--rows", type=int, default=50_000, help="rows per store")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "target.duckdb"
        with duckdb.connect(str(path)) as con:
            schema.migrate(con)
            con.execute(FILL, [args.stores, args.rows])
        target = Publisher(path, lock_wait_seconds=10)
        store = "tienda_00"

        def count_one(con: duckdb.DuckDBPyConnection) -> int:
            row = con.execute(
                "SELECT count(*) FROM inventario_raw WHERE ubicacion_id = ?", [store]
            ).fetchone()
            return int(row[0]) if row else 0

        def swap(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f"SET memory_limit = '{PUBLISH_MEMORY_LIMIT}'")
            con.execute(
                "CREATE TEMP TABLE snapshot AS SELECT * FROM inventario_raw WHERE ubicacion_id = ?",
                [store],
            )
            con.execute("DELETE FROM inventario_raw WHERE ubicacion_id = ?", [store])
            con.execute("INSERT INTO inventario_raw SELECT * FROM snapshot")
            con.execute("DROP TABLE snapshot")

        ms = medians_ms(
            {
                "empty": lambda: target.run(lambda con: None),
                "count": lambda: target.run(count_one),
                "all": target.served_rows,
                "swap": lambda: target.run(swap),
            },
            args.rounds,
        )
        empty, counted, all_stores, swapped = ms["empty"], ms["count"], ms["all"], ms["swap"]

    total = args.stores * args.rows
    print(f"target: {args.stores} stores x {args.rows:,} rows = {total:,} rows; "
          f"median of {args.rounds} transactions (ms, lock held)")  # fmt: skip
    print(f"  open + commit, nothing done          {empty:8.1f}")
    print(f"  + count one store's served rows      {counted:8.1f}  (guard, every publish)")
    print(f"  + count every store's rows           {all_stores:8.1f}  (guard, once per run)")
    print(f"  + swap one store (delete + insert)   {swapped:8.1f}  (the publish's own work)")
    print(f"  guard count / publish swap: {(counted - empty) / max(swapped - empty, 1e-9):.1%}")


if __name__ == "__main__":
    main()
