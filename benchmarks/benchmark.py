"""fluxion against the raw fetch floor and dlt, on the same rows: time, rows/s, memory, lock.

Builds Stellar-shaped stores in PostgreSQL (the tests' stand-in for the stores' SQL Servers,
every trap of the fixtures on), then, alternating the tools within each round:

* ``fluxion arrow`` / ``fluxion pyodbc`` -- the real ``fluxion-etl run`` end to end;
* ``raw fetch`` -- fluxion's arrow-odbc engine reading the same rows, nothing else (the floor);
* ``dlt`` -- dlt's ``sql_table(backend="pyarrow")`` into DuckDB (see ``contenders.py``).

Each runs in its own child process: wall time from spawn to exit, peak memory of its process
tree (sampled PSS, ``process_tree.py``; fluxion fetches in child processes), and
the DuckDB write-lock hold (fluxion: its EMF line; dlt: its load step). The median of the rounds
is reported. The single-store comparison runs at ``--products`` and again at
``--small-products`` (memory must be flat in the row count). Then the fleet: ``--fleet-stores``
small stores, the whole run, ``ETL_WORKERS=1`` against the default, direct and through
``fluxion_etl.demo.linkproxy``. Prints the tables and writes them to ``--results``.

One command on a fresh machine: ``benchmarks/run.sh`` (system packages, PostgreSQL, a
throw-away login, ``benchmarks/.venv`` with fluxion and dlt). By hand, inside that venv:

    FLUXION_TEST_PG_HOST=127.0.0.1 FLUXION_TEST_PG_PORT=5432 FLUXION_TEST_PG_USER=... \\
    FLUXION_TEST_PG_PASSWORD=... python benchmarks/benchmark.py --rounds 3

Not part of the test suite; the databases it creates are dropped at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from process_tree import ProcessTreeSampler

from fluxion_etl.config import Settings
from fluxion_etl.demo.linkproxy import FaultyProxy
from fluxion_etl.demo.postgres_source import (
    PgServer,
    create_store_database,
    drop_database,
    new_database_name,
)
from fluxion_etl.demo.stellar import CHAIN_LOCATIONS, Location, generate_store
from fluxion_etl.query import default_query

HERE = Path(__file__).resolve().parent
#: The view dlt reads: fluxion's inventory query for the store's warehouse (see contenders.py).
INVENTORY_VIEW = "fluxion_bench_inventario"
#: Products per fleet store: about 78% publish, so ~3,500 rows each, like the real stores.
FLEET_PRODUCTS = 4_500


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


# ------------------------------------------------------------------------------------------
# One measured child process
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    seconds: float
    cpu_seconds: float
    """User + system CPU of the child's process tree (process_tree.py; the database server's
    CPU is not in it)."""
    peak_memory_mib: float
    """The process tree's sampled peak PSS (process_tree.py), at least the largest process's
    peak RSS (wait4)."""
    rows_out: int
    lock_held_seconds: float | None
    phases: dict[str, float]
    """fluxion only: seconds per phase, from its log lines, summed over stores."""


#: fluxion's log events that close a phase, and the phase's name in the report.
PHASE_EVENTS = {
    "extract staged": "fetch + clean + stage",
    "transformed": "de-duplicate + derive",
    "store published": "publish (lock held)",
}


def measure(command: Sequence[str], env: dict[str, str], what: str) -> Measurement:
    """Run ``command`` as a child; its wall time, its tree's peak memory and its report.

    The child's report is on stdout: fluxion's EMF line (``RowsPublished``,
    ``LockHeldSeconds``) or a contender's last line ``{"rows": ..., "lock_held_seconds": ...}``.
    """
    with tempfile.TemporaryFile("w+") as errors:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert child.stdout is not None
        with ProcessTreeSampler(child.pid) as tree:
            stdout = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)  # not communicate(): wait4 gives the rusage
        seconds = time.perf_counter() - started
        child.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            raise SystemExit(f"{what}: exit {code}\n{stdout[-1500:]}\n{errors.read()[-1500:]}")
    reports = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    phases: dict[str, float] = {}
    for line in reports:
        phase = PHASE_EVENTS.get(line.get("event", ""))
        if phase:
            phases[phase] = phases.get(phase, 0.0) + float(line.get("seconds", 0.0))
    emf = next((r for r in reports if "_aws" in r), None)
    rows, lock = (
        (emf["RowsPublished"], emf["LockHeldSeconds"])
        if emf
        else (reports[-1]["rows"], reports[-1].get("lock_held_seconds"))
    )
    return Measurement(
        seconds=seconds,
        cpu_seconds=max(tree.cpu_seconds, usage.ru_utime + usage.ru_stime),
        peak_memory_mib=max(tree.peak_mib, usage.ru_maxrss / 1024),
        rows_out=rows,
        lock_held_seconds=lock,
        phases=phases,
    )


# ------------------------------------------------------------------------------------------
# Stores in PostgreSQL and the files that point at them
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltStore:
    location: Location
    database: str
    source_rows: int
    """Rows the inventory query returns (what every tool reads)."""
    published_rows: int
    """Rows a correct pipeline publishes (the generator's oracle)."""


@contextmanager
def stores_in_postgres(
    server: PgServer, locations: Sequence[Location], products: int
) -> Iterator[list[BuiltStore]]:
    """One database per location, ``products`` products each, dropped on the way out.

    Generated in a separate (spawned) process: the generator holds ~1.4 KB per product, and a
    child forked from a big parent would report the parent's pages in its own peak RSS.
    """
    built: list[BuiltStore] = []
    spawn = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as builder:
            for location in locations:
                name = new_database_name("fluxion_bench_")
                future = builder.submit(_build_store, server, name, location, products)
                built.append(BuiltStore(location, name, 0, 0))  # dropped even if half-built
                source_rows, published_rows = future.result()
                built[-1] = BuiltStore(location, name, source_rows, published_rows)
        yield built
    finally:
        for store in built:
            drop_database(server, store.database)


def _build_store(server: PgServer, name: str, location: Location, products: int) -> tuple[int, int]:
    """(In the builder process.) Generate and load one store; its source and published rows."""
    data = generate_store(location.warehouse, products, seed=42)
    create_store_database(server, name, data)
    return _create_inventory_view(server, name, location), len(data.expected)


def _create_inventory_view(server: PgServer, database: str, location: Location) -> int:
    """The view dlt reads: the inventory query with the warehouse code written in (a
    generator's digits-only code, so no quoting question); returns its row count."""
    if not location.warehouse.isdigit():
        raise ValueError(f"unexpected warehouse code {location.warehouse!r}")
    query = default_query().replace("?", f"'{location.warehouse}'")
    conn = server.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE VIEW {INVENTORY_VIEW} AS {query}")
            cur.execute(f"SELECT count(*) FROM {INVENTORY_VIEW}")
            (rows,) = cur.fetchone()
        conn.commit()
    finally:
        conn.close()
    return int(rows)


def write_stores_file(path: Path, stores: Sequence[BuiltStore], host: str, port: int) -> Path:
    entries = [
        f'[[stores]]\nid = "{s.location.id}"\nname = "{s.location.name}"\ntype = "tienda"\n'
        f'host = "{host}"\nport = {port}\ndatabase = "{s.database}"\n'
        f'warehouse = "{s.location.warehouse}"\ndriver = "PostgreSQL Unicode"\n'
        for s in stores
    ]
    path.write_text("\n".join(entries), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------
# The tools
# ------------------------------------------------------------------------------------------

Tool = Callable[[dict[str, str], Path], Measurement]


def fluxion(engine: str) -> Tool:
    def run(env: dict[str, str], work: Path) -> Measurement:
        db = work / f"fluxion-{engine}.duckdb"
        db.unlink(missing_ok=True)
        return measure(
            [sys.executable, "-m", "fluxion_etl", "run", "--db", str(db)],
            {**env, "ETL_ENGINE": engine},
            f"fluxion {engine}",
        )

    return run


def raw_fetch(env: dict[str, str], work: Path) -> Measurement:
    return measure([sys.executable, str(HERE / "contenders.py"), "raw-fetch"], env, "raw fetch")


def dlt(env: dict[str, str], work: Path) -> Measurement:
    db = work / "dlt.duckdb"
    db.unlink(missing_ok=True)
    command = [sys.executable, str(HERE / "contenders.py"), "dlt", "--view", INVENTORY_VIEW]
    return measure([*command, "--db", str(db)], env, "dlt")


TOOLS: dict[str, Tool] = {
    "fluxion arrow": fluxion("arrow"),
    "fluxion pyodbc": fluxion("pyodbc"),
    "raw fetch": raw_fetch,
    "dlt": dlt,
}


@dataclass
class Row:
    """The rounds of one tool in one scenario, summarised by their medians."""

    label: str
    runs: list[Measurement] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(m.seconds for m in self.runs)

    @property
    def peak_memory_mib(self) -> float:
        return statistics.median(m.peak_memory_mib for m in self.runs)

    @property
    def cpu_seconds(self) -> float:
        return statistics.median(m.cpu_seconds for m in self.runs)

    @property
    def rows_out(self) -> int:
        return self.runs[-1].rows_out

    def phase_seconds(self, phase: str) -> float | None:
        values = [m.phases[phase] for m in self.runs if phase in m.phases]
        return statistics.median(values) if values else None

    @property
    def lock_share(self) -> float | None:
        locks = [m.lock_held_seconds / m.seconds for m in self.runs if m.lock_held_seconds]
        return statistics.median(locks) if locks else None


def alternate(
    rounds: int, scenarios: dict[str, Callable[[], Measurement]], progress: str
) -> dict[str, Row]:
    """``rounds`` rounds, each running every scenario once in turn (so drift hits all alike)."""
    rows = {label: Row(label) for label in scenarios}
    for number in range(1, rounds + 1):
        for label, run in scenarios.items():
            m = run()
            rows[label].runs.append(m)
            print(
                f"  {progress} round {number}/{rounds} {label:<24} {m.seconds:7.2f} s "
                f"{m.peak_memory_mib:6.0f} MiB",
                flush=True,
            )
    return rows


# ------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------


def base_env(server: PgServer, stores_file: Path, work: Path) -> dict[str, str]:
    """The CLI's environment: credentials as the deployment passes them, telemetry off."""
    return {
        **os.environ,
        "ETL_STORES_FILE": str(stores_file),
        "SQL_USER": server.user,
        "SQL_PASS": server.password,
        "ETL_STAGING_DIR": str(work),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }


def single_store(
    server: PgServer, products: int, tools: Sequence[str], rounds: int
) -> tuple[BuiltStore, dict[str, Row]]:
    started = time.perf_counter()
    with stores_in_postgres(server, CHAIN_LOCATIONS[:1], products) as (store,):
        print(
            f"built {store.database}: {products:,} products, {store.source_rows:,} source rows, "
            f"{store.published_rows:,} to publish, in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="fluxion-bench-") as tmp:
            work = Path(tmp)
            env = base_env(
                server,
                write_stores_file(work / "stores.toml", [store], server.host, server.port),
                work,
            )
            scenarios = {name: _bind(TOOLS[name], env, work) for name in tools}
            rows = alternate(rounds, scenarios, f"{products:,} products")
    for row in rows.values():
        expected = store.published_rows if row.label.startswith("fluxion") else store.source_rows
        if any(m.rows_out != expected for m in row.runs):
            raise SystemExit(f"{row.label} moved {row.rows_out:,} rows, expected {expected:,}")
    return store, rows


def fleet(
    server: PgServer, stores: int, latency_ms: float, rounds: int
) -> tuple[list[BuiltStore], dict[str, Row]]:
    default_workers = Settings().workers
    started = time.perf_counter()
    with stores_in_postgres(server, CHAIN_LOCATIONS[:stores], FLEET_PRODUCTS) as built:
        print(
            f"built {len(built)} fleet stores ({sum(s.source_rows for s in built):,} source rows)"
            f" in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        with (
            tempfile.TemporaryDirectory(prefix="fluxion-bench-") as tmp,
            FaultyProxy.link((server.host, server.port), latency=latency_ms / 1000) as proxy,
        ):
            work = Path(tmp)
            scenarios = {}
            for link, port in (("loopback", server.port), (f"+{latency_ms:g} ms", proxy.port)):
                stores_file = write_stores_file(work / f"{port}.toml", built, server.host, port)
                env = base_env(server, stores_file, work)
                for workers in (1, default_workers):
                    label = f"{link}, workers={workers}"
                    scenarios[label] = _bind(
                        fluxion("arrow"), {**env, "ETL_WORKERS": str(workers)}, work
                    )
            rows = alternate(rounds, scenarios, "fleet")
    expected = sum(store.published_rows for store in built)
    for row in rows.values():
        if any(m.rows_out != expected for m in row.runs):
            raise SystemExit(f"fleet {row.label} published {row.rows_out:,}, expected {expected:,}")
    return built, rows


def _bind(tool: Tool, env: dict[str, str], work: Path) -> Callable[[], Measurement]:
    return lambda: tool(env, work)


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------


def single_table(store: BuiltStore, rows: dict[str, Row]) -> list[str]:
    lines = [
        "| tool | rows out | seconds | source rows/s | CPU s | peak memory | write lock held |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows.values():
        share = row.lock_share
        lock = "—" if share is None else f"{share * row.seconds:.2f} s ({share:.1%})"
        lines.append(
            f"| {row.label} | {row.rows_out:,} | {row.seconds:.2f} | "
            f"{store.source_rows / row.seconds:,.0f} | {row.cpu_seconds:.1f} | "
            f"{row.peak_memory_mib:,.0f} MiB | {lock} |"
        )
    return lines


def phase_table(rows: dict[str, Row]) -> list[str]:
    """Where fluxion's time goes, from its own log (the phases run one after the other)."""
    ours = [row for row in rows.values() if row.label.startswith("fluxion")]
    if not ours:
        return []
    lines = [
        "| phase | " + " | ".join(row.label for row in ours) + " |",
        "|---|" + "---:|" * len(ours),
    ]
    for phase in PHASE_EVENTS.values():
        cells = [row.phase_seconds(phase) for row in ours]
        lines.append(
            f"| {phase} | " + " | ".join("—" if c is None else f"{c:.2f} s" for c in cells) + " |"
        )
    return lines


def fleet_table(rows: dict[str, Row]) -> list[str]:
    lines = ["| link, workers | rows published | seconds | peak memory |", "|---|---:|---:|---:|"]
    for row in rows.values():
        lines.append(
            f"| {row.label} | {row.rows_out:,} | {row.seconds:.2f} | "
            f"{row.peak_memory_mib:,.0f} MiB |"
        )
    return lines


def targets(
    big: tuple[BuiltStore, dict[str, Row]], small: tuple[BuiltStore, dict[str, Row]] | None
) -> list[str]:
    """The issue's targets, each with the figure that decides it."""
    store, rows = big
    out: list[str] = []

    def check(ok: bool, text: str) -> None:
        out.append(f"- {'met' if ok else '**not met**'}: {text}")

    ours = rows.get("fluxion arrow")
    if ours is None:
        return out
    if "dlt" in rows:
        ratio = rows["dlt"].seconds / ours.seconds
        check(ratio >= 1.5, f"fluxion is {ratio:.2f}x faster than dlt (target >= 1.5x)")
    if "raw fetch" in rows:
        ratio = rows["raw fetch"].seconds / ours.seconds
        check(ratio >= 0.9, f"fluxion runs at {ratio:.2f}x the raw fetch floor (target >= 0.9x)")
    if small is not None and "fluxion arrow" in small[1]:
        grow = ours.peak_memory_mib / small[1]["fluxion arrow"].peak_memory_mib
        factor = store.source_rows / small[0].source_rows
        check(
            grow <= 1.2,
            f"peak memory grows {grow:.2f}x for {factor:.1f}x the rows (target <= 1.2x for 4x)",
        )
    peak = ours.peak_memory_mib
    check(peak < 1024, f"peak memory {peak:,.0f} MiB (target < 1 GiB)")
    share = ours.lock_share or 0.0
    check(share < 0.05, f"write lock held {share:.1%} of the run (target < 5%)")
    return out


def environment_lines(server: PgServer) -> list[str]:
    conn = server.connect("postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            (pg_version,) = cur.fetchone()
    finally:
        conn.close()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    packages = [
        "fluxion",
        "duckdb",
        "arrow-odbc",
        "pyarrow",
        "pyodbc",
        "dlt",
        "sqlalchemy",
        "psycopg2-binary",
    ]
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    return [
        f"- machine: {os.cpu_count()} cores ({cpu}), {memory_kib / 1024 / 1024:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"- PostgreSQL {pg_version} on 127.0.0.1 (same machine, sharing the cores), "
        f"psqlODBC {_psqlodbc_version()} for fluxion; dlt reads it through SQLAlchemy + psycopg2",
        f"- Python {platform.python_version()}; {versions}",
    ]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _psqlodbc_version() -> str:
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "odbc-postgresql"],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(version unknown)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500_000, help="the headline store")
    parser.add_argument(
        "--small-products",
        type=int,
        default=125_000,
        help="a second store for the memory-flatness check (0: skip)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma list of: " + ", ".join(TOOLS)
    )
    parser.add_argument("--fleet-stores", type=int, default=20, help="0: skip the fleet")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added each way")
    parser.add_argument("--results", type=Path, default=HERE / "results.md")
    args = parser.parse_args()
    tools = [name.strip() for name in args.tools.split(",") if name.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    if "dlt" in tools and _version("dlt") == "(not installed)":
        parser.error("dlt is not installed here: run benchmarks/run.sh (or drop it from --tools)")
    server = server_from_env()
    command = "benchmarks/run.sh " + " ".join(sys.argv[1:])

    started = dt.datetime.now(dt.UTC)
    big = single_store(server, args.products, tools, args.rounds)
    small = (
        single_store(server, args.small_products, tools, args.rounds)
        if args.small_products
        else None
    )
    fleet_result = (
        fleet(server, args.fleet_stores, args.latency_ms, args.rounds)
        if args.fleet_stores
        else None
    )

    report = [
        "# Benchmark results",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC with `{command.strip()}`; every figure is the median "
        f"of {args.rounds} rounds, the tools alternating within each round, each tool in its own "
        "child process (wall time from spawn to exit, peak memory = sampled PSS of its process"
        " tree, at least the largest process's peak RSS from wait4).",
        "",
        *environment_lines(server),
        "",
    ]
    for store, rows in (big, small) if small else (big,):
        report += [
            f"## One store, {args.products if store is big[0] else args.small_products:,} "
            f"products ({store.source_rows:,} source rows, {store.published_rows:,} published)",
            "",
            *single_table(store, rows),
            "",
            "fluxion's phases (median seconds, from its log):",
            "",
            *phase_table(rows),
            "",
        ]
    report += ["## Targets", "", *targets(big, small), ""]
    if fleet_result:
        built, rows = fleet_result
        per_store = statistics.median(s.published_rows for s in built)
        report += [
            f"## Fleet: {len(built)} stores x ~{per_store:,.0f} rows, whole run (arrow engine)",
            "",
            *fleet_table(rows),
            "",
        ]
    text = "\n".join(report)
    print("\n" + text)
    # the hand-written reading of the figures (what bounds each target) follows the tables
    analysis = (HERE / "analysis.md").read_text(encoding="utf-8")
    args.results.write_text(text + "\n" + analysis, encoding="utf-8")
    print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
