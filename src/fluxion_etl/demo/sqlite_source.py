"""Write a generated Stellar store into a SQLite file: the demo's embedded source.

Why SQLite: the demo has to run on a laptop with no SQL Server and no VPN, yet still exercise the
real extraction path (ODBC, the same ANSI query). The file is read through the SQLite3 ODBC driver
(``libsqliteodbc``: ``Driver=SQLite3;Database=<path>;``).

The DDL keeps Stellar's mixed-case names; SQLite compares identifiers case-insensitively, so the
query's unqualified names resolve as they do on SQL Server. DECIMAL columns get NUMERIC affinity:
the values are bound as text, and SQLite stores each one as an exact INTEGER when it is whole
(``'12.000'`` -> 12) or as the nearest REAL otherwise.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path

from fluxion_etl.demo.stellar import SCHEMA, StellarStore, Table

__all__ = ["sqlite_ddl", "write_sqlite"]


def sqlite_ddl(table: Table) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements for `table`, in Stellar's spelling."""
    columns = [f"{c.name} {c.sql_type}" for c in table.columns]
    if table.primary_key:
        columns.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
    statements = [f"CREATE TABLE {table.name} (\n    " + ",\n    ".join(columns) + "\n)"]
    for index in table.indexes:
        name = f"ix_{table.name}_{'_'.join(index)}".lower()
        statements.append(f"CREATE INDEX {name} ON {table.name} ({', '.join(index)})")
    return statements


def _as_sqlite(rows: Iterable[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
    """Rows with every Decimal replaced by its exact text (sqlite3 has no Decimal adapter)."""
    for row in rows:
        yield tuple(str(v) if type(v) is Decimal else v for v in row)


def write_sqlite(store: StellarStore, path: Path) -> None:
    """Create the SQLite file at `path` with the store's tables, replacing any existing file.

    The file is built under a temporary name in the same directory and renamed into place,
    so a reader never sees a half-written source and a failure leaves the old file intact.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # A throw-away file until the rename: no journal, no fsync per statement.
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("BEGIN")
            for table in SCHEMA:
                for statement in sqlite_ddl(table):
                    conn.execute(statement)
                names, rows = store.tables[table.name]
                marks = ", ".join("?" for _ in names)
                conn.executemany(
                    f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})",
                    _as_sqlite(rows),
                )
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
        finally:
            conn.close()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
