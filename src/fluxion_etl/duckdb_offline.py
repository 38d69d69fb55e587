"""Every DuckDB connection fluxion opens goes through :func:`connect`: none reaches the network.

DuckDB loads known extensions on demand and, when one is missing, downloads it from the
internet (``autoinstall_known_extensions``): a SQLite file given as ``DATABASE_PATH`` made it
fetch ``sqlite_scanner`` (about 3 s, then exit 1, leaving ``~/.duckdb/extensions/`` behind).
fluxion uses only what the Python wheel links in statically (core_functions, icu, json, parquet),
so both settings are off: such a file is refused at once with DuckDB's own error, and nothing is
ever downloaded or written under the home directory.
"""

from __future__ import annotations

import duckdb

#: DuckDB settings every connection of fluxion's gets: no extension loaded or installed on demand.
OFFLINE: dict[str, str | bool | int | float | list[str]] = {
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
}


def connect(
    database: str = ":memory:",
    *,
    read_only: bool = False,
    config: dict[str, str | bool | int | float | list[str]] | None = None,
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with :data:`OFFLINE` under ``config``."""
    return duckdb.connect(database, read_only=read_only, config={**OFFLINE, **(config or {})})
