"""Publish time per store on PostgreSQL: the inventario_actual layout against inventario_raw.

Both layouts publish the same ready databases (real staging and transform, generated rows of
chain-store widths: :mod:`fluxion_harness.ready`) through the real
:class:`~fluxion_etl.targets.postgres.target.PostgresTarget`, into a fresh database on the server
the tests use. The first round fills the tables; the rounds after it are timed, so each publish
replaces a served snapshot (``inventario_actual``: location and warehouse rows, the products'
upsert, the history copy, the delete and the COPY; ``inventario_raw``: the delete and the COPY).

    source scripts/postgres-login.sh <role> CREATEDB
    PYTHONPATH=src:tools python benchmarks/layout_publish.py --stores 3 --rows 3000 --rounds 5

Prints, per layout, the median and the slowest publish per store (the whole transaction, as
the run's ``store published`` line times it), and the p99 of a backend reader's per-location
summary run in a loop on its own connection during the timed publishes (``inventario_actual``:
the backend's own summary, :data:`fluxion_harness.backend_pg.SUMMARY`).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import structlog
from benchmark import server_from_env

from fluxion_etl.config import Settings
from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_harness.backend_pg import SUMMARY
from fluxion_harness.postgres_source import create_database, drop_database, new_database_name
from fluxion_harness.ready import demo_store, ready_database

#: The per-location summary a backend reading inventario_raw runs (fluxion_harness/backend.py).
RAW_SUMMARY = """
SELECT ubicacion_id, COUNT(DISTINCT codigo_producto), SUM(CASE WHEN cantidad_actual < 0
       THEN 1 ELSE 0 END), MAX(fecha_extraccion)
FROM inventario_raw WHERE activo = true GROUP BY ubicacion_id
"""


class Reader(threading.Thread):
    """The backend's summary in a loop on its own connection, each read timed."""

    def __init__(self, url: str, password: str, schema: str, text: str) -> None:
        super().__init__(daemon=True)
        self.con: psycopg.Connection[Any] = psycopg.connect(
            url, password=password, autocommit=True, options=f"-c search_path={schema}"
        )
        self.text = text
        self.stop = threading.Event()
        self.seconds: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            self.con.execute(self.text).fetchall()
            self.seconds.append(time.perf_counter() - started)
        self.con.close()

    def p99_ms(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stores", type=int, default=3)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = server_from_env()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    database = new_database_name("fluxion_bench_layout_")
    create_database(server, database)
    url = f"postgresql://{server.user}@{server.host}:{server.port}/{database}?sslmode=disable"
    try:
        with tempfile.TemporaryDirectory(prefix="fluxion-bench-layout-") as tmp:
            stores = [demo_store(i) for i in range(1, args.stores + 1)]
            ready = {
                store.id: ready_database(Path(tmp), store, args.rows, "bench", seed=i).path
                for i, store in enumerate(stores, start=1)
            }
            print(f"{args.stores} stores x {args.rows:,} rows, {args.rounds} timed rounds")
            for layout, schema in (("inventario_raw", "raw"), ("inventario_actual", "chain")):
                settings = Settings(
                    database_url=url,
                    database_schema=schema,
                    target_layout=layout,
                    ledger_schema=f"{schema}_fluxion",
                )
                os.environ["PGPASSWORD"] = server.password
                target = PostgresTarget.from_settings(settings, stores=stores)
                times: list[float] = []
                reader: Reader | None = None
                for round_ in range(args.rounds + 1):
                    run_id = f"bench-{layout}-{round_}"
                    target.open_run(run_id, [s.id for s in stores], "bench")
                    if round_ == 1:  # the tables exist and serve every store: readers start
                        text = RAW_SUMMARY if layout == "inventario_raw" else SUMMARY
                        reader = Reader(url, server.password, schema, text)
                        reader.start()
                    for store in stores:
                        now = utcnow()
                        entry = LedgerEntry(run_id, store.id, "exitoso", now, now, 1, "bench")
                        started = time.perf_counter()
                        target.publish(store.id, ready[store.id], entry)
                        if round_:  # the first round fills the tables
                            times.append(time.perf_counter() - started)
                assert reader is not None
                reader.stop.set()
                reader.join()
                print(
                    f"  {layout:<18} median {statistics.median(times) * 1000:7.1f} ms/store"
                    f"   slowest {max(times) * 1000:7.1f} ms"
                    f"   reader p99 {reader.p99_ms():6.1f} ms ({len(reader.seconds)} reads)"
                )
    finally:
        drop_database(server, database)


if __name__ == "__main__":
    main()
