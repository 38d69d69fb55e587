"""Thousands of small stores in one run, on each target: wall, CPU, memory, lock share, readers.

Builds ``--distinct`` Stellar-shaped SQLite source databases (:mod:`fluxion_etl.demo.stellar`,
``--products`` products each, a different chain warehouse each) and a stores file of
``--stores`` stores pointing at them in turn (store ``s00001`` reads the first database, ...):
thousands of source files would take longer to build than the run, and the run does the same
work per store whichever file it reads (its own fetch process, staging, transform, publish).

Then, per target (a DuckDB file; a PostgreSQL database on the ``FLUXION_TEST_PG_*`` server in
the default layout), ``fluxion-etl run`` twice: the first fills the target (measured too), the
second is the steady state a scheduled run meets (every store replaces its snapshot). While each
run goes, a reader polls the backend's per-store summary (benchmarks/targets.py's query, a fresh
connection per query; on DuckDB retried every 10 ms while the writer holds the file, as a
per-request backend must) on a store in the middle of the list. Printed per run: wall, CPU and
peak PSS of the run's process tree (process_tree.py), the write lock held (the run's
``LockHeldSeconds``) and its share of the wall, DuckDB's openings of the file and the longest
hold (its ``target released`` lines), and the reader's p50/p99/max latency.

    PYTHONPATH=src:tools:benchmarks python benchmarks/many_stores.py --stores 5000
    # two builds alternated (make the base with git archive):
    PYTHONPATH=src:tools:benchmarks python benchmarks/many_stores.py --stores 300 \
        --targets duckdb --builds base=/tmp/base/src,new=src
    # PostgreSQL too: source scripts/postgres-login.sh <role> CREATEDB first
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from process_tree import ProcessTreeSampler
from targets import Latencies, duckdb_query, postgres_query, reader

from fluxion_etl.demo.runner import DEMO_DRIVER, stores_file_text
from fluxion_etl.demo.sqlite_source import write_sqlite
from fluxion_etl.demo.stellar import CHAIN_LOCATIONS, generate_store
from fluxion_etl.stores import Store


@dataclass(frozen=True)
class RunFigures:
    seconds: float
    cpu_seconds: float
    peak_mib: float
    rows: int
    published: int
    lock_seconds: float
    openings: int
    longest_hold: float
    plan: str
    readers: Latencies
    main_thread: tuple[float, float]
    """The run's main thread (the publishes): seconds on a core, and runnable but waiting."""

    def line(self) -> str:
        share = self.lock_seconds / self.seconds if self.seconds else 0.0
        longest = max(self.readers.seconds, default=0.0)
        opened = f", {self.openings} openings (longest {self.longest_hold:.2f} s)"
        return (
            f"wall {self.seconds:7.1f} s  CPU {self.cpu_seconds:7.1f} s  peak {self.peak_mib:6.0f}"
            f" MiB  {self.published} stores, {self.rows:,} rows  lock {self.lock_seconds:6.1f} s"
            f" = {share:5.1%}{opened if self.openings else ''}\n"
            f"      reader {self.readers.line()}  max {longest * 1000:.0f} ms  [{self.plan}]\n"
            f"      main thread (the publishes): on a core {self.main_thread[0]:.1f} s, waiting "
            f"for one {self.main_thread[1]:.1f} s"
        )


def build_sources(directory: Path, distinct: int, products: int) -> list[tuple[Path, str]]:
    """``distinct`` SQLite store databases: (path, warehouse code) each."""
    sources = []
    for location in CHAIN_LOCATIONS[:distinct]:
        path = directory / f"{location.id}.sqlite"
        write_sqlite(generate_store(location.warehouse, products, seed=7), path)
        sources.append((path, location.warehouse))
    return sources


def stores_for(sources: list[tuple[Path, str]], count: int) -> list[Store]:
    return [
        Store(
            id=f"s{number:05d}",
            name=f"Store {number}",
            type="tienda",
            host="",
            port=1,
            database=str(sources[number % len(sources)][0]),
            warehouse=sources[number % len(sources)][1],
            driver=DEMO_DRIVER,
        )
        for number in range(count)
    ]


def run_once(env: dict[str, str], readers: Latencies) -> RunFigures:
    """``fluxion-etl run`` in a child; its tree sampled, its JSON log read back."""
    command = [sys.executable, "-m", "fluxion_etl", "run"]
    with tempfile.TemporaryFile("w+") as errors:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert child.stdout is not None
        with ProcessTreeSampler(child.pid, interval=0.2, rescan=1.0) as tree:
            stdout = child.stdout.read()
            code = child.wait()
        seconds = time.perf_counter() - started
        if code not in (0, 3):
            errors.seek(0)
            raise SystemExit(f"run: exit {code}\n{stdout[-2000:]}\n{errors.read()[-2000:]}")
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    emf = next(line for line in lines if "_aws" in line)
    holds = [
        float(line["held_seconds"]) for line in lines if line.get("event") == "target released"
    ]
    first = next((line for line in lines if line.get("event") == "ETL started"), {})
    published = sum(1 for line in lines if line.get("event") == "store published")
    return RunFigures(
        seconds=seconds,
        cpu_seconds=tree.cpu_seconds,
        peak_mib=tree.peak_mib,
        rows=int(emf["RowsPublished"]),
        published=published,
        lock_seconds=float(emf["LockHeldSeconds"]),
        openings=len(holds),
        longest_hold=max(holds, default=0.0),
        plan=f"workers={first.get('workers')}, exit {code}",
        readers=readers,
        main_thread=tree.main_thread,
    )


def measured(
    envs: dict[str, dict[str, str]], queries: dict[str, Callable[[], None]], label: str, runs: int
) -> None:
    """``runs`` rounds, each running every build once in turn (fleet_ab.py's alternation), each
    build into its own target with its own reader."""
    for number in range(1, runs + 1):
        for build, env in envs.items():
            with reader(queries[build]) as found:
                figures = run_once(env, found)
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            print(f"  {label} {build} run {number}: {figures.line()}  load {load}", flush=True)


def pythonpath(src: str) -> dict[str, str]:
    """The child's PYTHONPATH with the build's source tree first (nothing for this checkout)."""
    if not src:
        return {}
    return {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=5000)
    parser.add_argument("--products", type=int, default=3000, help="per source database")
    parser.add_argument("--distinct", type=int, default=20, help="source databases built")
    parser.add_argument("--targets", default="duckdb,postgres")
    parser.add_argument("--runs", type=int, default=2, help="runs per target (the first fills)")
    parser.add_argument("--memory-mib", default="4096", help="ETL_MEMORY_MIB ('' for none)")
    parser.add_argument(
        "--builds",
        default="this=",
        help="name=src,...: fluxion's source trees, alternated round by round, each into its "
        "own target (an empty src is this checkout)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fluxion-many-stores-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        sources = build_sources(work, args.distinct, args.products)
        stores_file = work / "stores.toml"
        stores_file.write_text(stores_file_text(stores_for(sources, args.stores)), "utf-8")
        print(
            f"{args.stores} stores over {len(sources)} SQLite sources of {args.products} products"
            f" (built in {time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        (work / "staging").mkdir()
        env = {
            **os.environ,
            "ETL_STORES_FILE": str(stores_file),
            "ETL_STAGING_DIR": str(work / "staging"),
            "ETL_MEMORY_MIB": args.memory_mib,
            "SQL_USER": "demo",
            "SQL_PASS": "demo",
        }
        middle = f"s{args.stores // 2:05d}"
        builds = dict(build.split("=", 1) for build in args.builds.split(","))
        for target in args.targets.split(","):
            if target == "duckdb":
                paths = {name: work / f"target-{name}.duckdb" for name in builds}
                envs = {
                    name: {**env, "DATABASE_PATH": str(paths[name]), **pythonpath(src)}
                    for name, src in builds.items()
                }
                queries = {name: duckdb_query(path, middle) for name, path in paths.items()}
                measured(envs, queries, "DuckDB", args.runs)
            elif target == "postgres":
                postgres(env, middle, args.runs, builds)
            else:
                raise SystemExit(f"unknown target {target!r}")


def postgres(env: dict[str, str], middle: str, runs: int, builds: dict[str, str]) -> None:
    """The same runs into PostgreSQL: a database of the ``FLUXION_TEST_PG_*`` server per build."""
    from benchmark import server_from_env

    from fluxion_harness.postgres_source import create_database, drop_database, new_database_name

    server = server_from_env()
    databases = {name: new_database_name("fluxion_bench_many_") for name in builds}
    for database in databases.values():
        create_database(server, database)
    try:
        envs = {
            name: {
                **{key: value for key, value in env.items() if key != "DATABASE_PATH"},
                "DATABASE_URL": f"postgresql://{server.user}@{server.host}:{server.port}/"
                f"{databases[name]}?sslmode=disable",
                "PGPASSWORD": server.password,
                **pythonpath(src),
            }
            for name, src in builds.items()
        }
        queries = {
            name: postgres_query(server, database, middle) for name, database in databases.items()
        }
        measured(envs, queries, "PostgreSQL", runs)
    finally:
        for database in databases.values():
            drop_database(server, database)


if __name__ == "__main__":
    main()
