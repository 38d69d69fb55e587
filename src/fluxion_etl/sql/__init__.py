"""The SQL fluxion runs, kept as ``.sql`` files beside this module, and two helpers for it.

The files are package data (read with :func:`load`), so the query an operator reviews is the
query that runs. Nothing here imports DuckDB: the run's stages and the DuckDB target both use it.
"""

from __future__ import annotations

from importlib import resources

#: Rows per row group of a DuckDB table (its ``row_group_size``). The staged file is cut the same
#: way (see :mod:`fluxion_etl.run.stage`): the publish INSERT then turns each of its row groups
#: straight into one table row group, while smaller ones are merged and compressed again under
#: the write lock (measured at 500k products: 0.69 s aligned, 1.27 s unaligned).
TABLE_ROW_GROUP_ROWS = 122_880


def load(name: str) -> str:
    """The text of ``sql/<name>``."""
    return (resources.files("fluxion_etl") / "sql" / name).read_text("utf-8")


def literal(text: str) -> str:
    """``text`` as a SQL string literal, for the few statements that take no parameter (a view's
    definition, ATTACH); only ever used for paths fluxion made itself."""
    return "'" + text.replace("'", "''") + "'"
