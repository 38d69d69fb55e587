"""The fetch engines: the inventory query of one store as Arrow record batches.

Engines sit behind one small protocol (:class:`~fluxion_etl.source.engines.base.Engine`);
everything after extraction sees only Arrow. ``arrow`` (arrow-odbc, columnar bulk fetch) is the
default; ``pyodbc`` is the compatibility path for drivers arrow-odbc cannot bind. Both are
bounded in rows and bytes per batch, so memory does not grow with the store's size.
"""

from __future__ import annotations

from importlib import import_module

from fluxion_etl.source.engines.base import Engine

#: Each engine's module and class. Imported when an engine is asked for, which only a fetch
#: process does (the fork server preloads both): the run's own process, which imports this
#: package for the request it sends, never pays for arrow-odbc, pyodbc and pyarrow.
ENGINES: dict[str, tuple[str, str]] = {
    "arrow": ("fluxion_etl.source.engines.arrow_engine", "ArrowOdbcEngine"),
    "pyodbc": ("fluxion_etl.source.engines.pyodbc_engine", "PyodbcEngine"),
}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``arrow`` or ``pyodbc``)."""
    try:
        module, cls = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}") from None
    engine: type[Engine] = getattr(import_module(module), cls)
    return engine()
