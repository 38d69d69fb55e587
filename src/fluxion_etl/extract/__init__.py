"""Extraction: run the inventory query on one store and yield Arrow record batches.

Engines sit behind one small protocol (:class:`Engine`); everything after extraction sees only
Arrow. ``arrow`` (arrow-odbc, columnar bulk fetch) is the default; ``pyodbc`` is the
compatibility path for drivers arrow-odbc cannot bind. Both are bounded in rows and bytes per
batch, so memory does not grow with the store's size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from fluxion_etl.connection import ConnectionString
from fluxion_etl.credentials import Credentials


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


class Engine(Protocol):
    """Give me Arrow record batches for this query and this warehouse code."""

    name: str

    def batches(self, request: FetchRequest, stop: threading.Event) -> Iterator[pa.RecordBatch]:
        """Yield batches until done; raise a StoreError (classified) on failure.

        ``stop`` is checked between batches so a deadline or a SIGTERM ends the fetch promptly.
        """
        ...


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``arrow`` or ``pyodbc``)."""
    if name == "arrow":
        from fluxion_etl.extract.arrow_engine import ArrowOdbcEngine

        return ArrowOdbcEngine()
    if name == "pyodbc":
        from fluxion_etl.extract.pyodbc_engine import PyodbcEngine

        return PyodbcEngine()
    raise ValueError(f"unknown engine {name!r}")
