"""CloudWatch Embedded Metric Format: one JSON line that CloudWatch Logs turns into metrics.

The stack's alarms (failed runs, duration over the limit, no successful run in two periods)
read these, namespace ``Fluxion/ETL``, dimension ``Environment``. No agent and no API call:
the line goes to stdout, which awslogs ships.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

NAMESPACE = "Fluxion/ETL"

_UNITS = {
    "RunSucceeded": "Count",
    "RunFailed": "Count",
    "StoresFailed": "Count",
    "StoresHeldBack": "Count",
    "RowsPublished": "Count",
    "DurationSeconds": "Seconds",
    "LockHeldSeconds": "Seconds",
}


def emf_line(values: Mapping[str, float], environment: str, run_id: str) -> str:
    """One EMF document with ``values`` (names from :data:`_UNITS`) for ``environment``."""
    unknown = set(values) - set(_UNITS)
    if unknown:
        raise ValueError(f"unknown metric(s): {sorted(unknown)}")
    document: dict[str, object] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Environment"]],
                    "Metrics": [{"Name": name, "Unit": _UNITS[name]} for name in values],
                }
            ],
        },
        "Environment": environment,
        "run_id": run_id,
        **values,
    }
    return json.dumps(document, separators=(",", ":"))
