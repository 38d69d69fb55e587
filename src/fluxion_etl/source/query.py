"""The inventory query: the packaged default, or the operator's file (ETL_QUERY_FILE).

The warehouse code is always a bound parameter (exactly one ``?``), never formatted into the
text, and the database comes from the store's configuration, never from the query.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fluxion_etl.errors import ConfigError

#: The staging contract: the columns every inventory query must return (in any order).
STAGED_COLUMNS = (
    "origen_id",
    "codigo_producto",
    "codigo_barras",
    "descripcion_producto",
    "categoria",
    "grupo",
    "subgrupo",
    "marca",
    "presentacion",
    "cuadrante",
    "cantidad_actual",
    "costo_unitario_actual",
    "precio_venta_actual",
    "impuesto_porcentaje",
    "peso_producto",
    "volumen_producto",
    "cantidad_bultos",
    "tipo_peso",
)


def default_query() -> str:
    return _sendable((resources.files("fluxion_etl") / "sql" / "inventario.sql").read_text("utf-8"))


def load_query(path: Path | None) -> str:
    """The query text to run; a custom file must have exactly one ``?`` placeholder."""
    if path is None:
        return default_query()
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"ETL_QUERY_FILE {path} cannot be read: {exc.strerror}") from None
    if len(_placeholder_offsets(text)) != 1:
        raise ConfigError(
            f"ETL_QUERY_FILE {path} must contain exactly one '?' placeholder (the warehouse code)"
        )
    return _sendable(text)


def count_query(query: str) -> str:
    """How many rows ``query`` returns, counted on the server (for ``check``): it compiles and
    runs the query there, and only the count travels."""
    return f"SELECT COUNT(*) FROM (\n{_sendable(query)}\n) q"


def _sendable(text: str) -> str:
    """The query without whole-line comments and trailing ``;``.

    Some drivers (SQLite's) trip over quotes inside comments or a trailing semicolon, and the
    query is wrapped by :func:`count_query`; the comments stay in the file for people.
    """
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";").strip()


def with_placeholder_as(query: str, expression: str) -> str:
    """``query`` with its one ``?`` placeholder (outside string literals and ``--`` comments)
    replaced by the SQL ``expression``: for a driver that must run the query without a bound
    parameter (the SQLite driver streams only such a query; see engines/base.py)."""
    offsets = _placeholder_offsets(query)
    if len(offsets) != 1:
        raise ValueError(f"the query has {len(offsets)} '?' placeholders, not exactly one")
    return query[: offsets[0]] + expression + query[offsets[0] + 1 :]


def _placeholder_offsets(text: str) -> list[int]:
    """Where ``?`` occurs in ``text`` outside string literals and ``--`` comments."""
    offsets: list[int] = []
    in_string, start = False, 0
    for line in text.splitlines(keepends=True):
        index = 0
        while index < len(line):
            char = line[index]
            if in_string:
                in_string = char != "'"
            elif char == "'":
                in_string = True
            elif line.startswith("--", index):
                break
            elif char == "?":
                offsets.append(start + index)
            index += 1
        start += len(line)
    return offsets
