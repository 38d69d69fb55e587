"""The fetch engines: the inventory query of one store as Arrow record batches.

Engines sit behind one small protocol (:class:`~fluxion_etl.source.engines.base.Engine`);
everything after extraction sees only Arrow. ``arrow`` (arrow-odbc, columnar bulk fetch) is the
default; ``pyodbc`` is the compatibility path for drivers arrow-odbc cannot bind. Both are
bounded in rows and bytes per batch, so memory does not grow with the store's size.
"""

from __future__ import annotations

from fluxion_etl.source.engines.arrow_engine import ArrowOdbcEngine
from fluxion_etl.source.engines.base import Engine
from fluxion_etl.source.engines.pyodbc_engine import PyodbcEngine

ENGINES: dict[str, type[Engine]] = {"arrow": ArrowOdbcEngine, "pyodbc": PyodbcEngine}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``arrow`` or ``pyodbc``)."""
    try:
        return ENGINES[name]()
    except KeyError:
        raise ValueError(f"unknown engine {name!r}") from None
