"""What the benchmark measures besides fluxion itself, each run as its own child process.

``python benchmarks/contenders.py raw-fetch`` -- the fetch floor: fluxion's own arrow-odbc engine
(same connection string, query, bound warehouse code and batch limits as ``fluxion-etl run``)
reading every row and dropping it. Nothing is staged, transformed or loaded, so no pipeline
built on this driver can be faster than this.

``python benchmarks/contenders.py dlt --view NAME --db PATH`` -- what a user would pick instead:
dlt's ``sql_table`` source with ``backend="pyarrow"`` into a DuckDB file. dlt reaches PostgreSQL
through SQLAlchemy + psycopg2 (it has no ODBC path), and reads a VIEW holding fluxion's inventory
query for the same warehouse, so it moves exactly the rows fluxion extracts (it does no clean-up
or de-duplication: that would be the user's own code after the load).

Both read the store from the same environment as the CLI (``ETL_STORES_FILE``, ``SQL_USER``,
``SQL_PASS``; the first store) and print one JSON line on stdout: rows read and, for dlt, the
seconds its load step held the DuckDB file. The parent (``benchmarks/benchmark.py``) times the
whole child and reads its peak RSS with ``wait4``. This file is not imported by fluxion.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials, load_credentials
from fluxion_etl.source.engines import get_engine
from fluxion_etl.source.engines.base import FetchRequest
from fluxion_etl.source.query import load_query
from fluxion_etl.stores import Store, load_stores


def _store_and_credentials(settings: Settings) -> tuple[Store, Credentials]:
    if settings.stores_file is None:
        raise SystemExit("set ETL_STORES_FILE")
    credentials = load_credentials()
    if credentials is None:
        raise SystemExit("set SQL_USER and SQL_PASS")
    return load_stores(settings.stores_file)[0], credentials


def raw_fetch() -> dict[str, float]:
    """Every row of the store through fluxion's arrow engine, counted and dropped."""
    settings = Settings.from_env()
    store, credentials = _store_and_credentials(settings)
    request = FetchRequest.for_store(store, settings, credentials, load_query(settings.query_file))
    rows = sum(batch.num_rows for batch in get_engine("arrow").batches(request))
    return {"rows": rows}


def dlt_load(view: str, database: Path, postgres: bool = False) -> dict[str, float]:
    """dlt ``sql_table(backend="pyarrow")`` of ``view`` into ``database``, telemetry off.

    extract, normalize and load are called one by one so the load step (the only one that opens
    the DuckDB file for writing) can be timed as dlt's write-lock hold.
    """
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    import sqlalchemy
    from dlt.sources.sql_database import sql_table

    settings = Settings.from_env()
    store, credentials = _store_and_credentials(settings)
    url = sqlalchemy.URL.create(
        "postgresql+psycopg2",
        username=credentials.user,
        password=credentials.password,
        host=store.host,
        port=store.port,
        database=store.database,
    )
    engine = sqlalchemy.create_engine(url)
    with tempfile.TemporaryDirectory(prefix="fluxion-bench-dlt-") as pipelines_dir:
        pipeline = dlt.pipeline(
            pipeline_name="bench_inventory",
            destination=(
                dlt.destinations.postgres()  # DESTINATION__POSTGRES__CREDENTIALS (env)
                if postgres
                else dlt.destinations.duckdb(str(database))
            ),
            dataset_name="bench",
            pipelines_dir=pipelines_dir,
        )
        source = sql_table(
            credentials=engine,
            table=view,
            backend="pyarrow",
            chunk_size=settings.batch_size,
            reflection_level="full_with_precision",
            write_disposition="replace",
        )
        pipeline.extract(source)
        pipeline.normalize()
        load_started = time.perf_counter()
        pipeline.load()
        load_seconds = time.perf_counter() - load_started
        rows = pipeline.last_trace.last_normalize_info.row_counts.get(view, 0)
    engine.dispose()
    return {"rows": rows, "lock_held_seconds": load_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="tool", required=True)
    sub.add_parser("raw-fetch", help="arrow-odbc fetch of the store's rows, nothing else")
    dlt_parser = sub.add_parser("dlt", help="dlt sql_table(backend='pyarrow') into DuckDB")
    dlt_parser.add_argument("--view", required=True, help="PostgreSQL view with the query rows")
    dlt_parser.add_argument("--db", required=True, type=Path, help="target DuckDB file")
    dlt_parser.add_argument(
        "--postgres",
        action="store_true",
        help="load into dlt's postgres destination instead (its DSN, password included, from "
        "DESTINATION__POSTGRES__CREDENTIALS, never the command line)",
    )
    args = parser.parse_args()
    if args.tool == "raw-fetch":
        result = raw_fetch()
    else:
        result = dlt_load(args.view, args.db, args.postgres)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
