"""The DuckDB target's side of freshness: each store's last success, read from the file's ledger.

The ages and what is stale are decided target-neutrally (:mod:`fluxion_etl.freshness`); this reads
the ``etl_ultima_carga`` view after a run, waiting politely for a file another process holds.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from pathlib import Path

import duckdb
import structlog

from fluxion_etl.errors import FluxionError
from fluxion_etl.freshness import Freshness, snapshot_age
from fluxion_etl.ledger import utcnow
from fluxion_etl.targets.duckdb.connect import TargetFile

#: How long the after-run read waits for another process holding the target. Short: the metrics
#: are a report, and the run's outcome (exit code, ledger) is already decided.
READ_LOCK_WAIT_SECONDS = 30.0

log = structlog.get_logger("fluxion_etl.targets.duckdb.freshness")



def last_successes(con: duckdb.DuckDBPyConnection) -> dict[str, dt.datetime]:
    """When each store last published successfully (empty for a target without a ledger)."""
    try:
        rows = con.execute(
            "SELECT ubicacion_id, ultima_actualizacion FROM etl_ultima_carga"
        ).fetchall()
    except duckdb.CatalogException:
        return {}
    return {str(store_id): when for store_id, when in rows if when is not None}


def from_ledger(
    con: duckdb.DuckDBPyConnection,
    store_ids: Sequence[str],
    stale_after_seconds: float,
    now: dt.datetime | None = None,
) -> Freshness:
    """The freshness of ``store_ids`` as the ledger on ``con`` records it."""
    now = now or utcnow()
    successes = last_successes(con)
    return Freshness(
        {store_id: snapshot_age(successes.get(store_id), now) for store_id in store_ids},
        stale_after_seconds,
    )


def read_freshness(
    database_path: Path,
    store_ids: Sequence[str],
    stale_after_seconds: float,
    stop: threading.Event | None = None,
) -> Freshness | None:
    """The freshness of ``store_ids`` after a run; None (and a warning) if it cannot be read.

    It goes through :class:`TargetFile` for its polite wait on a file another process holds;
    ``stop`` set (a signal in the run's tail) cuts that wait short, silently: the run's outcome
    is decided, and the CLI skips the metrics then.
    """
    if not database_path.exists():  # nothing was ever published here
        return Freshness(dict.fromkeys(store_ids), stale_after_seconds)
    target = TargetFile(database_path, READ_LOCK_WAIT_SECONDS, stop)
    try:
        return target.run(
            lambda con: from_ledger(con, store_ids, stale_after_seconds),
            interruptible=stop is not None,
        )
    except (FluxionError, duckdb.Error) as exc:
        if stop is not None and stop.is_set():
            return None
        log.warning(
            "could not read the snapshot ages; the store metrics go without them",
            phase="metrics",
            error=str(exc),
        )
        return None
