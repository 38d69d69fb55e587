"""How old each store's published snapshot is, and which stores are stale.

See docs/operations.md, "Per-store metrics and freshness".

A store that fails run after run keeps its last good snapshot (nothing half-written, ever), so a
run's exit code says nothing about how old the stock the backend serves is. The ledger does: the
age of a store's snapshot is the time since its last ``exitoso`` row (the ``etl_ultima_carga``
view). It is read after the run, so a store just published is seconds old. A store older than
``ETL_STALE_AFTER_SECONDS`` (default two schedule periods) is stale; so is one never published.

The run's metrics (``StoreSnapshotAgeSeconds``, ``StoresStale``) and ``fluxion-etl status`` both
take their ages from here; each target reads the last successes from its own ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fluxion_etl.ledger import utcnow


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


def add_freshness(rows: list[dict[str, Any]], stale_after_seconds: float) -> None:
    """Add ``snapshot_age_seconds`` and ``stale`` to ``fluxion-etl status``'s rows.

    The age counts from the store's last ``exitoso`` ledger row (``ultima_actualizacion``), as
    the run's metrics do. That is when the served snapshot was published (every successful run
    replaces the store's rows), and it also dates an accepted empty snapshot, which leaves no row
    to take ``fecha_publicacion`` from: that row's ``fecha_publicacion`` is the ledger's date
    then. A row without a publication date (rows no fluxion run recorded) gets no age.
    """
    now = utcnow()
    for row in rows:
        if row.get("fecha_publicacion") is None and not row.get("registros_servidos"):
            # an accepted empty snapshot leaves no row to date it: its ledger row does
            row["fecha_publicacion"] = row["ultima_actualizacion"]
        # never an age without the publication it counts from ("published" left blank)
        published = row.get("fecha_publicacion", row["ultima_actualizacion"])
        age = snapshot_age(row["ultima_actualizacion"] if published else None, now)
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
