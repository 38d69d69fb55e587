"""Peak memory of one store's fetch process, by driver and store size (issue 25's first goal).

    source scripts/postgres-login.sh fluxion_bench CREATEDB     # for --drivers postgres
    PYTHONPATH=src:tools python benchmarks/fetch_memory.py [--products 100000,500000,2000000]
        [--drivers sqlite,postgres] [--engine arrow]

For each size it generates one Stellar store (``fluxion_etl.demo.stellar``, traps included),
writes it as a SQLite file and/or a PostgreSQL database on the ``FLUXION_TEST_PG_*`` server,
then runs, in a fresh child process, what a fetch process does: fluxion's connection string for
that driver family, the engine's bounded batches, staged and cleaned by ``stage_batches``. The
fetch runs in a process forked from that child (which has imported what the run's fork server
imports); the figures are its peak RSS (``VmHWM``), its peak private memory (USS, sampled every
50 ms: what the budget plans per fetch, the libraries' pages being the fork server's), and the
rows it staged.
Not ``ru_maxrss``: Linux carries it over a fork and an exec, so a child of this parent, which
holds the generated store, reported the parent's size (~1.8 KB per product, the same for every
driver) instead of its own.
A fetch whose memory does not depend on the store's size shows the same peak at every size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials
from fluxion_etl.demo.sqlite_source import write_sqlite
from fluxion_etl.demo.stellar import generate_store
from fluxion_etl.run.stage import stage_batches
from fluxion_etl.source.connection import connection_for
from fluxion_etl.source.engines import get_engine
from fluxion_etl.source.engines.base import FetchRequest
from fluxion_etl.source.query import load_query
from fluxion_etl.stores import Store
from fluxion_harness.postgres_source import (
    PgServer,
    create_store_database,
    drop_database,
    new_database_name,
)
from fluxion_harness.soak import pg_server_from_env

WAREHOUSE = "0202"
DRIVERS = {"sqlite": "SQLite3", "postgres": "PostgreSQL Unicode"}


def child(spec: dict[str, str]) -> None:
    """One fetch, as the fetch process runs it; prints the rows staged as JSON."""
    settings = Settings.from_env({"ETL_ENGINE": spec["engine"]})
    store = Store(
        "tienda_02", "BENCH", "tienda", spec["host"], int(spec["port"]), spec["database"],
        WAREHOUSE, driver=spec["driver"],
    )  # fmt: skip
    credentials = Credentials(spec["user"], spec["password"]) if spec["user"] else None
    request = FetchRequest(
        where=store.label,
        connection=connection_for(store, settings, credentials),
        credentials=credentials,
        query=load_query(None),
        warehouse=WAREHOUSE,
        batch_size=settings.batch_size,
        batch_bytes=settings.batch_bytes,
        connect_timeout_seconds=settings.connect_timeout_seconds,
    )
    # The fetch runs in a process forked from this one, which has imported what the run's fork
    # server imports: its private memory (USS) is what the budget must plan per fetch.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        staged = stage_batches(
            get_engine(spec["engine"]).batches(request), Path(spec["staged"]), store.label
        )
        report = {"rows": staged.rows, "peak_mib": peak_kib() / 1024}
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    private_kib = 0
    while not os.waitpid(pid, os.WNOHANG)[0]:
        private_kib = max(private_kib, private_kib_of(pid))
        time.sleep(0.05)
    with os.fdopen(read_end) as reader:
        report = json.loads(reader.read() or "{}")
    if not report:
        raise SystemExit("the fetch process failed")
    print(json.dumps({**report, "private_mib": private_kib / 1024}))


def peak_kib(pid: int | str = "self") -> int:
    """A process's peak resident set since its exec (``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit(f"no VmHWM in /proc/{pid}/status")


def private_kib_of(pid: int) -> int:
    """A process's private memory now (USS: pages no other process maps), in KiB; 0 once gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0
    fields = ("Private_Clean:", "Private_Dirty:")
    return sum(int(line.split()[1]) for line in lines if line.startswith(fields))


def measure(spec: dict[str, str]) -> tuple[int, float, float, float]:
    """(rows staged, the fetch's peak RSS MiB, its peak private MiB, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"fetch failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.splitlines()[-1])
    return int(report["rows"]), float(report["peak_mib"]), float(report["private_mib"]), seconds


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", default="100000,500000,2000000")
    parser.add_argument("--drivers", default="sqlite,postgres")
    parser.add_argument("--engine", default="arrow", choices=("arrow", "pyodbc"))
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.products.split(","))
    drivers = [d for d in args.drivers.split(",") if d]
    server: PgServer | None = pg_server_from_env() if "postgres" in drivers else None
    print(f"engine {args.engine}; one child process per fetch")
    print(
        f"{'driver':<10} {'products':>10} {'rows':>10} {'peak MiB':>9} {'private':>8} "
        f"{'seconds':>8}"
    )
    with tempfile.TemporaryDirectory(prefix="fluxion-fetch-memory-") as tmp:
        for products in sizes:
            store = generate_store(WAREHOUSE, products, seed=1)
            for driver in drivers:
                spec = {
                    "engine": args.engine, "driver": DRIVERS[driver], "host": "", "port": "1",
                    "user": "", "password": "", "staged": f"{tmp}/{driver}-{products}.parquet",
                }  # fmt: skip
                database = None
                if driver == "sqlite":
                    path = Path(tmp) / f"store-{products}.sqlite"
                    write_sqlite(store, path)
                    spec["database"] = str(path)
                else:
                    assert server is not None
                    database = new_database_name("fluxion_mem_")
                    create_store_database(server, database, store)
                    spec |= {
                        "host": server.host, "port": str(server.port), "database": database,
                        "user": server.user, "password": server.password,
                    }  # fmt: skip
                try:
                    rows, peak, private, seconds = measure(spec)
                finally:
                    if database is not None and server is not None:
                        drop_database(server, database)
                print(
                    f"{driver:<10} {products:>10,} {rows:>10,} {peak:>9.0f} {private:>8.0f} "
                    f"{seconds:>8.1f}"
                )
            del store


if __name__ == "__main__":
    main()
