"""Synthetic ready databases: what the publish step consumes, without a source server.

The publish tests and ``benchmarks/publish_sessions.py`` need many stores' ready databases (the
transform's output) to measure and check the publish alone. These come from the real staging
and transform code (:func:`fluxion_etl.run.stage.stage_batches`,
:func:`fluxion_etl.run.transform.transform_store`) fed with generated rows of chain-store widths, so
the copy under the write lock is the real one.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from fluxion_etl.run.stage import stage_batches
from fluxion_etl.run.transform import Transformed, transform_store
from fluxion_etl.source.query import STAGED_COLUMNS
from fluxion_etl.stores import Store

_NUMERIC = ("cantidad_actual", "costo_unitario_actual", "precio_venta_actual")
_CATEGORIES = ("VIVERES", "CHARCUTERIA", "FRUVER", "LIMPIEZA", "BEBIDAS", "PERFUMERIA")


def demo_store(index: int) -> Store:
    """The ``index``-th synthetic store (ids ``tienda_01``...), on an address nobody listens at."""
    return Store(
        f"tienda_{index:02d}",
        f"TIENDA {index}",
        "tienda",
        "127.0.0.1",
        9,
        "VAD10",
        f"{index:02d}02",
    )


def _rows(products: int, seed: int) -> pa.RecordBatch:
    rng = random.Random(seed)
    columns: dict[str, list[object]] = {name: [] for name in STAGED_COLUMNS}
    for i in range(products):
        values: dict[str, object] = {
            "origen_id": i,
            "codigo_producto": f"P{seed:03d}{i:06d}",
            "codigo_barras": f"759{rng.randrange(10**9):09d}",
            "descripcion_producto": f"PRODUCTO {i} " + "X" * rng.randrange(10, 60),
            "categoria": rng.choice(_CATEGORIES),
            "grupo": f"GRUPO {rng.randrange(40)}",
            "subgrupo": f"SUBGRUPO {rng.randrange(200)}",
            "marca": f"MARCA {rng.randrange(300)}",
            "presentacion": "UND",
            "cuadrante": f"C{rng.randrange(20)}",
            "cantidad_actual": Decimal(rng.randrange(-5, 500)),
            "costo_unitario_actual": Decimal(rng.randrange(1, 10**6)) / 100,
            "precio_venta_actual": Decimal(rng.randrange(1, 10**6)) / 100,
            "impuesto_porcentaje": "16.00",
            "peso_producto": "1.000",
            "volumen_producto": "0.000",
            "cantidad_bultos": "12",
            "tipo_peso": "0",
        }
        for name in STAGED_COLUMNS:
            columns[name].append(values[name])
    types = {name: pa.string() for name in STAGED_COLUMNS}
    types["origen_id"] = pa.int64()
    for name in _NUMERIC:
        types[name] = pa.decimal128(18, 4)
    return pa.RecordBatch.from_pydict(
        columns, schema=pa.schema([(name, types[name]) for name in STAGED_COLUMNS])
    )


def ready_database(
    directory: Path, store: Store, products: int, run_id: str, *, seed: int = 0
) -> Transformed:
    """Stage and transform ``products`` generated rows for ``store`` into ``directory``; the
    ready database (and its rows) that
    :meth:`fluxion_etl.targets.duckdb.publisher.Publisher.publish` copies."""
    staged = stage_batches(
        [_rows(products, seed)], directory / f"{store.id}.staged.parquet", store.id
    )
    return transform_store(
        staged, directory / f"{store.id}.ready.duckdb", store, run_id, dt.datetime.now(dt.UTC)
    )
