"""Where snapshots are published: one package per target behind one protocol.

:mod:`.base` holds the protocol (:class:`~fluxion_etl.targets.base.Target`) and what crosses it;
:mod:`.duckdb` (the embedded default, ``DATABASE_PATH``) and :mod:`.postgres` (the backend's
server, ``DATABASE_URL``) implement it. :func:`open_target` picks one from the settings, once; the
pipeline, ``status`` and ``check`` only see the protocol, so none of them branches on which
database it is.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from fluxion_etl.stores import Store
from fluxion_etl.targets.base import Target

if TYPE_CHECKING:  # for the annotation only: config imports the targets' setting rules
    from fluxion_etl.config import Settings


def open_target(
    settings: Settings,
    stop: threading.Event | None = None,
    logger: structlog.stdlib.BoundLogger | None = None,
    stores: Sequence[Store] = (),
) -> Target:
    """The target the settings name: PostgreSQL when ``DATABASE_URL`` is set, else DuckDB.

    ``stores`` are the run's locations: a layout that files them under warehouse codes
    (PostgreSQL's ``inventario_actual``) takes the codes from them.

    Each implementation is imported by name, here only (as dlt's destination factories do): a
    run on one target never loads the other's client libraries (psycopg and pgpq bring native
    code a DuckDB run does not need).
    """
    if settings.database_url:
        from fluxion_etl.targets.postgres.target import PostgresTarget

        return PostgresTarget.from_settings(settings, stop, logger, stores)
    from fluxion_etl.targets.duckdb.target import DuckDBTarget

    return DuckDBTarget.from_settings(settings, stop, logger)
