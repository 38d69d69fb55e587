"""ODBC connection strings, per driver family, with values escaped the way ODBC wants.

The driver family is inferred from the driver's name, because each family spells its keywords
differently (``Server=tcp:h,p`` for Microsoft's drivers, ``Server``/``Port`` for FreeTDS and
psqlODBC, a file path for SQLite). Values that contain ``; { } =`` or edge spaces are wrapped in
braces with ``}`` doubled, so a password such as ``a;b}c`` reaches the server intact.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials
from fluxion_etl.errors import ConfigError
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

    @property
    def streams_bound_queries(self) -> bool:
        """False: the driver holds a query's whole result in memory when a parameter is bound
        (the SQLite driver: it streams rows, with ``StepAPI=1``, only for a query without one;
        engines/base.py's :func:`~fluxion_etl.source.engines.base.bound_query`)."""
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
    # the safety net: the run checked every store before any connection (check_connection_values)
    check_store_values(store, driver, allow_driver_paths=True)
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
            # FreeTDS's default ("request") sends the login in clear to a server that says it
            # cannot encrypt; Microsoft's driver refuses such a server, and so must FreeTDS.
            ("Encryption", "require"),
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
            # Step through the rows as they are read (sqlite3_step) instead of reading the
            # whole result into memory first (sqlite3_get_table): 543 against 260 MiB for a
            # 400k-row store. Only for a query without a bound parameter, see bound_query.
            ("StepAPI", "1"),
        ]
    if family.needs_credentials and credentials is not None:
        check_login_values(credentials, {family})
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


# --- what may reach a connection string -----------------------------------------------------
#
# Escaping alone is not enough: FreeTDS ends a braced value at the first ``};`` (so
# ``VAD10};Port=59998;x={`` sends the login to another port) and the SQLite driver ignores braces
# altogether (``x.sqlite;LoadExt=/path/evil.so`` loads a library). So every value a stores file
# or a setting puts into a connection string is checked for what it is, for every family, and
# the credentials for what the family's driver can carry.

#: characters that end or open a connection-string value, in some driver's parser
CONNECTION_STRING_SPECIALS = frozenset(";{}=")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
#: a SQL Server / PostgreSQL database name: letters, digits, ``_ @ # $``, inner ``. - `` and spaces
_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_@#$](?:[A-Za-z0-9_@#$ .-]{0,126}[A-Za-z0-9_@#$])?$")


def is_host(value: str) -> bool:
    """Whether ``value`` is a host name (RFC 1123 labels; ``_`` tolerated, as Windows names
    have it) or an IPv4/IPv6 address: nothing that could carry a keyword, a port or a path."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    labels = value[:-1].split(".") if value.endswith(".") else value.split(".")
    return 0 < len(value) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def check_store_values(store: Store, driver: str, *, allow_driver_paths: bool = False) -> None:
    """ConfigError naming the store and the field unless every value of ``store`` that reaches
    its connection string (with ``driver``) is what it claims to be: the driver a registered
    name (a library path only with ``allow_driver_paths``: ETL_ALLOW_DRIVER_PATHS), the host a
    host, the database a database name (for SQLite a file path); none with ``; { } =``."""
    where = f"store {store.id}"
    if _has_specials(driver):
        raise ConfigError(f"{where}: field 'driver' must not contain ; {{ }} = ({driver!r})")
    if ("/" in driver or "\\" in driver) and not allow_driver_paths:
        raise ConfigError(
            f"{where}: field 'driver' is a library path ({driver!r}): name a driver registered "
            "in odbcinst.ini, or set ETL_ALLOW_DRIVER_PATHS=1 to load a library by its path"
        )
    try:
        family = driver_family(driver)
    except ValueError as exc:
        raise ConfigError(f"{where}: field 'driver': {exc}") from None
    if family is DriverFamily.SQLITE:
        if _has_specials(store.database):
            raise ConfigError(
                f"{where}: field 'database' (the SQLite file path) must not contain ; {{ }} = "
                "(the SQLite driver would read the rest as more settings)"
            )
        return
    if not is_host(store.host):
        raise ConfigError(
            f"{where}: field 'host' must be a host name or an IP address, nothing else "
            f"({store.host!r}; the port goes in 'port')"
        )
    if not _DATABASE_NAME.match(store.database):
        raise ConfigError(
            f"{where}: field 'database' must be a database name (letters, digits, _ @ # $, "
            f"inner . - and spaces), not a path or settings ({store.database!r})"
        )


def check_login_values(credentials: Credentials, families: Iterable[DriverFamily]) -> None:
    """ConfigError (with the reason, never the value) when a family's driver cannot carry the
    login as it is: FreeTDS does not undo ODBC's doubled ``}`` (a password with ``}`` reaches
    the server doubled and can never log in) and ends a braced value at the first ``};``."""
    if DriverFamily.FREETDS in set(families):
        for name, value in (("SQL_USER", credentials.user), ("SQL_PASS", credentials.password)):
            if "}" in value:
                raise ConfigError(
                    f"the {name} value contains '}}', which the FreeTDS driver cannot pass "
                    "(it ends the value there and sends the rest as settings): change the "
                    "login, or use Microsoft's ODBC Driver 18 for the FreeTDS stores"
                )


def check_connection_values(
    stores: Iterable[Store], settings: Settings, credentials: Credentials | None
) -> None:
    """Every store's connection values and the login, before any store is tried (exit 2)."""
    families = set()
    for store in stores:
        driver = store.odbc_driver(settings.odbc_driver)
        check_store_values(store, driver, allow_driver_paths=settings.allow_driver_paths)
        families.add(driver_family(driver))
    if credentials is not None:
        check_login_values(credentials, families)


def _has_specials(value: str) -> bool:
    return any(c in CONNECTION_STRING_SPECIALS for c in value)
