"""How old each store's published snapshot is, and which stores are stale (DESIGN §1.7).

A store that fails run after run keeps its last good snapshot (nothing half-written, ever), so a
run's exit code says nothing about how old the stock the backend serves is. The ledger does: the
age of a store's snapshot is the time since its last ``exitoso`` row (the ``etl_ultima_carga``
view). It is read after the run, so a store just published is seconds old. A store older than
``ETL_STALE_AFTER_SECONDS`` (default two schedule periods) is stale; so is one never published.

The run's metrics (``StoreSnapshotAgeSeconds``, ``StoresStale``) and ``fluxion-etl status`` both
take their ages from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import structlog

from fluxion_etl.errors import FluxionError
from fluxion_etl.ledger import utcnow
from fluxion_etl.publish import Target

#: How long the after-run read waits for another process holding the target. Short: the metrics
#: are a report, and the run's outcome (exit code, ledger) is already decided.
READ_LOCK_WAIT_SECONDS = 30.0

log = structlog.get_logger("fluxion_etl.freshness")


@dataclass(frozen=True)
class Freshness:
    """Each store's snapshot age in seconds (None: never published), against the threshold."""

    ages: Mapping[str, float | None]
    stale_after_seconds: float

    def is_stale(self, store_id: str) -> bool:
        age = self.ages.get(store_id)
        return age is None or age > self.stale_after_seconds

    @property
    def stale(self) -> tuple[str, ...]:
        return tuple(store_id for store_id in self.ages if self.is_stale(store_id))


def snapshot_age(last_success: dt.datetime | None, now: dt.datetime) -> float | None:
    """Seconds from ``last_success`` (naive UTC, as the ledger stores it) to ``now``."""
    if last_success is None:
        return None
    return max(0.0, (now - last_success).total_seconds())


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
    database_path: Path, store_ids: Sequence[str], stale_after_seconds: float
) -> Freshness | None:
    """The freshness of ``store_ids`` after a run; None (and a warning) if it cannot be read.

    It goes through :class:`Target` for its polite wait on a file another process holds.
    """
    if not database_path.exists():  # nothing was ever published here
        return Freshness(dict.fromkeys(store_ids), stale_after_seconds)
    target = Target(database_path, READ_LOCK_WAIT_SECONDS)
    try:
        return target.run(
            lambda con: from_ledger(con, store_ids, stale_after_seconds), interruptible=False
        )
    except (FluxionError, duckdb.Error) as exc:
        log.warning(
            "could not read the snapshot ages; the store metrics go without them",
            phase="metrics",
            error=str(exc),
        )
        return None


def add_freshness(rows: list[dict[str, Any]], stale_after_seconds: float) -> None:
    """Add ``snapshot_age_seconds`` and ``stale`` to ``fluxion-etl status``'s rows.

    The age counts from the store's last ``exitoso`` ledger row (``ultima_actualizacion``), as
    the run's metrics do. That is when the served snapshot was published (every successful run
    replaces the store's rows), and it also dates an accepted empty snapshot, which leaves no row
    to take ``fecha_publicacion`` from.
    """
    now = utcnow()
    for row in rows:
        age = snapshot_age(row["ultima_actualizacion"], now)
        row["snapshot_age_seconds"] = None if age is None else round(age, 3)
        row["stale"] = age is None or age > stale_after_seconds


def format_age(seconds: float | None) -> str:
    """``3d 4h``, ``5h 12m``, ``7m 3s``; ``never`` for a store never published."""
    if seconds is None:
        return "never"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"
