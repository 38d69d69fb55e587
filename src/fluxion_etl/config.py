"""Run settings, read once from the environment (the deployment contract of docs/configuration.md).

Every value is validated here, before any connection, so a typo fails the run with exit 2 and
one clear line instead of twenty identical store failures. Credentials are *not* read here:
see :mod:`fluxion_etl.credentials`, which keeps them out of anything that gets printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fluxion_etl.contract import (
    DEFAULT_TIMEZONE,
    StockThresholds,
    check_timezone,
    parse_threshold,
)
from fluxion_etl.errors import ConfigError
from fluxion_etl.targets.duckdb.path import DEFAULT_FILE_MODE
from fluxion_etl.targets.duckdb.storage import DEFAULT_STORAGE_VERSION, check_storage_version
from fluxion_etl.targets.postgres.layout_names import (
    DEFAULT_LAYOUT,
    DEFAULT_LEDGER_SCHEMA,
    LAYOUTS,
    check_layout,
)
from fluxion_etl.targets.postgres.url import check_database_url, check_schema

ENGINES = ("arrow", "pyodbc")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_DRIVER = "ODBC Driver 18 for SQL Server"
#: Two periods of the default schedule, rate(6 hours); the stack passes its own value.
DEFAULT_STALE_AFTER_SECONDS = 2 * 6 * 3600
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, except the stores themselves and the credentials."""

    database_path: Path = Path("./fluxion.duckdb")
    #: the setting that named ``database_path`` (``--db`` on the command line), for its errors
    database_source: str = "DATABASE_PATH"
    #: DATABASE_FILE_MODE: the mode of the files a run creates (targets/duckdb/path.py)
    file_mode: int = DEFAULT_FILE_MODE
    #: a PostgreSQL target (targets/postgres.py) instead of the DuckDB file; no password in it
    database_url: str | None = None
    database_schema: str = "public"
    #: the PostgreSQL target's table layout (targets/postgres/layouts.py): ``inventario_raw``
    #: (fluxion's table) or ``inventario_actual`` (the chain's backend's normalised tables)
    target_layout: str = DEFAULT_LAYOUT
    #: in the ``inventario_actual`` layout, the schema of fluxion's own tables (ledger, migrations)
    ledger_schema: str = DEFAULT_LEDGER_SCHEMA
    #: in the ``inventario_actual`` layout, fluxion owns ``productos``: it updates existing rows
    #: (otherwise it only fills their NULL columns)
    owns_products: bool = False
    #: DATABASE_TRUSTED_OWNERS: roles besides fluxion's own whose objects it may publish into
    database_trusted_owners: tuple[str, ...] = ()
    stores_file: Path | None = None
    selected_stores: tuple[str, ...] = ()
    engine: str = "arrow"
    batch_size: int = 50_000
    batch_bytes: int = 64 * 1024 * 1024
    #: None: automatic (every selected store, capped by the memory budget; see budget.py)
    workers: int | None = None
    #: the run's memory budget; None: the container's limit, else the machine's
    memory_mib: int | None = None
    max_retries: int = 3
    timeout_seconds: float = 1800.0
    lock_wait_seconds: float = 600.0
    #: a store whose last published snapshot is older than this is stale (docs/operations.md)
    stale_after_seconds: float = DEFAULT_STALE_AFTER_SECONDS
    connect_timeout_seconds: int = 15
    odbc_driver: str = DEFAULT_DRIVER
    #: ETL_ALLOW_DRIVER_PATHS: a ``driver`` may be a library path (loaded into the process)
    allow_driver_paths: bool = False
    query_file: Path | None = None
    staging_dir: Path | None = None
    log_level: str = "INFO"
    #: the chain's zone: fecha_extraccion and created_at are naive local times in it
    timezone: str = DEFAULT_TIMEZONE
    #: every store's estado_stock thresholds, unless its stores-file entry sets its own
    stock_thresholds: StockThresholds = field(default_factory=StockThresholds)
    #: the DuckDB storage version a new target file is created with
    duckdb_storage_version: str = DEFAULT_STORAGE_VERSION
    max_shrink: float = 0.5
    max_rejected: float = 0.05
    accept_shrink: tuple[str, ...] = ()
    context: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default ``os.environ``); ConfigError on a bad value."""
        env = os.environ if env is None else env
        get = _Reader(env)
        engine = get.choice("ETL_ENGINE", ENGINES, "arrow")
        database_url = _database_url(get)
        database_schema = check_schema(get.text("DATABASE_SCHEMA", "public"))
        layout = get.choice("ETL_TARGET_LAYOUT", LAYOUTS, DEFAULT_LAYOUT)
        ledger_schema = check_schema(
            get.text("ETL_LEDGER_SCHEMA", DEFAULT_LEDGER_SCHEMA), "ETL_LEDGER_SCHEMA"
        )
        check_layout(layout, database_url, database_schema, ledger_schema)
        return cls(
            database_path=Path(get.text("DATABASE_PATH", "./fluxion.duckdb")),
            file_mode=_file_mode(get),
            database_url=database_url,
            database_schema=database_schema,
            target_layout=layout,
            ledger_schema=ledger_schema,
            owns_products=get.boolean("ETL_OWNS_PRODUCTS", False),
            database_trusted_owners=get.name_list("DATABASE_TRUSTED_OWNERS"),
            stores_file=get.path("ETL_STORES_FILE"),
            selected_stores=get.id_list("ETL_TIENDAS"),
            engine=engine,
            batch_size=get.integer("ETL_BATCH_SIZE", 50_000, minimum=1),
            batch_bytes=get.integer("ETL_BATCH_BYTES", 64 * 1024 * 1024, minimum=1024 * 1024),
            workers=get.optional_integer("ETL_WORKERS", minimum=1),
            memory_mib=get.optional_integer("ETL_MEMORY_MIB", minimum=1),
            max_retries=get.integer("ETL_MAX_RETRIES", 3, minimum=1),
            timeout_seconds=get.number("ETL_TIMEOUT_SECONDS", 1800.0, minimum=1.0),
            lock_wait_seconds=get.number("ETL_LOCK_WAIT_SECONDS", 600.0, minimum=0.0),
            stale_after_seconds=get.number(
                "ETL_STALE_AFTER_SECONDS", DEFAULT_STALE_AFTER_SECONDS, minimum=60.0
            ),
            connect_timeout_seconds=get.integer("ETL_CONNECT_TIMEOUT_SECONDS", 15, minimum=1),
            odbc_driver=get.text("SQL_ODBC_DRIVER", DEFAULT_DRIVER),
            allow_driver_paths=get.boolean("ETL_ALLOW_DRIVER_PATHS", False),
            query_file=get.path("ETL_QUERY_FILE"),
            staging_dir=get.path("ETL_STAGING_DIR"),
            log_level=get.choice("LOG_LEVEL", LOG_LEVELS, "INFO", upper=True),
            timezone=check_timezone(get.text("ETL_TIMEZONE", DEFAULT_TIMEZONE)),
            stock_thresholds=_thresholds(get),
            duckdb_storage_version=check_storage_version(
                get.text("ETL_DUCKDB_STORAGE_VERSION", DEFAULT_STORAGE_VERSION)
            ),
            max_shrink=get.fraction("ETL_MAX_SHRINK", 0.5),
            max_rejected=get.fraction("ETL_MAX_REJECTED", 0.05),
            accept_shrink=get.id_list("ETL_ACCEPT_SHRINK"),
            context={
                key.lower(): env[key]
                for key in ("ENVIRONMENT", "RUN_MODE", "ETL_MODE")
                if env.get(key)
            },
        )


def _file_mode(get: _Reader) -> int:
    """DATABASE_FILE_MODE, octal (``0640``): the owner must read and write; no one else may."""
    raw = get.optional("DATABASE_FILE_MODE")
    if raw is None:
        return DEFAULT_FILE_MODE
    try:
        mode = int(raw, 8)
    except ValueError:
        raise ConfigError(f"DATABASE_FILE_MODE={raw!r} is not an octal mode (e.g. 0640)") from None
    if not 0 <= mode <= 0o666 or mode & 0o600 != 0o600 or mode & 0o002:
        raise ConfigError(
            f"DATABASE_FILE_MODE={raw} must let the owner read and write (0600 at least), "
            "and never let others write (at most 0664)"
        )
    return mode


def _thresholds(get: _Reader) -> StockThresholds:
    """ETL_STOCK_MINIMO / ETL_STOCK_MAXIMO / ETL_PUNTO_REORDEN over the defaults (10, 100, 20)."""
    default = StockThresholds()
    values = {
        key: parse_threshold(raw, name) if (raw := get.text(name, "")) else getattr(default, key)
        for key, name in (
            ("stock_minimo", "ETL_STOCK_MINIMO"),
            ("stock_maximo", "ETL_STOCK_MAXIMO"),
            ("punto_reorden", "ETL_PUNTO_REORDEN"),
        )
    }
    return StockThresholds(**values).checked("ETL_STOCK_MINIMO/ETL_PUNTO_REORDEN/ETL_STOCK_MAXIMO")


def _database_url(get: _Reader) -> str | None:
    """``DATABASE_URL``, checked (targets/pgurl.py); naming both targets is an error, since
    either choice would leave one of the two settings silently ignored."""
    url = get.optional("DATABASE_URL")
    if url is None:
        return None
    if get.optional("DATABASE_PATH") is not None:
        raise ConfigError(
            "both DATABASE_URL (PostgreSQL) and DATABASE_PATH (DuckDB) are set: keep the one "
            "target you mean"
        )
    check_database_url(url, get.env)
    return url


class _Reader:
    """Typed accessors over the environment that name the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    @property
    def env(self) -> Mapping[str, str]:
        return self._env

    def _raw(self, name: str) -> str | None:
        value = self._env.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def optional(self, name: str) -> str | None:
        return self._raw(name)

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def path(self, name: str) -> Path | None:
        raw = self._raw(name)
        return Path(raw) if raw else None

    def choice(self, name: str, allowed: tuple[str, ...], default: str, upper: bool = False) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            raise ConfigError(f"{name}={raw!r} is not one of: {', '.join(allowed)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        value = raw.lower()
        if value not in _BOOLEANS:
            raise ConfigError(f"{name}={raw!r} is not true or false")
        return _BOOLEANS[value]

    def integer(self, name: str, default: int, minimum: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        if value < minimum:
            raise ConfigError(f"{name}={value} must be at least {minimum}")
        return value

    def optional_integer(self, name: str, minimum: int) -> int | None:
        """None when unset or empty (an empty variable means "automatic", as unset does)."""
        return None if self._raw(name) is None else self.integer(name, minimum, minimum)

    def number(self, name: str, default: float, minimum: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        value = _float(name, raw)
        if not value >= minimum:  # also rejects NaN
            raise ConfigError(f"{name}={raw} must be at least {minimum:g}")
        return value

    def fraction(self, name: str, default: float) -> float:
        """A share between 0 and 1 (the snapshot guard's thresholds)."""
        raw = self._raw(name)
        if raw is None:
            return default
        value = _float(name, raw)
        if not 0.0 <= value <= 1.0:  # also rejects NaN
            raise ConfigError(f"{name}={raw} must be between 0 and 1 (a share, e.g. {default:g})")
        return value

    def name_list(self, name: str) -> tuple[str, ...]:
        """A comma list of names (roles); unset or blank is empty."""
        raw = self._raw(name)
        if raw is None:
            return ()
        items = [item.strip() for item in raw.split(",")]
        if any(not item for item in items):
            raise ConfigError(f"{name}={raw!r} has an empty item (stray comma?)")
        return tuple(dict.fromkeys(items))

    def id_list(self, name: str) -> tuple[str, ...]:
        """Unset means "all active"; set but blank (a script's empty variable) is an error, since
        running the whole chain is never what an empty selection meant."""
        raw = self._env.get(name)
        if raw is None:
            return ()
        return parse_id_list(raw, name)


def parse_id_list(raw: str, source: str) -> tuple[str, ...]:
    """Split a comma list of store ids (``tienda_02, cedi_seco``), rejecting empty items and an
    empty list."""
    if not raw.strip():
        raise ConfigError(
            f"{source} is empty: name the store ids to run, or leave it out for every active store"
        )
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise ConfigError(f"{source}={raw!r} has an empty store id (stray comma?)")
    return tuple(dict.fromkeys(items))


def _float(name: str, raw: str) -> float:
    """``raw`` as a float, or the one-line error naming the variable."""
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
