"""The bulk store over TDS next to psqlODBC: the fetch floor and fluxion's run, by source.

The same generated store (seed 42, every trap on) is loaded once into PostgreSQL (read through
psqlODBC, as ``benchmark.py`` does) and once into the T-SQL server of the tests (Babelfish for
PostgreSQL, ``scripts/tsql-server.sh``, SQL Server's types: ``fluxion_harness.tsql_source``),
read through Microsoft's ODBC Driver 18 (production's driver) and FreeTDS (its fallback). For each
source, alternating source by source and tool by tool within each round:

* ``raw fetch`` -- fluxion's arrow-odbc engine reading the rows and dropping them (the floor);
* ``fluxion`` -- ``fluxion-etl run`` end to end (arrow engine) into a DuckDB file.

Both are ``benchmark.py``'s tools (one child process each, timed unwatched, then sampled for
memory). Prints, per source, the medians and fluxion's time over the floor's, with the load
average of each round. Called by ``benchmark.py --sources postgres,tsql,freetds`` or directly:

    source scripts/postgres-login.sh <role> CREATEDB
    eval "$(scripts/tsql-server.sh start)"
    PYTHONPATH=src:tools python benchmarks/tds_bulk.py --products 300000 --rounds 3

Not the 500,000 products of the other bulk figures: that store has three product codes that differ
from another only by trailing spaces (the generator's padded-code trap, e.g. ``'126977  '`` next
to ``'126977'``), which SQL Server compares as equal, so ``MA_PRODUCTOS``'s primary key refuses
them (Babelfish: "could not create unique index"). 300,000 products (seed 42) have none.

Loading into Babelfish goes through T-SQL ``INSERT ... VALUES`` batches (the tests' writer), much
slower than PostgreSQL's COPY: the build's seconds are printed. The databases are dropped at the
end.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmark import (
    TOOLS,
    BuiltStore,
    Row,
    base_env,
    server_from_env,
    stores_in_postgres,
    write_stores_file,
)

from fluxion_etl.demo.stellar import CHAIN_LOCATIONS, Location, generate_store
from fluxion_harness import tsql_source
from fluxion_harness.postgres_source import PgServer
from fluxion_harness.soak_tsql import TSQL_VARIABLES

#: source name -> (label in the report, the ODBC driver its stores-file entry names)
SOURCES: dict[str, tuple[str, str]] = {
    "postgres": ("PostgreSQL, psqlODBC", "PostgreSQL Unicode"),
    "tsql": ("Babelfish (TDS), ODBC Driver 18", "ODBC Driver 18 for SQL Server"),
    "freetds": ("Babelfish (TDS), FreeTDS", "FreeTDS"),
}
TOOL_NAMES = {"raw fetch": "raw fetch", "fluxion": "fluxion arrow"}


def tsql_server_from_env() -> tsql_source.TsqlServer:
    missing = [name for name in TSQL_VARIABLES if not os.environ.get(name)]
    if missing:
        raise SystemExit(f'set {", ".join(missing)}: eval "$(scripts/tsql-server.sh start)"')
    host, port, user, password = (os.environ[name] for name in TSQL_VARIABLES)
    return tsql_source.TsqlServer(host, int(port), user, password)


def _build_tsql(
    server: tsql_source.TsqlServer, name: str, location: Location, products: int
) -> int:
    """(In the builder process.) Generate and load one store into the T-SQL server; the rows a
    correct pipeline publishes."""
    data = generate_store(location.warehouse, products, seed=42)
    names, rows = data.tables["MA_PRODUCTOS"]
    code = names.index("c_Codigo")
    padded = Counter(str(row[code]).rstrip(" ") for row in rows)
    twins = sorted(c for c, n in padded.items() if n > 1)
    if twins:  # SQL Server compares with trailing spaces ignored: its primary key refuses them
        raise ValueError(
            f"{products:,} products: {len(twins)} product code(s) differ from another only by "
            f"trailing spaces (e.g. {twins[0]!r}), which a SQL Server primary key refuses; "
            f"pick another --products (300,000 has none)"
        )
    tsql_source.create_store_database(server, name, data)
    return len(data.expected)


@contextlib.contextmanager
def store_in_tsql(
    server: tsql_source.TsqlServer, location: Location, products: int, source_rows: int
) -> Iterator[BuiltStore]:
    """The store in its own T-SQL database (built in a spawned process, as benchmark.py builds
    its PostgreSQL stores, so the generator's memory stays out of every measured child)."""
    name = tsql_source.new_database_name("fluxion_bench_")
    spawn = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as builder:
            published = builder.submit(_build_tsql, server, name, location, products).result()
        yield BuiltStore(location, name, source_rows, published)
    finally:
        tsql_source.drop_database(server, name)


@dataclass(frozen=True)
class Source:
    key: str
    store: BuiltStore
    env: dict[str, str]
    work: Path


def _source_env(
    key: str, store: BuiltStore, pg: PgServer, tsql: tsql_source.TsqlServer | None, work: Path
) -> dict[str, str]:
    """The CLI's environment for ``store`` read through ``key``'s driver."""
    work.mkdir()
    stores = work / "stores.toml"
    if key == "postgres":
        write_stores_file(stores, [store], pg.host, pg.port)
        return base_env(pg, stores, work)
    assert tsql is not None
    write_stores_file(stores, [store], tsql.host, tsql.port)
    text = stores.read_text(encoding="utf-8")
    stores.write_text(
        text.replace('driver = "PostgreSQL Unicode"', f'driver = "{SOURCES[key][1]}"'),
        encoding="utf-8",
    )
    odbc = work / "odbc"
    odbc.mkdir()
    tsql_source.odbcinst_ini(odbc)  # Driver 18 (the wheel's) and FreeTDS, as the tests do
    login = PgServer(tsql.host, tsql.port, tsql.user, tsql.password)
    return {**base_env(login, stores, work), "ODBCSYSINI": str(odbc)}


def alternate_sources(
    sources: Sequence[Source], rounds: int
) -> tuple[dict[tuple[str, str], Row], list[str]]:
    """``rounds`` rounds; each runs every source's floor and fluxion in turn. Returns the rows
    by (source, tool) and the load average after each round."""
    rows = {(s.key, tool): Row(f"{s.key} {tool}") for s in sources for tool in TOOL_NAMES}
    loads = []
    for number in range(1, rounds + 1):
        for s in sources:
            for tool, name in TOOL_NAMES.items():
                m = TOOLS[name](s.env, s.work)
                rows[(s.key, tool)].runs.append(m)
                print(
                    f"  round {number}/{rounds} {SOURCES[s.key][0]:<34} {tool:<9} "
                    f"{m.seconds:7.2f} s {m.cpu_seconds:6.1f} CPU s {m.peak_memory_mib:6.0f} MiB"
                    f" {m.rows_out:>9,} rows",
                    flush=True,
                )
        loads.append(Path("/proc/loadavg").read_text(encoding="utf-8").split()[0])
        print(f"  round {number}: load {loads[-1]}", flush=True)
    return rows, loads


def report(
    sources: Sequence[Source], rows: dict[tuple[str, str], Row], rounds: int, loads: list[str]
) -> list[str]:
    lines = [
        f"Medians of {rounds} rounds (load after each round: {', '.join(loads)}).",
        "",
        "| source, driver | source rows | published | raw fetch (floor) | fluxion run | "
        "fluxion / floor | floor / fluxion | fluxion CPU s | fluxion peak tree |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sources:
        floor, run = rows[(s.key, "raw fetch")], rows[(s.key, "fluxion")]
        fetched = {m.rows_out for m in floor.runs}
        published = {m.rows_out for m in run.runs}
        mark = ""
        if fetched != {s.store.source_rows} or published != {s.store.published_rows}:
            mark = f" (expected {s.store.source_rows:,} / {s.store.published_rows:,})"
        lines.append(
            f"| {SOURCES[s.key][0]} | {max(fetched):,} | {max(published):,}{mark} | "
            f"{floor.seconds:.2f} s | {run.seconds:.2f} s | {run.seconds / floor.seconds:.2f}x | "
            f"{floor.seconds / run.seconds:.2f} | {run.cpu_seconds:.1f} | "
            f"{run.peak_memory_mib:.0f} MiB |"
        )
    spread = [
        f"- {SOURCES[key][0]} {tool}: " + ", ".join(f"{m.seconds:.2f}" for m in row.runs) + " s"
        for (key, tool), row in rows.items()
    ]
    return [*lines, "", "Every round's seconds:", "", *spread]


def by_source(pg: PgServer, products: int, keys: Sequence[str], rounds: int) -> list[str]:
    """Build the store in each needed server, alternate the rounds, print and return the report."""
    unknown = set(keys) - set(SOURCES)
    if unknown:
        raise SystemExit(f"unknown sources: {', '.join(sorted(unknown))} (of {', '.join(SOURCES)})")
    tsql = tsql_server_from_env() if set(keys) - {"postgres"} else None
    location = CHAIN_LOCATIONS[0]
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="fluxion-tds-") as tmp:
        started = time.perf_counter()
        (pg_store,) = stack.enter_context(stores_in_postgres(pg, [location], products))
        print(
            f"PostgreSQL: {products:,} products, {pg_store.source_rows:,} source rows, "
            f"{pg_store.published_rows:,} to publish, "
            f"built in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        tsql_store = None
        if tsql is not None:
            started = time.perf_counter()
            tsql_store = stack.enter_context(
                store_in_tsql(tsql, location, products, pg_store.source_rows)
            )
            print(
                f"Babelfish: {products:,} products loaded in {time.perf_counter() - started:.0f} s"
                f" (load {Path('/proc/loadavg').read_text(encoding='utf-8').split()[0]})",
                flush=True,
            )
        sources = []
        for key in keys:
            store = pg_store if key == "postgres" else tsql_store
            assert store is not None
            work = Path(tmp) / key
            sources.append(Source(key, store, _source_env(key, store, pg, tsql, work), work))
        rows, loads = alternate_sources(sources, rounds)
    text = report(sources, rows, rounds, loads)
    print("\n" + "\n".join(text))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--products", type=int, default=300_000, help="500,000 cannot be a SQL Server store"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sources", default=",".join(SOURCES), help="comma list of: " + ", ".join(SOURCES)
    )
    args = parser.parse_args()
    keys = [k.strip() for k in args.sources.split(",") if k.strip()]
    by_source(server_from_env(), args.products, keys, args.rounds)


if __name__ == "__main__":
    main()
