"""A reader that behaves like the chain's web backend, to measure what it sees while the ETL runs.

Per "request" it runs the per-location summary the backend's dashboard shows
(`fluxion_harness.backend.SUMMARY`: products, zero and negative stock, latest extraction) on the
target, the way a backend reaches it (:mod:`fluxion_harness.soak_target`):

* a DuckDB file is opened read-only per request and closed again -- short-lived connections, as a
  backend sharing the file with the ETL must use. When the ETL holds the file (a publish), the
  open fails with DuckDB's lock error; the reader retries with a short back-off up to a bound, as
  a backend should, and counts the failed opens and the longest wait;
* PostgreSQL is read on one pooled connection, each request one read-only transaction; a reader
  there must never wait for a publish, so every request's latency is what is measured.

Each answer is checked: every store present with its full row count, and one ``batch_id`` per
store (never half of one snapshot and half of another). A request that ends in an error the
backend would show (on PostgreSQL any error: a cancelled query, a lost connection, a missing table;
on the file, giving up waiting for it) is counted in ``errors``: the soak counts those as
violations too.

Run as ``python -m fluxion_harness.backend_reader TARGET EXPECTED_JSON OUT_JSON`` (TARGET a
DuckDB file or a ``postgresql://`` URL, with ``PGPASSWORD`` and ``DATABASE_SCHEMA`` in the
environment as for the CLI); it loops until SIGTERM/SIGINT, then writes its figures to OUT_JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

from fluxion_harness.soak_target import Summary, open_summary

#: a backend request gives up on the file after this long (then shows an error page)
MAX_WAIT_SECONDS = 30.0
#: longest pause between two attempts to open a file the ETL holds: its publishes last tenths of
#: a second, with short gaps between two stores', which a slower retry keeps missing
RETRY_MAX_SECONDS = 0.05
#: pause between two requests (a busy backend: ~20 requests per second)
PAUSE_SECONDS = 0.05
#: anomalies kept in full in the figures (all are counted)
KEPT_ANOMALIES = 50


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
    errors: int = 0
    """requests that ended in an error page (PostgreSQL: any error; the file: gave up waiting)"""
    anomaly_samples: list[dict[str, object]] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    """lock waits before a request could read (DuckDB: the file held by a publish)"""
    latencies: list[float] = field(default_factory=list)
    """every answered request, start to answer"""

    def record_error(self, error: BaseException) -> None:
        """A request the backend would answer with an error page."""
        self.errors += 1
        self.anomalies += 1
        if len(self.anomaly_samples) < KEPT_ANOMALIES:
            self.anomaly_samples.append(
                {"at": time.time(), "error": f"{type(error).__name__}: {error}".strip()}
            )

    def record_wait(self, seconds: float) -> None:
        self.waited_requests += 1
        self.waits.append(seconds)
        self.longest_wait_seconds = max(self.longest_wait_seconds, seconds)

    def summary(self) -> dict[str, object]:
        waits = sorted(self.waits)
        latencies = sorted(self.latencies)
        figures = asdict(self)
        figures.pop("waits")
        figures.pop("latencies")
        figures["p99_wait_seconds"] = _quantile(waits, 0.99)
        figures["p50_request_seconds"] = _quantile(latencies, 0.50)
        figures["p99_request_seconds"] = _quantile(latencies, 0.99)
        return figures


def _quantile(values: list[float], q: float) -> float:
    return values[min(int(len(values) * q), len(values) - 1)] if values else 0.0


def request(target: Summary, expected: dict[str, int], figures: ReaderFigures) -> None:
    """One backend request: summarise, check."""
    started = time.monotonic()
    seen = target.request()
    if seen is None:
        return
    seconds = time.monotonic() - started
    figures.requests += 1
    figures.latencies.append(seconds)
    figures.longest_request_seconds = max(figures.longest_request_seconds, seconds)
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
        print("usage: python -m fluxion_harness.backend_reader TARGET EXPECTED_JSON OUT_JSON")
        return 2
    expected_file, out = Path(args[1]), Path(args[2])
    expected: dict[str, int] = json.loads(expected_file.read_text(encoding="utf-8"))
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    figures = ReaderFigures()
    target = open_summary(args[0], os.environ, figures, MAX_WAIT_SECONDS, RETRY_MAX_SECONDS)
    print("reading", flush=True)
    try:
        while not stop.is_set():
            request(target, expected, figures)
            stop.wait(PAUSE_SECONDS)
    finally:
        target.close()
    out.write_text(json.dumps(figures.summary(), indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
