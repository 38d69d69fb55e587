"""The two targets on the same run: publish time, readers during a publish, dead rows over runs.

One store of ``--products`` products (500,000 by default) in the PostgreSQL stand-in, then, for
``--rounds`` rounds, alternating:

* ``fluxion -> DuckDB``: ``fluxion-etl run`` into a DuckDB file;
* ``fluxion -> PostgreSQL``: the same run with ``DATABASE_URL`` (a separate database on the
  same local server);
* ``dlt -> postgres``: dlt's ``sql_table(backend="pyarrow")`` into its ``postgres`` destination
  (``contenders.py dlt --postgres``; skipped when dlt is not installed: use benchmarks/.venv).

Each fluxion run is measured alone (the whole-run figure, as dlt runs), then again while a
reader (the backend) runs a per-store aggregate over the same store in a loop, as the backend
would on a page view, each query on a fresh connection (DuckDB: the file opened read-only,
retried while the writer holds it, as a per-request backend must; PostgreSQL: a new session).
Its latency's p50/p99 are printed next to the same loop with no run going.

How the PostgreSQL publish loads rows, and what becomes of the dead rows over many runs, are
measured on their own by benchmarks/pg_load.py.

    FLUXION_TEST_PG_HOST=... FLUXION_TEST_PG_PORT=... FLUXION_TEST_PG_USER=... \\
    FLUXION_TEST_PG_PASSWORD=... python benchmarks/targets.py --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg
from benchmark import (
    HERE,
    INVENTORY_VIEW,
    base_env,
    measure,
    server_from_env,
    stores_in_postgres,
    write_stores_file,
)

from fluxion_etl.demo.stellar import CHAIN_LOCATIONS
from fluxion_harness.postgres_source import (
    PgServer,
    create_database,
    drop_database,
    new_database_name,
)

#: What the reader asks: the backend's per-store summary (rows, stock value, low stock).
READER_SQL = (
    "SELECT count(*), sum(valor_inventario_actual), "
    "sum(CASE WHEN estado_stock IN ('CRITICO', 'BAJO') THEN 1 ELSE 0 END) "
    "FROM inventario_raw WHERE ubicacion_id = {store}"
)


@dataclass
class Latencies:
    seconds: list[float]

    def pct(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    def line(self) -> str:
        return f"p50 {self.pct(0.50):8.1f} ms  p99 {self.pct(0.99):8.1f} ms  n={len(self.seconds)}"


def duckdb_query(path: Path, store: str) -> Callable[[], None]:
    def query() -> None:
        while True:  # the writer holds the file: a per-request backend retries
            try:
                con = duckdb.connect(str(path), read_only=True)
                break
            except duckdb.IOException:
                time.sleep(0.01)
        try:
            con.execute(READER_SQL.format(store="?"), [store]).fetchall()
        finally:
            con.close()

    return query


def postgres_query(server: PgServer, database: str, store: str) -> Callable[[], None]:
    def query() -> None:
        with psycopg.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            dbname=database,
        ) as con:
            con.execute(READER_SQL.format(store="%s"), [store]).fetchall()

    return query


@contextmanager
def reader(query: Callable[[], None]) -> Iterator[Latencies]:
    """``query`` in a loop on a thread for as long as the block runs."""
    found = Latencies([])
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                query()
            except Exception:  # noqa: BLE001 - a table not there yet: not a latency
                time.sleep(0.05)
                continue
            found.seconds.append(time.perf_counter() - started)
            time.sleep(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        stop.set()
        thread.join()


def idle_latency(query: Callable[[], None], seconds: float = 10.0) -> Latencies:
    with reader(query) as found:
        time.sleep(seconds)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    server = server_from_env()
    target_db = new_database_name("fluxion_bench_target_")
    dlt_db = new_database_name("fluxion_bench_dlt_")
    create_database(server, target_db)
    create_database(server, dlt_db)
    location = CHAIN_LOCATIONS[1]
    try:
        with (
            stores_in_postgres(server, [location], args.products) as (store,),
            tempfile.TemporaryDirectory(prefix="fluxion-bench-targets-") as tmp,
        ):
            work = Path(tmp)
            env = base_env(server, write_stores_file(work / "stores.toml", [store], server.host,
                                                     server.port), work)  # fmt: skip
            env.pop("DATABASE_URL", None)
            duck = work / "target.duckdb"
            pg_env = {
                **{k: v for k, v in env.items() if k != "DATABASE_PATH"},
                "DATABASE_URL": f"postgresql://{server.user}@{server.host}:{server.port}/"
                f"{target_db}?sslmode=disable",
                "PGPASSWORD": server.password,
            }
            dlt_env = {
                **env,
                "DESTINATION__POSTGRES__CREDENTIALS": f"postgresql://{server.user}:"
                f"{server.password}@{server.host}:{server.port}/{dlt_db}",
            }
            print(f"store: {store.published_rows:,} rows published of {store.source_rows:,}")
            run = [sys.executable, "-m", "fluxion_etl", "run"]
            # a first run of each target, so the reader has a snapshot to read
            measure(run, {**env, "DATABASE_PATH": str(duck)}, "warm-up DuckDB")
            measure(run, pg_env, "warm-up PostgreSQL")
            queries = {
                "DuckDB": duckdb_query(duck, location.id),
                "PostgreSQL": postgres_query(server, target_db, location.id),
            }
            idle = {name: idle_latency(query) for name, query in queries.items()}
            results: dict[str, list[float]] = {}
            publish: dict[str, list[float]] = {}
            during: dict[str, Latencies] = {name: Latencies([]) for name in queries}
            vacuums: list[float] = []
            for number in range(1, args.rounds + 1):
                for name, run_env in (("DuckDB", {**env, "DATABASE_PATH": str(duck)}),
                                      ("PostgreSQL", pg_env)):  # fmt: skip
                    # alone, as dlt runs: the whole-run figure (the reader's queries would
                    # take the server's cores from the fetch and the COPY, on this one machine)
                    m = measure(run, run_env, f"fluxion -> {name}")
                    results.setdefault(f"fluxion -> {name}", []).append(m.seconds)
                    with reader(queries[name]) as found:
                        loaded = measure(run, run_env, f"fluxion -> {name} + reader")
                    during[name].seconds.extend(found.seconds)
                    results.setdefault(f"fluxion -> {name} + reader", []).append(loaded.seconds)
                    publish.setdefault(name, []).append(m.phases.get("publish (lock held)", 0))
                    seconds = publish[name][-1]
                    vacuum = m.phases.get("vacuum (PostgreSQL: nobody waits)")
                    if vacuum is not None:
                        vacuums.append(vacuum)
                    print(f"  round {number} fluxion -> {name}: {m.seconds:.2f} s, publish "
                          f"{seconds:.2f} s"
                          + (f", vacuum {vacuum:.2f} s" if vacuum is not None else "")
                          + f", {m.rows_out:,} rows", flush=True)  # fmt: skip
                unused = str(work / "unused.duckdb")
                dlt_cmd = [sys.executable, str(HERE / "contenders.py"), "dlt", "--view",
                           INVENTORY_VIEW, "--db", unused, "--postgres"]  # fmt: skip
                try:
                    m = measure(dlt_cmd, dlt_env, "dlt -> postgres")
                except (Exception, SystemExit) as exc:  # noqa: BLE001 - dlt missing: say so
                    print(f"  dlt -> postgres: not measured ({type(exc).__name__}: {exc})")
                else:
                    results.setdefault("dlt -> postgres", []).append(m.seconds)
                    print(f"  round {number} dlt -> postgres: {m.seconds:.2f} s, "
                          f"{m.rows_out:,} rows", flush=True)  # fmt: skip
            print("\nwhole run, median seconds:")
            for label, values in results.items():
                print(f"  {label:<33} {statistics.median(values):8.2f} s")
            print("publish (one store's transaction), median seconds:")
            for name, values in publish.items():
                print(f"  {name:<33} {statistics.median(values):8.2f} s")
            if vacuums:
                print(f"  {'PostgreSQL vacuum after':<33} {statistics.median(vacuums):8.2f} s")
            print("reader (per-store summary, fresh connection per query):")
            for name in queries:
                print(f"  {name:<10} idle:          {idle[name].line()}")
                print(f"  {name:<10} during a run:  {during[name].line()}")
    finally:
        drop_database(server, target_db)
        drop_database(server, dlt_db)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    main()
