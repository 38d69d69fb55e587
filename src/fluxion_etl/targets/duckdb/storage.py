"""The target file's DuckDB storage version: new files stay readable by the backend's DuckDB.

DuckDB writes files in the newest storage format of the release that creates them unless told
otherwise, and older releases refuse that format ("Trying to read a database file with version
number 999, but we can only read versions between 64 and 67" from DuckDB 1.4). The backend reads
the file with its own DuckDB (1.4 when the old loader was written), so fluxion creates new files
with DuckDB's ``storage_compatibility_version`` (``ETL_DUCKDB_STORAGE_VERSION``). DuckDB applies
the setting to new files only: an existing file keeps its version (verified with DuckDB 2.0.1
and 1.4.5), so fluxion never raises it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from fluxion_etl import duckdb_offline
from fluxion_etl.errors import ConfigError

#: Readable by every DuckDB 1.x release (1.0 .. 1.5) and later ones.
DEFAULT_STORAGE_VERSION = "v1.0.0"


def check_storage_version(value: str) -> str:
    """``value`` if DuckDB knows it as a storage version (``v1.0.0`` .. ``latest``); else exit 2.

    Asked of DuckDB itself (an in-memory database), so the list follows the installed release.
    """
    try:
        duckdb_offline.connect(config={"storage_compatibility_version": value}).close()
    except duckdb.Error:
        raise ConfigError(
            f"ETL_DUCKDB_STORAGE_VERSION={value!r} is not a DuckDB storage version "
            f"(e.g. {DEFAULT_STORAGE_VERSION}, v1.4.0, latest)"
        ) from None
    return value


def connect_config(storage_version: str) -> dict[str, str]:
    """The ``duckdb.connect`` config that creates a new file with ``storage_version``."""
    return {"storage_compatibility_version": storage_version}


#: What a writer of the target sets first (DuckDB ignores it in ``duckdb.connect``'s config).
#: No FSST for the target's strings: weighing it is the dearest part of a checkpoint, which every
#: publishing session pays when it lets go of the file. Measured on the fleet's file (13 stores
#: of 3,700 rows published): checkpoint 276 -> 202 ms of CPU, file 13.6 -> 15.7 MB, and the
#: backend's per-store aggregate 5.3 -> 3.4 ms (no FSST to decode). Any DuckDB reads such a file.
#: No vacuum in a writer's checkpoints: DuckDB's vacuum merges a row group holding deleted rows
#: with its neighbours, so the checkpoint closing each publish rewrote every other store's rows
#: in the row groups the store touched (up to 122,880 rows of 45 columns for a 2,000-row store).
#: Without it a checkpoint writes the new rows and the deletes only; a row group whose rows are
#: all deleted is still dropped, so a file re-published store by store does not grow. Measured
#: (200 stores of ~2,350 rows, republished): lock per store 142 -> 78 ms, closes 18 -> 5 s.
#: Every few openings one checkpoint does vacuum (publisher.VACUUM_EVERY_OPENINGS), merging the
#: small row groups the others leave, whose metadata every opening of the file reads.
WRITER_SETTINGS = "SET disabled_compression_methods = 'fsst'; SET max_vacuum_tasks = 0"


def attached_storage_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The storage version of ``con``'s main database (``v1.0.0+``), as DuckDB reports it."""
    row = con.execute(
        "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    tags = row[0] if row else None
    return tags.get("storage_version") if isinstance(tags, dict) else None


def file_storage_version(path: Path) -> str:
    """The storage version of the file at ``path``, for ``status`` and ``check``; never raises."""
    if not path.exists():
        return "no file yet"
    from fluxion_etl.targets.duckdb.connect import open_read_only  # connect imports this module

    try:
        con = open_read_only(path)
    except duckdb.Error as exc:
        return f"unknown ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    try:
        return attached_storage_version(con) or "unknown"
    finally:
        con.close()
