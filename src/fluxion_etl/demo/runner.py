"""``fluxion-etl demo``: the embedded default. Builds local Stellar-shaped store databases
(SQLite files, read through the real SQLite3 ODBC driver) and runs the real pipeline over them.

Store ids, names and warehouse codes come from the packaged example stores file, so the demo's
output looks like the chain's; only the databases are local files. The demo also writes a stores
file for them (``stores.toml``, beside the stores), so a newcomer can go on to ``fluxion-etl
check`` and ``run`` over the same stores. That file is written last and removed first: it exists
only while every store it names is complete.

The demo only ever replaces files it wrote itself: it marks its directory with :data:`MARKER`,
naming what it wrote there, and refuses (exit 2) a ``--db`` whose directory holds a stores file, a
DuckDB file or store databases it did not write -- such as the production ``/data/stores.toml``
next to ``/data/fluxion.duckdb``.
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
#: the file marking a directory as the demo's, listing (one a line) the names the demo wrote there
MARKER = ".fluxion-demo"
STORES_FILE = "stores.toml"
STORES_DIRECTORY = "stores"


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
    examples = check_demo_arguments(count, products)
    directory.mkdir(parents=True, exist_ok=True)
    stores = []
    for seed, example in enumerate(examples[:count], start=1):
        path = (directory / f"{example.id}.sqlite").resolve()
        write_sqlite(generate_store(example.warehouse, products, seed=seed), path)
        stores.append(replace(example, host="", port=1, database=str(path), driver=DEMO_DRIVER))
        if progress is not None:
            progress(len(stores), count, stores[-1])
    return stores


def check_demo_arguments(count: int, products: int) -> list[Store]:
    """The example stores the demo builds for ``--stores count``; ConfigError for bad arguments
    (checked before the demo touches any file)."""
    examples = demo_examples()
    if not 1 <= count <= len(examples):
        raise ConfigError(f"--stores must be between 1 and {len(examples)}")
    if products < 1:
        raise ConfigError("--rows must be at least 1")
    return examples[:count]


def claim_directory(database: Path) -> None:
    """Make ``database``'s directory the demo's, or refuse it (ConfigError) when it holds a
    stores file, that DuckDB file or store databases the demo did not write.

    What the demo wrote is listed in the directory's :data:`MARKER`, written here before anything
    else, so a demo stopped half-way still owns what it left.
    """
    directory = database.parent
    marker = directory / MARKER
    lines = marker.read_text(encoding="utf-8").splitlines() if marker.is_file() else []
    owned = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    stores = directory / STORES_DIRECTORY
    candidates = {
        STORES_FILE: (directory / STORES_FILE).exists(),
        database.name: database.exists(),
        f"{STORES_DIRECTORY}/": stores.is_dir() and any(stores.iterdir()),
    }
    foreign = [name for name, present in candidates.items() if present and name not in owned]
    if foreign:
        raise ConfigError(
            f"--db {database}: {directory} holds {', '.join(foreign)}, which the demo did not "
            "write; it never replaces them. Give --db a file in a new or empty directory "
            "(default: fluxion-demo/fluxion.duckdb)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    names = sorted(owned | set(candidates))
    marker.write_text(
        "# written by `fluxion-etl demo`: the files it wrote here (and may replace)\n"
        + "\n".join(names)
        + "\n",
        encoding="utf-8",
    )


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
