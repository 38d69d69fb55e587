"""ODBC connection strings, per driver family, with values escaped the way ODBC wants.

The driver family is inferred from the driver's name, because each family spells its keywords
differently (``Server=tcp:h,p`` for Microsoft's drivers, ``Server``/``Port`` for FreeTDS and
psqlODBC, a file path for SQLite). Values that contain ``; { } =`` or edge spaces are wrapped in
braces with ``}`` doubled, so a password such as ``a;b}c`` reaches the server intact.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials
from fluxion_etl.stores import Store


class DriverFamily(Enum):
    MSSQL = "mssql"
    FREETDS = "freetds"
    POSTGRES = "postgres"
    SQLITE = "sqlite"

    @property
    def needs_credentials(self) -> bool:
        return self is not DriverFamily.SQLITE

    @property
    def uses_network(self) -> bool:
        return self is not DriverFamily.SQLITE


def driver_family(driver: str) -> DriverFamily:
    """Infer the keyword family from an ODBC driver name (as in odbcinst.ini)."""
    name = driver.lower()
    if "freetds" in name or name == "tds":
        return DriverFamily.FREETDS
    if "sql server" in name:
        return DriverFamily.MSSQL
    if "postgres" in name or "psqlodbc" in name:
        return DriverFamily.POSTGRES
    if "sqlite" in name:
        return DriverFamily.SQLITE
    raise ValueError(
        f"unsupported ODBC driver {driver!r}: use a Microsoft SQL Server driver, FreeTDS, "
        "PostgreSQL Unicode or SQLite3"
    )


def sqlite_read_only_uri(path: str) -> str:
    """``path`` as a read-only SQLite URI (``file:/data/x.sqlite?mode=ro``), percent-encoding
    every character but letters, digits, ``/_.-~`` (so ``? # % ; { } =`` and spaces are safe)."""
    return f"file:{quote(path, safe='/')}?mode=ro"


def odbc_value(value: str) -> str:
    """Escape one connection-string value (ODBC: braces, with ``}`` doubled inside)."""
    if value == "" or any(c in value for c in ";{}=") or value != value.strip():
        return "{" + value.replace("}", "}}") + "}"
    return value


@dataclass(frozen=True)
class ConnectionString:
    """A built connection string; its repr never shows the text (it may hold a password)."""

    text: str
    family: DriverFamily

    def __repr__(self) -> str:
        return f"ConnectionString(family={self.family.value}, text='***')"

    __str__ = __repr__


def build_connection_string(
    store: Store,
    driver: str,
    credentials: Credentials | None,
    connect_timeout_seconds: int = 15,
) -> ConnectionString:
    """The connection string for ``store``, with credentials when the family needs them."""
    family = driver_family(driver)
    parts: list[tuple[str, str]] = [("Driver", driver)]
    if family is DriverFamily.MSSQL:
        parts += [
            ("Server", f"tcp:{store.host},{store.port}"),
            ("Database", store.database),
            # Stellar servers sit behind the VPN with self-signed certificates: encrypt, trust.
            ("Encrypt", "yes"),
            ("TrustServerCertificate", "yes"),
            ("Connection Timeout", str(connect_timeout_seconds)),
            ("APP", "fluxion-etl"),
        ]
    elif family is DriverFamily.FREETDS:
        parts += [
            ("Server", store.host),
            ("Port", str(store.port)),
            ("Database", store.database),
            ("TDS_Version", "7.4"),
            ("ClientCharset", "UTF-8"),
        ]
    elif family is DriverFamily.POSTGRES:
        parts += [
            ("Server", store.host),
            ("Port", str(store.port)),
            ("Database", store.database),
            # Without a server-side cursor psqlODBC buffers the whole result set in the driver,
            # so memory would grow with the store's size: fetch through a cursor instead.
            ("UseDeclareFetch", "1"),
            ("Fetch", "10000"),
        ]
    else:
        # A source is only read: open the file read-only (an SQLite URI, which the SQLite3
        # driver passes on with SQLITE_OPEN_URI) and never create it (NoCreat: a missing file
        # is a failed connection, not a new empty database at the store's path).
        parts += [
            ("Database", sqlite_read_only_uri(store.database)),
            ("NoCreat", "1"),
            ("Timeout", "5000"),
        ]
    if family.needs_credentials and credentials is not None:
        parts += [("UID", credentials.user), ("PWD", credentials.password)]
    # The SQLite3 driver reads no braces (``{...}`` is taken as part of the file name); its
    # Database is a URI whose every special character is percent-encoded, so it needs none.
    raw = {"Database"} if family is DriverFamily.SQLITE else set()
    text = (
        ";".join(f"{key}={value if key in raw else odbc_value(value)}" for key, value in parts)
        + ";"
    )
    return ConnectionString(text, family)


def connection_for(
    store: Store, settings: Settings, credentials: Credentials | None
) -> ConnectionString:
    """The store's connection string under the run's settings: its driver (or the default
    SQL_ODBC_DRIVER) and ETL_CONNECT_TIMEOUT_SECONDS."""
    return build_connection_string(
        store,
        store.odbc_driver(settings.odbc_driver),
        credentials,
        settings.connect_timeout_seconds,
    )
