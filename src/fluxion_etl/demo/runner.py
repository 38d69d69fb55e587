"""``fluxion-etl demo``: the embedded default. Builds local Stellar-shaped store databases
(SQLite files, read through the real SQLite3 ODBC driver) and runs the real pipeline over them.

Store ids, names and warehouse codes come from the packaged example stores file, so the demo's
output looks like the chain's; only the databases are local files.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

from fluxion_etl.config import Settings
from fluxion_etl.demo.sqlite_source import write_sqlite
from fluxion_etl.demo.stellar import generate_store
from fluxion_etl.errors import ConfigError
from fluxion_etl.stores import Store, example_text, parse_stores

DEMO_DRIVER = "SQLite3"


def build_demo_stores(directory: Path, count: int, products: int) -> list[Store]:
    """Create ``count`` SQLite store databases of ``products`` products each in ``directory``."""
    examples = [store for store in parse_stores(tomllib.loads(example_text())) if store.active]
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
    return stores


def demo_settings(base: Settings, database: Path) -> Settings:
    """The run settings of the demo: the caller's, pointed at the demo target."""
    return replace(base, database_path=database, stores_file=None, selected_stores=())
