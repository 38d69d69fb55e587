"""``fluxion-etl demo``: the embedded default. Builds local Stellar-shaped store databases
(SQLite files, read through the real SQLite3 ODBC driver) and runs the real pipeline over them.

Store ids, names and warehouse codes come from the packaged example stores file, so the demo's
output looks like the chain's; only the databases are local files. The demo also writes a stores
file for them (``stores.toml``, beside the stores), so a newcomer can go on to ``fluxion-etl
check`` and ``run`` over the same stores. That file is written last and removed first: it exists
only while every store it names is complete.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from fluxion_etl.config import Settings
from fluxion_etl.demo.sqlite_source import write_sqlite
from fluxion_etl.demo.stellar import generate_store
from fluxion_etl.errors import ConfigError
from fluxion_etl.stores import Store, example_text, parse_stores

DEMO_DRIVER = "SQLite3"


#: called after each demo store is built: (stores built so far, stores in all, the store)
BuildProgress = Callable[[int, int, Store], None]


def demo_examples() -> list[Store]:
    """The locations the demo builds, in order: every one of the example stores file (most are
    inactive there since they left Stellar; the demo runs them all)."""
    return [replace(store, active=True) for store in parse_stores(tomllib.loads(example_text()))]


def build_demo_stores(
    directory: Path, count: int, products: int, progress: BuildProgress | None = None
) -> list[Store]:
    """Create ``count`` SQLite store databases of ``products`` products each in ``directory``."""
    examples = demo_examples()
    if not 1 <= count <= len(examples):
        raise ConfigError(f"--stores must be between 1 and {len(examples)}")
    if products < 1:
        raise ConfigError("--rows must be at least 1")
    directory.mkdir(parents=True, exist_ok=True)
    stores = []
    for seed, example in enumerate(examples[:count], start=1):
        path = (directory / f"{example.id}.sqlite").resolve()
        write_sqlite(generate_store(example.warehouse, products, seed=seed), path)
        stores.append(replace(example, host="", port=1, database=str(path), driver=DEMO_DRIVER))
        if progress is not None:
            progress(len(stores), count, stores[-1])
    return stores


def stores_file_text(stores: Sequence[Store]) -> str:
    """A stores file (TOML) naming ``stores``; JSON's string escapes are valid TOML."""
    blocks = []
    for store in stores:
        fields = {
            "id": store.id,
            "name": store.name,
            "type": store.type,
            "database": store.database,
            "warehouse": store.warehouse,
            "driver": store.driver or DEMO_DRIVER,
        }
        lines = [
            f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items()
        ]
        blocks.append("[[stores]]\n" + "\n".join(lines) + "\n")
    return (
        "# The demo's stores (SQLite files read through the SQLite3 ODBC driver).\n\n"
        + "\n".join(blocks)
    )


def write_stores_file(stores: Sequence[Store], path: Path) -> None:
    """Write ``stores`` to ``path`` atomically (a temporary name, then a rename)."""
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(stores_file_text(stores), encoding="utf-8")
    os.replace(partial, path)


def demo_settings(base: Settings, database: Path) -> Settings:
    """The run settings of the demo: the caller's, pointed at the demo's DuckDB file, or at the
    PostgreSQL target when ``DATABASE_URL`` is set (in the layout ``ETL_TARGET_LAYOUT`` names).

    The demo rebuilds its stores from scratch each time, so a smaller ``--rows`` than last time
    is deliberate: the snapshot guard accepts every shrink here (``ETL_ACCEPT_SHRINK=all``).
    """
    return replace(
        base,
        database_path=base.database_path if base.database_url else database,
        stores_file=None,
        selected_stores=(),
        accept_shrink=("all",),
    )
