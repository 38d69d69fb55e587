"""What opening and closing the target DuckDB file cost against what the table holds.

Two measurements behind docs/performance.md's "Thousands of stores":

* ``rowgroups``: a file whose ``inventario_raw`` gets one small row group per opening (``--rows``
  rows, the writer's settings, no vacuum), measured at each count of ``--counts``: five openings
  each timed for the open (connect + settings), one store's count + delete + insert + commit,
  and the close (the checkpoint).
* ``ledger``: ``--stores`` ``en_proceso`` ledger rows (one run), then one opening per store that
  closes its row (the UPDATE a publish makes), with the writer's settings and a vacuuming
  close every ``--vacuum-every`` openings (0: never); the median of each part, five times.

    PYTHONPATH=src python benchmarks/opening_cost.py rowgroups --counts 10,100,400,1000
    PYTHONPATH=src python benchmarks/opening_cost.py ledger --stores 5000 --vacuum-every 16
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.targets.duckdb import schema
from fluxion_etl.targets.duckdb.publisher import VACUUM_SETTING
from fluxion_etl.targets.duckdb.storage import WRITER_SETTINGS


def insert_sql(columns: list[tuple[str, str]], store: str, rows: int) -> str:
    """An INSERT of ``rows`` generated rows of ``store`` into inventario_raw."""
    values = []
    for name, kind in columns:
        if name == "ubicacion_id":
            values.append(f"'{store}'")
        elif kind.startswith("VARCHAR"):
            values.append("'x' || i")
        elif kind.startswith("DECIMAL") or kind in ("INTEGER", "BIGINT", "DOUBLE"):
            values.append(f"CAST(i AS {kind})")
        elif kind == "BOOLEAN":
            values.append("true")
        elif kind.startswith("TIMESTAMP"):
            values.append("TIMESTAMP '2026-01-01'")
        else:
            values.append("NULL")
    return f"INSERT INTO inventario_raw SELECT {', '.join(values)} FROM range({rows}) t(i)"


def writer(db: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(db)
    con.execute(WRITER_SETTINGS)
    return con


def row_groups(db: str, counts: list[int], rows: int) -> None:
    with writer(db) as con:
        schema.migrate(con)
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = 'inventario_raw'"
        ).fetchall()
    made = 0
    for count in counts:
        while made < count:
            with writer(db) as con:
                con.execute(insert_sql(columns, f"s{made:05d}", rows))
            made += 1
        opens, publishes, closes = [], [], []
        for _ in range(5):
            started = time.perf_counter()
            con = writer(db)
            opened = time.perf_counter()
            con.execute("BEGIN")
            con.execute("SELECT count(*) FROM inventario_raw WHERE ubicacion_id = 's00003'")
            con.execute("DELETE FROM inventario_raw WHERE ubicacion_id = 's00003'")
            con.execute(insert_sql(columns, "s00003", rows))
            con.execute("COMMIT")
            published = time.perf_counter()
            con.close()
            opens.append(opened - started)
            publishes.append(published - opened)
            closes.append(time.perf_counter() - published)
        with duckdb.connect(db, read_only=True) as reader:
            found = reader.execute(
                "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('inventario_raw')"
            ).fetchone()
        print(
            f"stores {made:5d}  row groups {found[0] if found else 0:5d}  open"
            f" {statistics.median(opens) * 1000:6.1f} ms  publish"
            f" {statistics.median(publishes) * 1000:6.1f} ms  close"
            f" {statistics.median(closes) * 1000:6.1f} ms"
            f"  file {Path(db).stat().st_size / 1e6:.1f} MB",
            flush=True,
        )


def ledger(db: str, stores: int, vacuum_every: int) -> None:
    ids = [f"s{number:05d}" for number in range(stores)]
    with writer(db) as con:
        schema.migrate(con)
        schema.open_run(con, "r0", ids, "arrow")
    parts: list[tuple[float, float, float]] = []
    for number, store in enumerate(ids, start=1):
        started = time.perf_counter()
        con = writer(db)
        opened = time.perf_counter()
        con.execute("BEGIN")
        now = utcnow()
        schema.close_entry(con, LedgerEntry("r0", store, "exitoso", now, now, 1, "arrow", None))
        con.execute("COMMIT")
        updated = time.perf_counter()
        if vacuum_every and number % vacuum_every == 0:
            con.execute(VACUUM_SETTING)
        con.close()
        parts.append((opened - started, updated - opened, time.perf_counter() - updated))
        if number % max(stores // 5, 1) == 0:
            last = parts[-50:]
            median = [statistics.median(part[i] for part in last) * 1000 for i in range(3)]
            print(
                f"  store {number}: open {median[0]:.1f}  update {median[1]:.1f}  close"
                f" {median[2]:.1f} ms  file {Path(db).stat().st_size / 1e6:.1f} MB",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["rowgroups", "ledger"])
    parser.add_argument("--counts", default="10,100,400,1000")
    parser.add_argument("--rows", type=int, default=235)
    parser.add_argument("--stores", type=int, default=5000)
    parser.add_argument("--vacuum-every", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fluxion-opening-cost-") as tmp:
        db = str(Path(tmp) / "target.duckdb")
        if args.what == "rowgroups":
            row_groups(db, [int(count) for count in args.counts.split(",")], args.rows)
        else:
            ledger(db, args.stores, args.vacuum_every)


if __name__ == "__main__":
    main()
