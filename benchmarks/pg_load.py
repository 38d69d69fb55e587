"""The PostgreSQL target's publish in isolation: how rows go in, dead rows over runs, readers
during the vacuum.

Three parts, each on a fresh database of the local server, from a synthetic ready database (the
view ``inventario`` over ``--products`` rows in the contract's exact types, as the transform
leaves it):

* ``--loaders``: one store's transaction (``DELETE`` its rows, load the new ones), ``--rounds``
  times per way of loading, a ``VACUUM`` (not timed) between:
  ``csv`` (DuckDB writes CSV, psycopg streams it into a text ``COPY``),
  ``psycopg-rows`` (psycopg's binary ``COPY``, ``set_types`` + ``write_row`` per row),
  ``pgpq`` (fluxion's: Arrow batches encoded by pgpq, binary ``COPY`` on psycopg's cursor),
  ``adbc`` (the ADBC driver's ``adbc_ingest``: binary ``COPY`` from Arrow in C, on its own
  connection and transaction, so the delete goes there too) and ``adbc-staging`` (ADBC into an
  unlogged staging table, then ``INSERT ... SELECT`` in the psycopg transaction, as fluxion would
  need to keep one transaction with its ledger row).
* ``--readers``: after a publish of the large store, the same per-store summary the backend
  runs (a fresh connection per query) in a loop, idle, then while fluxion's vacuum runs.
* ``--churn-runs N``: a store of ``--churn-products`` rows published N times into two schemas,
  runs interleaved so both see the same pace: one left to autovacuum (server defaults), one with
  fluxion's vacuum after each run; ``inventario_raw``'s size on disk every ``--churn-every``.

    FLUXION_TEST_PG_HOST=... FLUXION_TEST_PG_PORT=... FLUXION_TEST_PG_USER=... \\
    FLUXION_TEST_PG_PASSWORD=... python benchmarks/pg_load.py --loaders --readers \\
        --churn-runs 200

``adbc`` needs ``adbc-driver-postgresql`` (benchmarks/requirements.txt); without it those two
are reported as not measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import structlog
from benchmark import server_from_env
from psycopg import sql
from targets import READER_SQL, reader

from fluxion_etl.contract import CONTRACT_COLUMNS
from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.sql import literal as sql_literal
from fluxion_etl.targets.postgres import copy as pgcopy
from fluxion_etl.targets.postgres import schema as pgschema
from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_etl.targets.postgres.url import resolve_login
from fluxion_harness.postgres_source import (
    PgServer,
    create_database,
    drop_database,
    new_database_name,
)

STORE = "tienda_01"
CREATED_AT = dt.datetime(2026, 12, 1, 6, 0)


def make_ready(path: Path, products: int) -> Path:
    """A ready database shaped as the transform's: ``inventario`` in the contract's types."""
    path.unlink(missing_ok=True)
    columns = []
    for name, kind in CONTRACT_COLUMNS.items():
        if name == "created_at":
            continue
        if kind.startswith("DECIMAL"):
            expr = f"CAST((i % 99991) / 7 AS {kind})"
        elif kind == "TIMESTAMP":
            expr = "TIMESTAMP '2026-11-30 10:00:00' + to_seconds(i % 86400)"
        elif kind == "INTEGER":
            expr = "CAST(i % 365 AS INTEGER)"
        elif kind == "BOOLEAN":
            expr = "i % 2 = 0"
        elif name == "ubicacion_id":
            expr = sql_literal(STORE)
        elif name == "codigo_producto":
            expr = "'P' || lpad(CAST(i AS VARCHAR), 8, '0')"
        elif name == "descripcion_producto":
            expr = "'HARINA DE MAIZ PRECOCIDA ñ 1KG ' || (i % 9973)"
        else:
            expr = f"{sql_literal(name[:8].upper())} || (i % 4999)"
        columns.append(f"{expr} AS {name}")
    with duckdb.connect(str(path)) as con:
        select = ", ".join(columns)
        con.execute(f"CREATE TABLE filas AS SELECT {select} FROM range({products}) t(i)")
        con.execute("CREATE VIEW inventario AS SELECT * FROM filas")
    return path


def connect(server: PgServer, database: str, **options: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=server.host, port=server.port, user=server.user, password=server.password,
        dbname=database, client_encoding="UTF8", **options,
    )  # fmt: skip


def ready_select(ready: Path) -> tuple[duckdb.DuckDBPyConnection, str]:
    stamp = sql_literal(CREATED_AT.isoformat(sep=" "))
    return (
        duckdb.connect(str(ready), read_only=True),
        f"SELECT *, CAST({stamp} AS TIMESTAMP) AS created_at FROM inventario",
    )


def columns_of(names: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


# --- the ways of loading: each one store's transaction, delete + load, on a fresh session ----


def load_csv(server: PgServer, database: str, ready: Path) -> None:
    source, select = ready_select(ready)
    csv = ready.with_suffix(".csv")
    with source:
        names = [str(row[0]) for row in source.execute(f"DESCRIBE {select}").fetchall()]
        source.execute(f"COPY ({select}) TO {sql_literal(str(csv))} (HEADER false)")
    statement = sql.SQL("COPY inventario_raw ({}) FROM STDIN (FORMAT csv)").format(
        columns_of(names)
    )
    with connect(server, database) as con, con.cursor() as cur:
        cur.execute("DELETE FROM inventario_raw WHERE ubicacion_id = %s", [STORE])
        with cur.copy(statement) as copy, csv.open("rb") as rows:
            while chunk := rows.read(1 << 20):
                copy.write(chunk)
    csv.unlink()


def load_psycopg_rows(server: PgServer, database: str, ready: Path) -> None:
    source, select = ready_select(ready)
    with source, connect(server, database) as con, con.cursor() as cur:
        result = source.execute(select)
        names = [str(column[0]) for column in result.description or ()]
        types = dict(
            cur.execute(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                "WHERE attrelid = 'inventario_raw'::regclass AND attnum > 0"
            ).fetchall()
        )
        cur.execute("DELETE FROM inventario_raw WHERE ubicacion_id = %s", [STORE])
        statement = sql.SQL("COPY inventario_raw ({}) FROM STDIN (FORMAT binary)").format(
            columns_of(names)
        )
        with cur.copy(statement) as copy:
            copy.set_types([types[name] for name in names])
            while rows := result.fetchmany(10_000):
                for row in rows:
                    copy.write_row(row)


def load_pgpq(server: PgServer, database: str, ready: Path) -> None:
    with connect(server, database) as con, con.cursor() as cur:
        cur.execute("DELETE FROM inventario_raw WHERE ubicacion_id = %s", [STORE])
        pgcopy.copy_ready(cur, ready, CREATED_AT)


def adbc_uri(server: PgServer, database: str) -> str:
    return f"postgresql://{server.user}:{server.password}@{server.host}:{server.port}/{database}"


def load_adbc(server: PgServer, database: str, ready: Path) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    source, select = ready_select(ready)
    with source, adbc.connect(adbc_uri(server, database)) as con, con.cursor() as cur:
        cur.execute(f"DELETE FROM inventario_raw WHERE ubicacion_id = {sql_literal(STORE)}")
        cur.adbc_ingest("inventario_raw", source.sql(select).to_arrow_reader(65_536), "append")
        con.commit()


def load_adbc_staging(server: PgServer, database: str, ready: Path) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    source, select = ready_select(ready)
    staging = f"fluxion_staging_{secrets.token_hex(4)}"
    with source, adbc.connect(adbc_uri(server, database)) as con, con.cursor() as cur:
        cur.execute(f"CREATE UNLOGGED TABLE {staging} (LIKE inventario_raw)")
        cur.adbc_ingest(staging, source.sql(select).to_arrow_reader(65_536), "append")
        con.commit()
    with connect(server, database) as con:
        con.execute("DELETE FROM inventario_raw WHERE ubicacion_id = %s", [STORE])
        con.execute(f"INSERT INTO inventario_raw SELECT * FROM {staging}")
        con.execute(f"DROP TABLE {staging}")


LOADERS: dict[str, Callable[[PgServer, str, Path], None]] = {
    "csv": load_csv,
    "psycopg-rows": load_psycopg_rows,
    "pgpq": load_pgpq,
    "adbc": load_adbc,
    "adbc-staging": load_adbc_staging,
}


def migrated(server: PgServer, database: str, schema: str = "public") -> None:
    with connect(server, database) as con, con.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cur.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        pgschema.migrate(cur, schema)


def loaders(server: PgServer, ready: Path, products: int, rounds: int, names: list[str]) -> str:
    """Time each way of loading; returns the database (holding the last snapshot) for readers."""
    database = new_database_name("fluxion_bench_load_")
    create_database(server, database)
    migrated(server, database)
    print(f"\nloading one store of {products:,} rows x {len(CONTRACT_COLUMNS)} columns "
          f"(delete + load, one transaction), {rounds} round(s):")  # fmt: skip
    found: dict[str, list[float]] = {}
    for number in range(1, rounds + 1):
        for name in names:
            with connect(server, database, autocommit=True) as con:
                con.execute("VACUUM inventario_raw")
            started = time.perf_counter()
            try:
                LOADERS[name](server, database, ready)
            except ImportError as exc:
                print(f"  {name:<13} not measured ({exc})")
                continue
            seconds = time.perf_counter() - started
            with connect(server, database) as con:
                row = con.execute(
                    "SELECT count(*) FROM inventario_raw WHERE ubicacion_id = %s", [STORE]
                ).fetchone()
            assert row is not None and row[0] == products, (name, row)
            found.setdefault(name, []).append(seconds)
            print(f"  round {number} {name:<13} {seconds:7.2f} s", flush=True)
    print("median:")
    for name, values in found.items():
        median = statistics.median(values)
        print(f"  {name:<13} {median:7.2f} s  {products / median:10,.0f} rows/s")
    return database


def target_for(server: PgServer, database: str, schema: str) -> PostgresTarget:
    url = f"postgresql://{server.user}@{server.host}:{server.port}/{database}?sslmode=disable"
    return PostgresTarget(
        resolve_login(url, {"PGPASSWORD": server.password}), schema, lock_wait_seconds=30
    )


def entry(run_id: str) -> LedgerEntry:
    now = utcnow()
    return LedgerEntry(run_id, STORE, "exitoso", now, now, attempts=1, engine="bench")


def readers(server: PgServer, database: str, ready: Path) -> None:
    """The backend's per-store summary, idle and while fluxion's vacuum runs."""
    target = target_for(server, database, "public")
    target.publish(STORE, ready, entry("readers"))  # leaves a snapshot's worth of dead rows

    def query() -> None:
        with connect(server, database) as con:
            con.execute(READER_SQL.format(store="%s"), [STORE]).fetchall()

    with reader(query) as idle:
        time.sleep(10)
    with reader(query) as during:
        started = time.perf_counter()
        target.reclaim()
        seconds = time.perf_counter() - started
        time.sleep(max(0.0, 1.0 - seconds))  # the loop's first queries, if the vacuum was brief
    print(f"\nreader (per-store summary, fresh connection per query) on {STORE}:")
    print(f"  idle:              {idle.line()}")
    print(f"  during the vacuum: {during.line()}  (vacuum {seconds:.2f} s)")


def churn(server: PgServer, ready: Path, rows: int, runs: int, every: int) -> None:
    database = new_database_name("fluxion_bench_churn_")
    create_database(server, database)
    try:
        alone, ours = (target_for(server, database, schema) for schema in ("alone", "vacuumed"))
        for target in (alone, ours):
            target.open_run("churn-0", [STORE], "bench")
        print(f"\ndead rows: {runs} runs of one {rows:,}-row store, interleaved; "
              "inventario_raw with its index and TOAST (pg_total_relation_size):")  # fmt: skip
        print(f"  {'after run':>9}  {'autovacuum alone':>24}  {'fluxion VACUUM after runs':>26}")
        for number in range(1, runs + 1):
            alone.publish(STORE, ready, entry(f"run-{number}"))
            ours.publish(STORE, ready, entry(f"run-{number}"))
            ours.reclaim()
            if number == 1 or number % every == 0:
                cells = [size_cell(server, database, schema) for schema in ("alone", "vacuumed")]
                print(f"  {number:9}  {cells[0]:>24}  {cells[1]:>26}", flush=True)
    finally:
        drop_database(server, database)


def size_cell(server: PgServer, database: str, schema: str) -> str:
    with connect(server, database) as con:
        row = con.execute(
            "SELECT pg_total_relation_size(relid), n_dead_tup FROM pg_stat_user_tables "
            "WHERE schemaname = %s AND relname = 'inventario_raw'",
            [schema],
        ).fetchone()
    assert row is not None
    return f"{row[0] / 2**20:6.1f} MiB dead {row[1]:>7,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--products", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loaders", action="store_true", help="time the ways of loading")
    parser.add_argument(
        "--only", default=",".join(LOADERS), help=f"loaders to time (of {', '.join(LOADERS)})"
    )
    parser.add_argument("--readers", action="store_true", help="readers during the vacuum")
    parser.add_argument("--churn-runs", type=int, default=0)
    parser.add_argument("--churn-products", type=int, default=5_000)
    parser.add_argument("--churn-every", type=int, default=20)
    args = parser.parse_args()
    server = server_from_env()
    # the target's own log lines (one per vacuum) would interleave with the figures
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="fluxion-bench-pgload-") as tmp:
        work = Path(tmp)
        if args.loaders or args.readers:
            ready = make_ready(work / "ready.duckdb", args.products)
            names = [name.strip() for name in args.only.split(",") if name.strip()]
            if args.loaders:
                database = loaders(server, ready, args.products, args.rounds, names)
            else:
                database = new_database_name("fluxion_bench_load_")
                create_database(server, database)
                migrated(server, database)
                target_for(server, database, "public").publish(STORE, ready, entry("first"))
            try:
                if args.readers:
                    readers(server, database, ready)
            finally:
                drop_database(server, database)
        if args.churn_runs:
            small = make_ready(work / "small.duckdb", args.churn_products)
            churn(server, small, args.churn_products, args.churn_runs, args.churn_every)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
