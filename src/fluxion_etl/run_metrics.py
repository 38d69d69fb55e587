"""The EMF lines a run prints: the run's document, then one per store (docs/operations.md, §1.7).

Built after the run from its ledger entries and the snapshot ages read back from the ledger
(:mod:`fluxion_etl.freshness`), which also give the run-level ``StoresStale``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from fluxion_etl.config import Settings
from fluxion_etl.freshness import Freshness
from fluxion_etl.ledger import LedgerEntry
from fluxion_etl.metrics import emf_line, store_emf_line
from fluxion_etl.targets import open_target


def metric_lines(
    run_values: Mapping[str, float],
    store_ids: Sequence[str],
    entries: Sequence[LedgerEntry],
    settings: Settings,
    run_id: str,
    *,
    reached_stores: bool = True,
    stop: threading.Event | None = None,
) -> list[str]:
    """The run's document (``run_values`` plus ``StoresStale``) and each store's, in order.

    A run that never reached a store (``reached_stores`` False: it failed before or outside
    them) reports its document alone: no snapshot ages are read (the target may be what
    failed), so no ``StoresStale`` and no store documents for stores it never got to. ``stop``
    set (a signal in the run's tail) cuts the wait for the target's lock short.
    """
    environment = settings.context.get("environment", "default")
    if not reached_stores:
        return [emf_line(run_values, environment, run_id)]
    freshness = open_target(settings, stop).freshness(store_ids, settings.stale_after_seconds)
    return [
        emf_line({**run_values, **stale_values(freshness)}, environment, run_id),
        *store_lines(store_ids, entries, freshness, environment, run_id),
    ]


def store_values(entry: LedgerEntry | None, age_seconds: float | None) -> dict[str, float]:
    """One store's metrics.

    A failed store published no rows and its duration is how long it took to fail (a timeout
    shows as a long bar). ``entry`` None: the run failed before or outside the stores, so, as
    for ``StoresFailed``, the store does not count as failed; only its age is reported. A store
    never published has no age: the value is left out rather than invented, and ``StoresStale``
    counts it.
    """
    values: dict[str, float] = {}
    if entry is not None:
        published = entry.state == "exitoso"
        counters = entry.counters if published else None
        values["StoreRowsPublished"] = counters.loaded if counters else 0
        values["StoreFailed"] = int(not published)
        values["StoreDurationSeconds"] = round(entry.seconds, 3)
    if age_seconds is not None:
        values["StoreSnapshotAgeSeconds"] = round(age_seconds, 3)
    return values


def stale_values(freshness: Freshness | None) -> dict[str, float]:
    """The run-level ``StoresStale``; nothing when the ages could not be read."""
    return {} if freshness is None else {"StoresStale": len(freshness.stale)}


def store_lines(
    store_ids: Sequence[str],
    entries: Sequence[LedgerEntry],
    freshness: Freshness | None,
    environment: str,
    run_id: str,
) -> list[str]:
    """One EMF line per store of the run that has something to report, in the run's order."""
    by_store = {entry.store_id: entry for entry in entries}
    ages = freshness.ages if freshness is not None else {}
    values = {
        store_id: store_values(by_store.get(store_id), ages.get(store_id)) for store_id in store_ids
    }
    return [
        store_emf_line(values[store_id], environment, store_id, run_id)
        for store_id in store_ids
        if values[store_id]
    ]
