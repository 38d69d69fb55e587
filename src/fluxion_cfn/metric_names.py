"""The ETL's metrics as the stack's alarms and dashboard name them.

The names live in :mod:`fluxion_etl.metrics`, the module that prints them; these accessors fail
when the template is built if an alarm or a widget names a metric the ETL does not emit, or gives
it the wrong dimensions (a run metric has ``Environment`` only, a store metric also ``Store``):
CloudWatch would accept either mistake and show an empty graph or an alarm that never fires.
"""

from fluxion_etl.metrics import (
    ENVIRONMENT_DIMENSION,
    NAMESPACE,
    RUN_METRICS,
    STORE_DIMENSION,
    STORE_METRICS,
)

__all__ = ["ENVIRONMENT_DIMENSION", "NAMESPACE", "STORE_DIMENSION", "run_metric", "store_metric"]


def run_metric(name: str) -> str:
    """``name``, if the ETL emits it once per run (dimension Environment)."""
    if name not in RUN_METRICS:
        raise ValueError(f"{name!r} is not a run metric of fluxion_etl.metrics")
    return name


def store_metric(name: str) -> str:
    """``name``, if the ETL emits it once per store (dimensions Environment, Store)."""
    if name not in STORE_METRICS:
        raise ValueError(f"{name!r} is not a store metric of fluxion_etl.metrics")
    return name
