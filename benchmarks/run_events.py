"""The log events of the last run :func:`benchmark.measure` parsed, for the A/B scripts.

``benchmark.measure`` reads each fluxion run's JSON log to find its stores' spans and keeps
nothing else; ``fleet_ab.py`` and ``bulk_ab.py`` also want the run's timeline (when the target
was let go, how many openings). :func:`keep_events` wraps that parser once, so the scripts share
one copy instead of each patching it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import benchmark as bench

#: the last run's log lines (event, seconds since the spawn)
last_events: list[tuple[str, float]] = []
_store_spans = bench._store_spans


def _spy(reports: list[dict[str, Any]], zero: dt.datetime) -> Any:
    """benchmark.measure's own parser, which also keeps the events it saw."""
    last_events[:] = [
        (str(r["event"]), (dt.datetime.fromisoformat(r["timestamp"]) - zero).total_seconds())
        for r in reports
        if "timestamp" in r and "event" in r
    ]
    return _store_spans(reports, zero)


def keep_events() -> None:
    """From now on, every run :func:`benchmark.measure` parses leaves its events in
    :data:`last_events` (idempotent)."""
    bench._store_spans = _spy
