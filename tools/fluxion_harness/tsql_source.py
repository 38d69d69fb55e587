"""Write generated Stellar stores into a T-SQL server (Babelfish for PostgreSQL, started by
scripts/tsql-server.sh): the production path, SQL Server's types through SQL Server's drivers.

The tables get the types a SQL Server back office of this kind has (../shared/SOURCE_SYSTEM.md):
``varchar`` texts in ``SQL_Latin1_General_CP1_CI_AS`` (code page 1252: ``Ñ`` and accents are
single bytes), some ``nvarchar``, ``float`` stock quantities, ``decimal(18,4)`` costs and a
``money`` price, ``bit``/``int`` flags, a ``datetime`` and space-padded ``char`` codes (the
warehouse and department codes), so the driver hands fluxion what a real store's does.

Two things differ from the generator's rows, both forced by the types and neither visible in
what a correct pipeline publishes:

* A code-page-1252 ``varchar`` cannot hold a combining accent: the generator's NFD-decomposed
  texts (its dirty-text trap) are written NFC-composed into ``varchar`` columns, as a
  back office typing into a CP1252 column stores them. The ``nvarchar`` columns (brand, shelf
  zone, department names) keep them decomposed, so NFD still reaches the pipeline there.
* Product codes (``c_Codigo``, ``c_codarticulo``, ``c_CodNasa``) are case-sensitive
  (``SQL_Latin1_General_CP1_CS_AS``): the generator's "twin" codes differ only by case, which a
  case-insensitive primary key would refuse and a case-insensitive join would multiply.

Rows go in as multi-row ``INSERT ... VALUES`` batches with literals (1,000 rows a statement, the
T-SQL limit): one round trip per thousand rows instead of one per row.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyodbc

from fluxion_etl.demo.stellar import SCHEMA, StellarStore, Table

CI = "COLLATE SQL_Latin1_General_CP1_CI_AS"
CS = "COLLATE SQL_Latin1_General_CP1_CS_AS"

#: T-SQL type of each column that is not plain ``varchar(n) CI`` / ``decimal(p,s)`` / ``int``
TSQL_TYPES: dict[tuple[str, str], str] = {
    ("MA_DEPOPROD", "c_coddeposito"): f"char(10) {CI}",
    ("MA_DEPOPROD", "c_codarticulo"): f"varchar(20) {CS}",
    ("MA_DEPOPROD", "n_cantidad"): "float",
    ("MA_PRODUCTOS", "c_Codigo"): f"varchar(20) {CS}",
    ("MA_PRODUCTOS", "c_Departamento"): f"char(10) {CI}",
    ("MA_PRODUCTOS", "c_Marca"): "nvarchar(60)",
    ("MA_PRODUCTOS", "Text2"): "nvarchar(60)",
    ("MA_PRODUCTOS", "n_Precio1"): "money",
    ("MA_PRODUCTOS", "n_Activo"): "bit",
    ("MA_CODIGOS", "c_CodNasa"): f"varchar(20) {CS}",
    ("MA_CODIGOS", "nu_Intercambio"): "bit",
    ("MA_DEPARTAMENTOS", "C_CODIGO"): f"char(10) {CI}",
    ("MA_DEPARTAMENTOS", "C_DESCRIPCIO"): "nvarchar(60)",
    ("MA_GRUPOS", "c_departamento"): f"char(10) {CI}",
    ("MA_SUBGRUPOS", "c_in_departamento"): f"char(10) {CI}",
    ("MA_DEPOSITO", "c_coddeposito"): f"char(10) {CI}",
}
#: columns the generator does not fill, as a real back office has them (the query reads none)
EXTRA_COLUMNS: dict[str, str] = {
    "MA_PRODUCTOS": "f_Actualizacion datetime NOT NULL DEFAULT GETDATE()",
    "MA_DEPOPROD": "f_Conteo datetime NULL",
}
_ROWS_PER_INSERT = 1000  # T-SQL's limit for a VALUES list
_STATEMENTS_PER_BATCH = 5

#: The Linux build inside the ``mssql-python-odbc`` wheel, relative to its package directory.
_MSSQL_BUILD = Path("libs/linux/debian_ubuntu/x86_64")
#: Where Debian's tdsodbc puts FreeTDS's ODBC driver.
_FREETDS_LIBRARIES = (
    Path("/usr/lib/x86_64-linux-gnu/odbc/libtdsodbc.so"),
    Path("/usr/lib/aarch64-linux-gnu/odbc/libtdsodbc.so"),
)


def mssql_driver_library() -> Path | None:
    """The wheel's ``libmsodbcsql-18*.so`` (Microsoft ODBC Driver 18), if the wheel is installed."""
    try:
        import mssql_python_odbc
    except ImportError:
        return None
    build = Path(mssql_python_odbc.__file__).parent / _MSSQL_BUILD
    libraries = sorted((build / "lib").glob("libmsodbcsql-18*.so*"))
    if not libraries or not (build / "share/resources/en_US").is_dir():
        return None
    return libraries[-1]


def freetds_driver_library() -> Path | None:
    """FreeTDS's ODBC driver (Debian package ``tdsodbc``), if installed."""
    return next((p for p in _FREETDS_LIBRARIES if p.exists()), None)


@dataclass(frozen=True)
class TsqlServer:
    """Where the T-SQL server answers (TDS) and the login to use (a sysadmin of Babelfish)."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    pg_port: int = 15433
    """Babelfish's PostgreSQL port (same login): for what T-SQL cannot do in a test."""

    def connect(self, database: str = "master", *, autocommit: bool = True) -> pyodbc.Connection:
        """A pyodbc connection through Microsoft's ODBC Driver 18, loaded by its path (no
        odbcinst.ini entry needed in this process)."""
        library = mssql_driver_library()
        if library is None:
            raise RuntimeError("mssql-python-odbc (Microsoft ODBC Driver 18) is not installed")
        return pyodbc.connect(
            f"Driver={{{library}}};Server=tcp:{self.host},{self.port};Database={database};"
            f"UID={self.user};PWD={{{self.password.replace('}', '}}')}}};"
            "Encrypt=yes;TrustServerCertificate=yes;APP=fluxion-tests;",
            autocommit=autocommit,
            timeout=15,
        )


@dataclass(frozen=True)
class TsqlStore:
    """A store whose Stellar tables live in their own database of the T-SQL server."""

    id: str
    name: str
    database: str
    warehouse: str
    data: StellarStore
    driver: str = "ODBC Driver 18 for SQL Server"
    """The ODBC driver its stores-file entry names (the production default, or FreeTDS)."""


def new_database_name(prefix: str = "fluxion_t_") -> str:
    """A fresh, lower-case database name (Babelfish folds database names to lower case)."""
    return prefix + secrets.token_hex(6)


def tsql_ddl(table: Table) -> str:
    """CREATE TABLE for ``table`` with SQL Server's types, in Stellar's spelling."""
    columns = []
    for c in table.columns:
        sql_type = TSQL_TYPES.get((table.name, c.name))
        if sql_type is None:
            if c.kind == "varchar":
                sql_type = f"varchar({c.size}) {CI}"
            elif c.kind == "decimal":
                sql_type = f"decimal({c.size},{c.scale})"
            else:
                sql_type = "int"
        null = " NOT NULL" if c.name in table.primary_key else " NULL"
        columns.append(f"{c.name} {sql_type}{null}")
    if table.name in EXTRA_COLUMNS:
        columns.append(EXTRA_COLUMNS[table.name])
    return f"CREATE TABLE dbo.{table.name} (\n    " + ",\n    ".join(columns) + "\n)"


def _is_varchar(sql_type: str) -> bool:
    return sql_type.startswith(("varchar", "char"))


def _column_types(table: Table) -> list[str]:
    types = []
    for c in table.columns:
        default = "varchar" if c.kind == "varchar" else c.kind
        types.append(TSQL_TYPES.get((table.name, c.name), default))
    return types


def literal(value: object, sql_type: str) -> str:
    """``value`` as a T-SQL literal for a column of ``sql_type``.

    Texts for ``varchar``/``char`` columns are NFC-composed and must then fit code page 1252
    (a ``ValueError`` otherwise: the test data would silently change); ``nvarchar`` texts are
    sent as they are, ``N'...'``.
    """
    if value is None:
        return "NULL"
    if isinstance(value, str):
        if _is_varchar(sql_type):
            value = unicodedata.normalize("NFC", value)
            value.encode("cp1252")  # raises UnicodeEncodeError (a ValueError) if it cannot fit
        return "N'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise TypeError(f"no T-SQL literal for {type(value).__name__} {value!r}")


def insert_statements(
    table: Table, names: list[str], rows: Iterable[tuple[object, ...]]
) -> Iterator[str]:
    """Multi-row INSERTs for ``rows`` of ``table`` (columns ``names``), 1,000 rows each."""
    types = dict(zip(table.column_names, _column_types(table), strict=True))
    column_types = [types[n] for n in names]
    head = f"INSERT INTO dbo.{table.name} ({', '.join(names)}) VALUES\n"
    values: list[str] = []
    for row in rows:
        values.append(
            "(" + ", ".join(literal(v, t) for v, t in zip(row, column_types, strict=True)) + ")"
        )
        if len(values) == _ROWS_PER_INSERT:
            yield head + ",\n".join(values)
            values = []
    if values:
        yield head + ",\n".join(values)


def write_tsql(store: StellarStore, conn: pyodbc.Connection) -> None:
    """Create the Stellar tables in the database of ``conn`` and load ``store`` into them, then
    add the primary keys and the indexes the query relies on."""
    cursor = conn.cursor()
    for table in reversed(SCHEMA):
        cursor.execute(f"DROP TABLE IF EXISTS dbo.{table.name}")
    for table in SCHEMA:
        cursor.execute(tsql_ddl(table))
        names, rows = store.tables[table.name]
        batch: list[str] = []
        for statement in insert_statements(table, names, rows):
            batch.append(statement)
            if len(batch) == _STATEMENTS_PER_BATCH:
                cursor.execute(";\n".join(batch))
                batch = []
        if batch:
            cursor.execute(";\n".join(batch))
    for table in SCHEMA:
        if table.primary_key:
            cursor.execute(
                f"ALTER TABLE dbo.{table.name} ADD CONSTRAINT pk_{table.name.lower()} "
                f"PRIMARY KEY ({', '.join(table.primary_key)})"
            )
        for index in table.indexes:
            name = f"ix_{table.name}_{'_'.join(index)}".lower()
            cursor.execute(f"CREATE INDEX {name} ON dbo.{table.name} ({', '.join(index)})")
    cursor.close()


def create_database(server: TsqlServer, name: str) -> None:
    with contextlib.closing(server.connect("master")) as conn:
        conn.cursor().execute(f"CREATE DATABASE {name}")


def drop_database(server: TsqlServer, name: str) -> None:
    """DROP DATABASE ``name`` if it exists, ending the sessions still using it first (KILL ends
    a session asynchronously, so the DROP is tried again for a few seconds)."""
    with contextlib.closing(server.connect("master")) as conn:
        cursor = conn.cursor()
        for attempt in range(20):
            sessions = cursor.execute(
                "SELECT session_id FROM sys.dm_exec_sessions WHERE database_id = DB_ID(?) "
                "AND session_id <> @@SPID",
                name,
            ).fetchall()
            for (spid,) in sessions:
                with contextlib.suppress(pyodbc.Error):  # already gone
                    cursor.execute(f"KILL {int(spid)}")
            try:
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")
                return
            except pyodbc.Error:
                if attempt == 19:
                    raise
                time.sleep(0.5)


def create_store_database(server: TsqlServer, name: str, store: StellarStore) -> None:
    """Create database ``name`` and load ``store`` into it; drop it again on failure."""
    create_database(server, name)
    try:
        with contextlib.closing(server.connect(name)) as conn:
            write_tsql(store, conn)
    except BaseException:
        drop_database(server, name)
        raise


def odbcinst_ini(directory: Path) -> Path:
    """Write ``directory``/odbcinst.ini registering Microsoft's ODBC Driver 18 (the wheel's
    build) under its production name and FreeTDS under ``FreeTDS``: point ODBCSYSINI at
    ``directory`` for a child process. A driver that is not installed is left out."""
    lines = []
    mssql = mssql_driver_library()
    if mssql is not None:
        lines += [
            "[ODBC Driver 18 for SQL Server]",
            "Description=Microsoft ODBC Driver 18 for SQL Server",
            f"Driver={mssql}",
            "UsageCount=1",
            "",
        ]
    freetds = freetds_driver_library()
    if freetds is not None:
        lines += ["[FreeTDS]", "Description=FreeTDS", f"Driver={freetds}", "UsageCount=1", ""]
    path = directory / "odbcinst.ini"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
