"""Throughput and peak memory of `fluxion-etl run` over one large Stellar-shaped store.

Builds a store of N products in PostgreSQL (the tests' stand-in for SQL Server, reached through
the real psqlODBC driver), then runs the real CLI once per engine in a child process and reports
rows published, wall time, rows/s, the child's peak RSS (from wait4) and the DuckDB write-lock
hold time (from the run's EMF line). Not part of the test suite.

    FLUXION_TEST_PG_HOST=127.0.0.1 FLUXION_TEST_PG_PORT=5432 FLUXION_TEST_PG_USER=... \\
    FLUXION_TEST_PG_PASSWORD=... python benchmarks/pipeline_throughput.py --products 350000

(scripts/test.sh shows how those variables are set up; any CREATEDB login works.)
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

from fluxion_etl.demo.postgres_source import (
    PgServer,
    create_store_database,
    drop_database,
    new_database_name,
)
from fluxion_etl.demo.stellar import generate_store


def server_from_env() -> PgServer:
    try:
        return PgServer(
            host=os.environ["FLUXION_TEST_PG_HOST"],
            port=int(os.environ["FLUXION_TEST_PG_PORT"]),
            user=os.environ["FLUXION_TEST_PG_USER"],
            password=os.environ["FLUXION_TEST_PG_PASSWORD"],
        )
    except KeyError as missing:
        raise SystemExit(f"set {missing.args[0]} (see the module docstring)") from None


def run_once(engine: str, env: dict[str, str], db: Path) -> dict[str, float]:
    """One `fluxion-etl run` in a child process; its own peak RSS comes from wait4."""
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "fluxion_etl", "run", "--db", str(db)],
        env={**env, "ETL_ENGINE": engine},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{engine}: exit {child.returncode}\n{output[-2000:]}")
    emf = next(json.loads(line) for line in output.splitlines() if '"_aws"' in line)
    rows = emf["RowsPublished"]
    return {
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows / seconds,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "lock_held_seconds": emf["LockHeldSeconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=350_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--engines", default="arrow,pyodbc")
    args = parser.parse_args()
    server = server_from_env()

    started = time.perf_counter()
    store = generate_store("0202", args.products, seed=42)
    name = new_database_name("fluxion_bench_")
    create_store_database(server, name, store)
    print(
        f"built {name}: {args.products:,} products, {len(store.expected):,} rows to publish "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="fluxion-bench-") as work:
            stores_file = Path(work) / "stores.toml"
            stores_file.write_text(
                f'[[stores]]\nid = "tienda_02"\nname = "AV. BOLIVAR"\ntype = "tienda"\n'
                f'host = "{server.host}"\nport = {server.port}\ndatabase = "{name}"\n'
                f'warehouse = "0202"\ndriver = "PostgreSQL Unicode"\n',
                encoding="utf-8",
            )
            env = {
                **os.environ,
                "ETL_STORES_FILE": str(stores_file),
                "SQL_USER": server.user,
                "SQL_PASS": server.password,
                "ETL_STAGING_DIR": work,
            }
            print(
                f"{'engine':8} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'peak RSS MiB':>13} "
                f"{'lock s':>7}"
            )
            for _ in range(args.rounds):
                for engine in args.engines.split(","):
                    r = run_once(engine, env, Path(work) / f"{engine}.duckdb")
                    print(
                        f"{engine:8} {r['rows']:>9,.0f} {r['seconds']:>8.2f} "
                        f"{r['rows_per_second']:>9,.0f} {r['peak_rss_mib']:>13.0f} "
                        f"{r['lock_held_seconds']:>7.2f}",
                        flush=True,
                    )
    finally:
        drop_database(server, name)


if __name__ == "__main__":
    main()
