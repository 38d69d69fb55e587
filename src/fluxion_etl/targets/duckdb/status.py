"""What ``fluxion-etl status`` reports per store: its last run, and what the target serves now.

A failed run leaves the store's previous snapshot in place, so the last run's row count (0) is
not what the backend reads. Next to the last run, each store gets the rows the target holds for
it (``registros_servidos``) and when that snapshot was published (``fecha_publicacion``: the
``fecha_fin`` of the run whose ``batch_id`` the rows carry). Any report about a store's
snapshot (a held-back snapshot, its age) can start from these two values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from fluxion_etl.targets.duckdb.schema import last_runs


@dataclass(frozen=True)
class Served:
    """The snapshot the target serves for one store."""

    rows: int
    published: dt.datetime | None  # None: rows no fluxion run recorded (an old loader's)


def served_snapshots(con: duckdb.DuckDBPyConnection) -> dict[str, Served]:
    """Per store in ``inventario_raw``: its rows and when they were published.

    Counts per (store, batch) first, so the ledger join touches one row per snapshot, not one
    per product.
    """
    cursor = con.execute(
        """
        WITH snapshots AS (
            SELECT ubicacion_id, batch_id, count(*) AS registros
            FROM inventario_raw GROUP BY ubicacion_id, batch_id
        )
        SELECT s.ubicacion_id, sum(s.registros), max(e.fecha_fin)
        FROM snapshots s
        LEFT JOIN etl_ejecuciones e
          ON e.run_id = s.batch_id AND e.ubicacion_id = s.ubicacion_id AND e.estado = 'exitoso'
        GROUP BY s.ubicacion_id
        """
    )
    return {
        str(store): Served(int(rows), published) for store, rows, published in cursor.fetchall()
    }


def store_status(con: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    """The last ledger row per store plus ``registros_servidos`` and ``fecha_publicacion``."""
    rows = last_runs(con)  # first: a file without a ledger (CatalogException) has no runs
    served = served_snapshots(con)
    for row in rows:
        snapshot = served.get(str(row["ubicacion_id"]), Served(0, None))
        row["registros_servidos"] = snapshot.rows
        row["fecha_publicacion"] = snapshot.published
    return rows
