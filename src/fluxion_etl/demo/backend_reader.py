"""A reader that behaves like the chain's web backend, to measure what it sees while the ETL runs.

Per "request" it opens the DuckDB file read-only, runs the per-location summary the backend's
dashboard shows (`fluxion_etl.demo.backend.SUMMARY`: products, zero and negative stock, latest
extraction), and closes it again -- short-lived connections, as a backend sharing the file with
the ETL must use. When the ETL holds the file (a publish), the open fails with DuckDB's lock
error; the reader retries with a short back-off up to a bound, as a backend should, and counts
the failed opens and the longest wait. Each answer is checked: every store present with its full
row count, and one ``batch_id`` per store (never half of one snapshot and half of another).

Run as ``python -m fluxion_etl.demo.backend_reader DB EXPECTED_JSON OUT_JSON``; it loops until
SIGTERM/SIGINT, then writes its figures to OUT_JSON.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

import duckdb

from fluxion_etl.demo.backend import SUMMARY
from fluxion_etl.publish import is_lock_conflict

#: a backend request gives up on the file after this long (then shows an error page)
MAX_WAIT_SECONDS = 30.0
#: longest pause between two attempts to open a file the ETL holds: its publishes last tenths of
#: a second, with short gaps between two stores', which a slower retry keeps missing
RETRY_MAX_SECONDS = 0.05
#: pause between two requests (a busy backend: ~20 requests per second)
PAUSE_SECONDS = 0.05
#: anomalies kept in full in the figures (all are counted)
KEPT_ANOMALIES = 50

#: per store: rows of how many runs (a store half-published would show two, or a short count)
BATCHES = (
    "SELECT ubicacion_id, count(DISTINCT batch_id), min(batch_id) FROM inventario_raw GROUP BY 1"
)


@dataclass
class ReaderFigures:
    requests: int = 0
    failed_opens: int = 0
    waited_requests: int = 0
    gave_up: int = 0
    longest_wait_seconds: float = 0.0
    longest_request_seconds: float = 0.0
    anomalies: int = 0
    half_published: int = 0
    """a store with some rows, but not its full count, or rows of two runs"""
    missing: int = 0
    """a store with no rows at all"""
    anomaly_samples: list[dict[str, object]] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        waits = sorted(self.waits)
        figures = asdict(self)
        figures.pop("waits")
        figures["p99_wait_seconds"] = waits[int(len(waits) * 0.99)] if waits else 0.0
        return figures


def open_read_only(db: Path, figures: ReaderFigures) -> duckdb.DuckDBPyConnection | None:
    """Open ``db`` read-only, retrying DuckDB's lock error for up to MAX_WAIT_SECONDS."""
    started = time.monotonic()
    pause = 0.01
    failed = 0
    while True:
        try:
            con = duckdb.connect(str(db), read_only=True)
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise
            failed += 1
            figures.failed_opens += 1
            if time.monotonic() - started > MAX_WAIT_SECONDS:
                figures.gave_up += 1
                return None
            time.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)
            continue
        if failed:
            waited = time.monotonic() - started
            figures.waited_requests += 1
            figures.waits.append(waited)
            figures.longest_wait_seconds = max(figures.longest_wait_seconds, waited)
        return con


def location_summary(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int, str]]:
    """store -> (products on the backend's dashboard, distinct batch ids, a batch id).

    The dashboard's own per-location summary (:data:`fluxion_etl.demo.backend.SUMMARY`:
    products, zero and negative stock, value, latest extraction), then the batch ids; both in
    one read-only connection, which no writer can change underneath.
    """
    products = {row[0]: int(row[3]) for row in con.execute(SUMMARY).fetchall()}
    batches = {row[0]: (int(row[1]), str(row[2])) for row in con.execute(BATCHES).fetchall()}
    return {store: (count, *batches.get(store, (0, ""))) for store, count in products.items()}


def request(db: Path, expected: dict[str, int], figures: ReaderFigures) -> None:
    """One backend request: open, summarise, check, close."""
    started = time.monotonic()
    con = open_read_only(db, figures)
    if con is None:
        return
    try:
        seen = location_summary(con)
    finally:
        con.close()
    figures.requests += 1
    figures.longest_request_seconds = max(
        figures.longest_request_seconds, time.monotonic() - started
    )
    for store, rows in expected.items():
        count, batches, batch = seen.get(store, (0, 0, ""))
        if count == rows and batches == 1:
            continue
        figures.anomalies += 1
        if count == 0:
            figures.missing += 1
        else:
            figures.half_published += 1
        if len(figures.anomaly_samples) < KEPT_ANOMALIES:
            figures.anomaly_samples.append(
                {
                    "at": time.time(),
                    "store": store,
                    "rows": count,
                    "expected": rows,
                    "batches": batches,
                    "batch_id": batch,
                }
            )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m fluxion_etl.demo.backend_reader DB EXPECTED_JSON OUT_JSON")
        return 2
    db, expected_file, out = Path(args[0]), Path(args[1]), Path(args[2])
    expected: dict[str, int] = json.loads(expected_file.read_text(encoding="utf-8"))
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    figures = ReaderFigures()
    print("reading", flush=True)
    while not stop.is_set():
        request(db, expected, figures)
        stop.wait(PAUSE_SECONDS)
    out.write_text(json.dumps(figures.summary(), indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
