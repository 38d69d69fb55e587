"""What an engine is given and gives back: the fetch request, the protocol, the refetch signal.

Engines sit behind one small protocol (:class:`Engine`); everything after extraction sees only
Arrow. ``arrow`` (arrow-odbc, columnar bulk fetch) is the default; ``pyodbc`` is the
compatibility path for drivers arrow-odbc cannot bind. Both are bounded in rows and bytes per
batch, so memory does not grow with the store's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials
from fluxion_etl.errors import StoreError
from fluxion_etl.source.connection import ConnectionString, connection_for
from fluxion_etl.source.query import with_placeholder_as
from fluxion_etl.stores import Store

if TYPE_CHECKING:  # the run's own process imports this module but never fetches (fetch.py)
    import pyarrow as pa

#: The widest text column an engine will buffer (characters). Beyond it a store fails with
#: ``datos`` instead of allocating without bound.
MAX_TEXT_SIZE_LIMIT = 1_048_576


@dataclass(frozen=True)
class FetchRequest:
    """What an engine needs to fetch one store: where, what, and how much at once."""

    where: str  # "tienda_02 (192.168.2.10:14348)", for messages
    connection: ConnectionString
    credentials: Credentials | None
    query: str
    warehouse: str
    batch_size: int
    batch_bytes: int
    connect_timeout_seconds: int
    max_text_size: int = 8000
    #: ask the driver for UTF-16 text even where narrow text would do (None: by driver family)
    wide_text: bool | None = None

    @classmethod
    def for_store(
        cls,
        store: Store,
        settings: Settings,
        credentials: Credentials | None,
        query: str,
        batch_bytes: int | None = None,
    ) -> FetchRequest:
        """The request for ``store`` under the run's settings; ``batch_bytes``: this fetch's
        share of ETL_BATCH_BYTES (budget.py), else all of it."""
        return cls(
            where=store.label,
            connection=connection_for(store, settings, credentials),
            credentials=credentials,
            query=query,
            warehouse=store.warehouse,
            batch_size=settings.batch_size,
            batch_bytes=settings.batch_bytes if batch_bytes is None else batch_bytes,
            connect_timeout_seconds=settings.connect_timeout_seconds,
        )


#: Where a driver that does not stream bound queries reads the warehouse code from: a table of
#: the connection's own (SQLite's ``temp`` schema, writable on a read-only database file).
PARAMETER_TABLE = "temp.fluxion_fetch_parameters"


@dataclass(frozen=True)
class BoundQuery:
    """How an engine runs a request's query: statements to execute first (each with its
    parameters), then ``query`` with ``parameters``."""

    setup: tuple[tuple[str, tuple[str, ...]], ...]
    query: str
    parameters: tuple[str, ...]


def bound_query(request: FetchRequest) -> BoundQuery:
    """The request's query with the warehouse code bound, always as a parameter, never as text.

    Most drivers get it as the query's parameter. The SQLite driver reads the whole result into
    memory before the first row when the query has a bound parameter (its ``sqlite3_get_table``
    path), so memory would grow with the store; it streams a query without one. So for it the
    code is bound into a one-row table of the connection's own, and the query's ``?`` reads
    it from there: the same rows, streamed.
    """
    if request.connection.family.streams_bound_queries:
        return BoundQuery((), request.query, (request.warehouse,))
    return BoundQuery(
        setup=(
            (f"CREATE TABLE {PARAMETER_TABLE} (warehouse TEXT)", ()),
            (f"INSERT INTO {PARAMETER_TABLE} (warehouse) VALUES (?)", (request.warehouse,)),
        ),
        query=with_placeholder_as(request.query, f"(SELECT warehouse FROM {PARAMETER_TABLE})"),
        parameters=(),
    )


class RefetchNeeded(StoreError):
    """This store's data does not fit the fetch settings; fetch it again, from scratch, with
    ``request`` (a text longer than ``max_text_size``; narrow text that is not valid UTF-8).

    Raised by an engine, handled by the pipeline, which restarts the store's staging: a refetch
    never appends to what was already staged.
    """

    error_tipo = "datos"

    def __init__(self, message: str, request: FetchRequest) -> None:
        super().__init__(message)
        self.request = request

    def __reduce__(self) -> tuple[type[RefetchNeeded], tuple[str, FetchRequest]]:
        """Picklable, as it crosses back from the fetch's child process."""
        return (type(self), (str(self), self.request))


class Engine(Protocol):
    """Give me Arrow record batches for this query and this warehouse code."""

    name: str

    def batches(self, request: FetchRequest) -> Iterator[pa.RecordBatch]:
        """Yield batches until done; raise a StoreError (classified) on failure.

        Runs in a fetch process of its own (run/fetch.py), which a deadline or a SIGTERM
        kills: an engine need not watch for a stop itself.
        """
        ...
