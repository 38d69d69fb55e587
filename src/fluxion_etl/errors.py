"""One exception hierarchy for the whole run.

Each store-level error carries the ledger's ``error_tipo`` so the ledger, the logs and the exit
code all speak the same vocabulary. Only the CLI turns exceptions into exit codes and messages.
Messages never contain credentials: they are built from the store's id/host/port, never from a
connection string.
"""

from __future__ import annotations

from typing import ClassVar, Literal, get_args

#: A failed store's ``error_tipo`` in the ledger: what kind of failure, so the operator knows
#: where to look (each :class:`StoreError` subclass names its own).
ErrorTipo = Literal[
    "conexion",
    "timeout",
    "login",
    "consulta",
    "datos",
    "bloqueo",
    "interrumpido",
    "retenido",
    "disco",
]
ERROR_TIPOS: tuple[ErrorTipo, ...] = get_args(ErrorTipo)


class FluxionError(Exception):
    """Base of every error fluxion raises on purpose."""


class ConfigError(FluxionError):
    """Bad configuration or usage, found before any connection is attempted (exit 2)."""


class RunLockedError(FluxionError):
    """Another run holds the run guard of this target database (exit 4)."""


class StoreError(FluxionError):
    """A failure confined to one store; the other stores carry on.

    ``error_tipo`` is the ledger value; ``transient`` says whether a retry may help.
    """

    error_tipo: ClassVar[ErrorTipo] = "consulta"
    transient = False

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class ConnectionFailed(StoreError):
    """The store's server could not be reached or dropped the connection (VPN, TCP reset)."""

    error_tipo = "conexion"
    transient = True


class DriverUnavailable(StoreError):
    """The driver manager could not load the store's ODBC driver (not registered, or its library
    is gone). Normally found before any store is tried (fluxion_etl.source.drivers); this is the
    safety net when it only shows at connect time. No retry can cure it."""

    error_tipo = "conexion"


class LoginFailed(StoreError):
    """The server answered but refused the credentials (or the database does not exist)."""

    error_tipo = "login"


class QueryFailed(StoreError):
    """The inventory query did not compile or failed while running."""

    error_tipo = "consulta"


class TransientQueryError(QueryFailed):
    """A query failure a retry may cure (deadlock victim, serialization failure)."""

    transient = True


class QueryTimeout(StoreError):
    """The driver gave up waiting (HYT00/HYT01): usually a slow link, worth a retry."""

    error_tipo = "timeout"
    transient = True


class DataError(StoreError):
    """The fetched data could not be staged or transformed."""

    error_tipo = "datos"


class LocalDiskError(StoreError):
    """The machine running the ETL could not write its local staging files (``ETL_STAGING_DIR``):
    the disk is full, over quota or read-only. Its own ``error_tipo``, ``disco``, so the operator
    looks at the machine (its disk, the task's ephemeral storage), not at the store's server.
    Not transient: fetching again fills the same disk."""

    error_tipo = "disco"


class PublishLockTimeout(StoreError):
    """Another process kept the DuckDB file locked for longer than ETL_LOCK_WAIT_SECONDS."""

    error_tipo = "bloqueo"


class DeadlineExceeded(StoreError):
    """The whole-run deadline (ETL_TIMEOUT_SECONDS) expired before this store finished."""

    error_tipo = "timeout"


class Interrupted(StoreError):
    """The run was asked to stop (SIGTERM/SIGINT) before this store finished."""

    error_tipo = "interrumpido"


class TargetUnwritable(FluxionError):
    """The target file (or its run lock beside it) cannot be created or written: a read-only
    mount, a wrong owner, a path the kernel refuses. The run fails before any store starts."""


class SnapshotHeldBack(StoreError):
    """The snapshot guard held the store's new snapshot back (empty, shrunk, too many rows
    rejected): nothing was replaced, the store keeps serving its previous rows.

    Its own ``error_tipo``, ``retenido``, rather than ``datos``: the fetch worked and the rows
    were well-formed, so the fix is elsewhere -- the store's warehouse code, the state of its
    Stellar database, or a deliberate ``--accept-shrink`` -- and an operator reading the ledger
    or an alert must see that at a glance. Not transient: fetching again gives the same rows.
    """

    error_tipo = "retenido"
