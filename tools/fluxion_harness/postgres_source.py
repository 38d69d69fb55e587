"""Write generated Stellar stores into PostgreSQL: the stand-in for the stores' SQL Servers.

Why PostgreSQL: the integration tests and the benchmarks need a real database server reached
over TCP through a real ODBC driver (psqlODBC), with one database per store like the chain's
``VAD10`` databases, and SQL Server cannot run in CI. The tables are created with unquoted
identifiers, which PostgreSQL folds to lower case, so the pipeline's ANSI query with Stellar's
unqualified mixed-case names runs against them unchanged.

psycopg2 is imported only when a function here needs it: it is a dev/benchmark dependency
(``fluxion[dev]``), not a runtime one, and importing this module must not require it.
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fluxion_etl.demo.stellar import SCHEMA, StellarStore, Table

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

__all__ = [
    "PgServer",
    "PgStore",
    "create_database",
    "create_store_database",
    "drop_database",
    "new_database_name",
    "postgres_ddl",
    "write_postgres",
]

_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_COPY_CHUNK_ROWS = 50_000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class PgServer:
    """Where a PostgreSQL server answers and the login to use (a CREATEDB role)."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    """Kept out of ``repr`` so it never lands in a test report or a log line."""

    def connect(self, database: str = "postgres", **options: Any) -> Connection:
        """A psycopg2 connection to `database` (extra keyword options go to psycopg2)."""
        import psycopg2

        options.setdefault("connect_timeout", 10)
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            **options,
        )

    def odbc_connection_string(self, database: str, *, driver: str = "PostgreSQL Unicode") -> str:
        """A psqlODBC connection string for `database`, built so no value can inject a keyword.

        The driver name and the password are braced (a ``}`` inside doubled, as the ODBC grammar
        requires), so ``;``, ``=``, braces and spaces in them are harmless. psqlODBC 13 strips
        braces only from ``Pwd`` (the driver manager handles ``Driver``): a braced ``Server``,
        ``Port``, ``Database`` or ``Uid`` reaches the server with its braces. Those values are
        therefore passed bare and refused if they hold ``;``, ``{``, ``}`` or edge spaces.
        """
        bare = {
            "Server": self.host,
            "Port": str(self.port),
            "Database": database,
            "Uid": self.user,
        }
        for key, value in bare.items():
            if not value or value != value.strip() or any(ch in value for ch in ";{}"):
                raise ValueError(f"{key}={value!r} cannot be written in a psqlODBC string")
        return (
            f"Driver={_odbc_braced(driver)};"
            + "".join(f"{key}={value};" for key, value in bare.items())
            + f"Pwd={_odbc_braced(self.password)};"
        )


def _odbc_braced(value: str) -> str:
    return "{" + value.replace("}", "}}") + "}"


@dataclass(frozen=True)
class PgStore:
    """A store whose Stellar tables live in their own PostgreSQL database."""

    id: str
    """Location id, e.g. 'tienda_02' or 'cedi_seco'."""
    name: str
    """Upper-case location name, e.g. 'MAÑONGO'."""
    database: str
    warehouse: str
    data: StellarStore
    """The generated tables and the expected published rows."""


def postgres_ddl(table: Table) -> str:
    """CREATE TABLE for `table` with PostgreSQL types and unquoted (lower-cased) identifiers.

    Keys and indexes are added after the load (`write_postgres`): building them once over the
    loaded rows is much faster than maintaining them row by row.
    """
    columns = []
    for c in table.columns:
        if c.kind == "decimal":
            sql_type = f"NUMERIC({c.size},{c.scale})"
        elif c.kind == "varchar":
            sql_type = f"VARCHAR({c.size})"
        else:
            sql_type = "INTEGER"
        not_null = " NOT NULL" if c.name in table.primary_key else ""
        columns.append(f"{c.name} {sql_type}{not_null}")
    return f"CREATE TABLE {table.name} (\n    " + ",\n    ".join(columns) + "\n)"


def _copy_line(row: tuple[object, ...]) -> str:
    """One row in COPY text format.

    Fast path (nearly every row): with no NULL, ``str`` of each value joined by tabs is already
    the COPY line if it holds exactly one tab per separator and no backslash, newline or
    carriage return -- then no value needed escaping. Otherwise each value is escaped.
    """
    if None not in row:
        line = "\t".join(map(str, row))
        if line.count("\t") == len(row) - 1 and not ("\\" in line or "\n" in line or "\r" in line):
            return line
    return "\t".join(
        "\\N" if v is None else v.translate(_COPY_ESCAPES) if isinstance(v, str) else str(v)
        for v in row
    )


def _copy_text(rows: Iterable[tuple[object, ...]]) -> Iterator[bytes]:
    """Rows in COPY text format, UTF-8 encoded, a chunk of rows at a time."""
    lines: list[str] = []
    for row in rows:
        lines.append(_copy_line(row))
        if len(lines) >= _COPY_CHUNK_ROWS:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def write_postgres(store: StellarStore, conn: Connection, encoding: str = "UTF8") -> None:
    """Write the store's tables into the database of the open psycopg2 connection `conn`.

    Existing Stellar tables are dropped first, so a rerun gives the same database. Rows are
    loaded with COPY (declared UTF-8, whatever the client encoding), then the primary keys and
    the indexes the query relies on are built and the tables analysed. Everything runs in one
    transaction (unless `conn` is in autocommit mode): committed on success, rolled back on error.
    The database must have the `encoding` the caller meant (UTF-8 unless a test asks for an old
    server's LATIN1): a database created with another one by accident would mangle 'Ñ'.
    """
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_encoding_to_char(encoding) FROM pg_database"
                " WHERE datname = current_database()"
            )
            (actual,) = cur.fetchone()
            if actual != encoding:
                raise ValueError(
                    f"database encoding is {actual}, not {encoding}: Stellar texts would not "
                    f"survive; create the database with ENCODING '{encoding}' TEMPLATE template0 "
                    "(fluxion_harness.postgres_source.create_database does)"
                )
            for table in reversed(SCHEMA):
                cur.execute(f"DROP TABLE IF EXISTS {table.name}")
            for table in SCHEMA:
                cur.execute(postgres_ddl(table))
                names, rows = store.tables[table.name]
                copy = (
                    f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
                    " WITH (FORMAT text, ENCODING 'UTF8')"
                )
                for chunk in _copy_text(rows):
                    cur.copy_expert(copy, io.BytesIO(chunk))
            for table in SCHEMA:
                if table.primary_key:
                    cur.execute(
                        f"ALTER TABLE {table.name} ADD PRIMARY KEY ({', '.join(table.primary_key)})"
                    )
                for index in table.indexes:
                    name = f"ix_{table.name}_{'_'.join(index)}".lower()
                    cur.execute(f"CREATE INDEX {name} ON {table.name} ({', '.join(index)})")
                cur.execute(f"ANALYZE {table.name}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def new_database_name(prefix: str = "fluxion_t_") -> str:
    """A fresh database name: `prefix` + 12 random hex digits (parallel runs never collide)."""
    name = prefix + secrets.token_hex(6)
    _check_name(name)
    return name


def _check_name(name: str) -> None:
    # Only plain lower-case names: they need no quoting anywhere (psql, ODBC strings, logs).
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"database name must match {_DATABASE_NAME.pattern}, got {name!r}")


def create_database(server: PgServer, name: str, encoding: str = "UTF8") -> None:
    """CREATE DATABASE `name`: UTF-8 (or `encoding`, e.g. LATIN1 like an old store server) with
    byte-order ("C") collation, so text survives exactly and string order (MIN of a code) is the
    same as Python's."""
    from psycopg2 import sql

    _check_name(name)
    conn = server.connect("postgres")
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "CREATE DATABASE {} ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
                ).format(sql.Identifier(name), sql.Literal(encoding))
            )
    finally:
        conn.close()


def drop_database(server: PgServer, name: str) -> None:
    """DROP DATABASE `name` if it exists, closing connections still open to it (e.g. a leaked
    ODBC connection of a failed test) instead of failing on them.

    A plain DROP first: it stops an autovacuum worker busy in the database by itself, where
    ``WITH (FORCE)`` refuses to, for a login that is not a superuser ("must be a member of the
    role whose process is being terminated"). FORCE only when sessions are still connected;
    should an autovacuum worker start in between, the pair is tried again.
    """
    import psycopg2
    from psycopg2 import sql
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

    _check_name(name)
    plain = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    force = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    conn = server.connect("postgres")
    try:
        conn.autocommit = True
        for attempt in Retrying(
            retry=retry_if_exception_type(psycopg2.errors.InsufficientPrivilege),
            stop=stop_after_attempt(10),
            wait=wait_fixed(0.5),
            reraise=True,
        ):
            with attempt, conn.cursor() as cur:
                try:
                    cur.execute(plain)
                except psycopg2.errors.ObjectInUse:  # sessions still connected: end them
                    cur.execute(force)
    finally:
        conn.close()


def create_store_database(
    server: PgServer, name: str, store: StellarStore, encoding: str = "UTF8"
) -> None:
    """Create database `name` and load `store` into it; on failure drop it again, so no
    half-loaded store database is ever left behind."""
    create_database(server, name, encoding)
    try:
        conn = server.connect(name)
        try:
            write_postgres(store, conn, encoding)
        finally:
            conn.close()
    except BaseException:
        drop_database(server, name)
        raise
