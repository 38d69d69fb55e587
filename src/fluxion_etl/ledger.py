"""The run ledger's entries, ``etl_ejecuciones``, as both targets write them.

One row per (run, store). A store's row is opened ``en_proceso`` when the run starts and closed
in the same transaction as the data it describes (each target's publish), so the ledger never
claims a snapshot that is not there. This module is the target-neutral half: the entry, its
states and error kinds, and the row it maps to; each target writes that row in its own SQL
(:mod:`fluxion_etl.targets.duckdb.schema`, :mod:`fluxion_etl.targets.postgres.schema`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, get_args

from fluxion_etl.errors import ErrorTipo

ETL_TIPO = "inventario"

#: A ledger row's ``estado``: open while the run works on the store, then one of the three ends.
State = Literal["en_proceso", "exitoso", "fallido", "interrumpido"]
STATES: tuple[State, ...] = get_args(State)


def utcnow() -> dt.datetime:
    """Naive UTC, the convention of every TIMESTAMP column fluxion writes."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class QualityCounters:
    """What the transform saw; written to the ledger next to the row counts."""

    extracted: int
    loaded: int
    rejected: int
    duplicates: int
    negative_stock: int
    missing_price: int
    missing_description: int
    invalid_values: int


@dataclass(frozen=True)
class LedgerEntry:
    """The outcome of one store in one run, as the ledger records it."""

    run_id: str
    store_id: str
    state: State
    started: dt.datetime
    finished: dt.datetime
    attempts: int
    engine: str
    counters: QualityCounters | None = None
    error_tipo: ErrorTipo | None = None
    error_message: str | None = None
    guard_note: str | None = None
    """A snapshot the guard would have held back, published because the operator accepted it."""

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()


def ledger_row(entry: LedgerEntry) -> dict[str, object]:
    """The ledger row that closes ``entry``, column by column: what both targets write (each in
    its own SQL), so the counters' columns are mapped in one place."""
    counters = entry.counters
    return {
        "run_id": entry.run_id,
        "etl_tipo": ETL_TIPO,
        "ubicacion_id": entry.store_id,
        "estado": entry.state,
        "fecha_inicio": entry.started,
        "fecha_fin": entry.finished,
        "duracion_segundos": round(entry.seconds, 3),
        "registros_extraidos": counters.extracted if counters else None,
        "registros_cargados": counters.loaded if counters else 0,
        "error_tipo": entry.error_tipo,
        "error_mensaje": entry.error_message,
        "intentos": entry.attempts,
        "registros_rechazados": counters.rejected if counters else None,
        "registros_duplicados": counters.duplicates if counters else None,
        "registros_stock_negativo": counters.negative_stock if counters else None,
        "registros_sin_precio": counters.missing_price if counters else None,
        "registros_sin_descripcion": counters.missing_description if counters else None,
        "registros_valores_invalidos": counters.invalid_values if counters else None,
        "motor": entry.engine,
        "guardia_aceptada": entry.guard_note,
    }
