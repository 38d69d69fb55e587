"""CloudWatch Embedded Metric Format: JSON lines that CloudWatch Logs turns into metrics.

The stack's alarms and dashboard read these, namespace ``Fluxion/ETL``. No agent and no API
call: the lines go to stdout, which awslogs ships. A run prints one document with the run-level
metrics (dimension ``Environment``), then one per store of the run (dimensions ``Environment``,
``Store``), so the dashboard can draw every store's rows, duration and snapshot age without the
template knowing the store ids.

This module is the one place the metric names live: ``fluxion_cfn`` imports them for its alarms
and dashboard, and :func:`emf_line` refuses a name that is not here. It stays free of heavy
imports for that reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

NAMESPACE = "Fluxion/ETL"
#: Dimension of every document; its value is the task's ENVIRONMENT.
ENVIRONMENT_DIMENSION = "Environment"
#: Second dimension of the per-store documents; its value is the store id.
STORE_DIMENSION = "Store"

#: Run-level metrics (one document per run), name -> CloudWatch unit.
RUN_METRICS: Mapping[str, str] = {
    "RunSucceeded": "Count",
    "RunFailed": "Count",
    "StoresFailed": "Count",
    "StoresHeldBack": "Count",
    "StoresStale": "Count",
    "RowsPublished": "Count",
    "DurationSeconds": "Seconds",
    "LockHeldSeconds": "Seconds",
}

#: Per-store metrics (one document per store of the run), name -> CloudWatch unit.
STORE_METRICS: Mapping[str, str] = {
    "StoreRowsPublished": "Count",
    "StoreDurationSeconds": "Seconds",
    "StoreFailed": "Count",
    "StoreSnapshotAgeSeconds": "Seconds",
}


def emf_line(values: Mapping[str, float], environment: str, run_id: str) -> str:
    """The run's EMF document: ``values`` (names from :data:`RUN_METRICS`) for ``environment``."""
    return _document(values, RUN_METRICS, {ENVIRONMENT_DIMENSION: environment}, run_id)


def store_emf_line(
    values: Mapping[str, float], environment: str, store_id: str, run_id: str
) -> str:
    """One store's EMF document: ``values`` (names from :data:`STORE_METRICS`)."""
    dimensions = {ENVIRONMENT_DIMENSION: environment, STORE_DIMENSION: store_id}
    return _document(values, STORE_METRICS, dimensions, run_id)


def _document(
    values: Mapping[str, float],
    units: Mapping[str, str],
    dimensions: Mapping[str, str],
    run_id: str,
) -> str:
    unknown = set(values) - set(units)
    if unknown:
        raise ValueError(f"unknown metric(s): {sorted(unknown)}")
    document: dict[str, object] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": units[name]} for name in values],
                }
            ],
        },
        **dimensions,
        "run_id": run_id,
        **values,
    }
    return json.dumps(document, separators=(",", ":"))
