"""`status` per store: the last run next to the snapshot the target serves (real DuckDB)."""

import datetime as dt

import duckdb

from fluxion_etl.ledger import LedgerEntry, QualityCounters, utcnow
from fluxion_etl.targets.duckdb.schema import close_entry, migrate, open_run
from fluxion_etl.targets.duckdb.status import Served, served_snapshots, store_status


def _serve(con: duckdb.DuckDBPyConnection, store: str, batch: str, products: int) -> None:
    con.execute(
        "INSERT INTO inventario_raw (ubicacion_id, ubicacion_nombre, tipo_ubicacion, "
        "codigo_producto, cantidad_actual, estado_stock, fecha_extraccion, batch_id) "
        "SELECT ?, 'X', 'tienda', 'P' || i, 1, 'NORMAL', now(), ? FROM range(?) t(i)",
        [store, batch, products],
    )


def test_a_failed_store_shows_the_rows_it_still_serves_and_when_they_were_published() -> None:
    con = duckdb.connect()
    migrate(con)
    published = utcnow() - dt.timedelta(hours=6)
    open_run(con, "r1", ["tienda_01", "tienda_02"], "arrow")
    for store, products in (("tienda_01", 40), ("tienda_02", 25)):
        _serve(con, store, "r1", products)
        counters = QualityCounters(products, products, 0, 0, 0, 0, 0, 0)
        close_entry(con, LedgerEntry("r1", store, "exitoso", published, published, 1, "arrow",
                                     counters))  # fmt: skip
    open_run(con, "r2", ["tienda_01"], "arrow")
    now = utcnow()
    close_entry(con, LedgerEntry("r2", "tienda_01", "fallido", now, now, 3, "arrow",
                                 error_tipo="conexion", error_message="VPN down"))  # fmt: skip

    by_store = {row["ubicacion_id"]: row for row in store_status(con)}
    failed = by_store["tienda_01"]
    assert (failed["estado"], failed["registros_cargados"]) == ("fallido", 0)
    assert (failed["registros_servidos"], failed["fecha_publicacion"]) == (40, published)
    assert by_store["tienda_02"]["registros_servidos"] == 25


def test_rows_no_run_recorded_are_served_without_a_publish_time() -> None:
    con = duckdb.connect()
    migrate(con)
    _serve(con, "tienda_09", "old-loader", 7)
    assert served_snapshots(con) == {"tienda_09": Served(7, None)}
