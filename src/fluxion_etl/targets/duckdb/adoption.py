"""Taking over ``inventario_raw``: bring any existing table to the contract, and fit rows to it.

The production file already holds the old loader's ``inventario_raw`` (a uuid ``id`` default, a
unique key on (``ubicacion_id``, ``codigo_producto``, ``fecha_extraccion``), indexes,
``margen_porcentaje DECIMAL(5,2)``, ``descripcion_producto NOT NULL``, maybe more columns) next to
the backend's own tables. fluxion adopts it rather than replacing it:

* :func:`adopt_inventario` (migration 2) refuses, with one line naming the column, a table it
  cannot fill safely; otherwise it adds the contract's missing columns (existing rows get the
  contract's constants) and keeps every existing column, index and constraint. It touches no
  other table. It runs inside the migration transaction, so a refusal leaves the file as it was.
* :func:`copy_snapshots` (each publish) inserts the ready rows *by name* into the columns the
  target has, cast to the target's own types read from the catalog: a value the target's type
  cannot hold (a 1 234.56 % margin in DECIMAL(5,2)) becomes NULL and is counted, and a NULL text
  meets a ``NOT NULL`` text column as ``''``. Columns fluxion does not know get their defaults.

Found with the real DuckDB (2.0.1 and 1.4.5) on a table with indexes and a unique key: a plain
``ADD COLUMN`` (nullable, no constraint) works inside a transaction, and so does deleting a
store's rows then inserting the same keys in one transaction; but ``ADD COLUMN ... NOT NULL``
("Cannot alter entry ... because there are entries that depend on it" in 2.0, "not yet
supported" in 1.4), ``ALTER COLUMN ... DROP DEFAULT`` (1.4) and changing a keyed column's type
are refused. So migration 2 only ever adds nullable columns and never changes a type (values
are cast to the existing types instead); no index is dropped or rebuilt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from fluxion_etl.contract import CONTRACT_COLUMNS, NULLABLE_COLUMNS, StockThresholds
from fluxion_etl.errors import ConfigError

TABLE = "inventario_raw"

#: What a row fluxion wrote before a column existed gets in it: the contract's constants (the
#: stores are re-published by the next run anyway). Columns not listed stay NULL.
_BACKFILL: dict[str, str] = {
    "id": "CAST(gen_random_uuid() AS VARCHAR)",
    "subcategoria": "grupo",
    "cantidad_disponible": "0",
    "cantidad_reservada": "0",
    "cantidad_en_transito": "0",
    "stock_minimo": str(StockThresholds().stock_minimo),
    "stock_maximo": str(StockThresholds().stock_maximo),
    "punto_reorden": str(StockThresholds().punto_reorden),
    "dias_sin_movimiento": "0",
    "activo": "true",
    "es_perecedero": "false",
    "created_at": "fecha_extraccion",
}

#: A typical value of each column (by name, else by type): an adopted column whose type cannot
#: hold it cannot take fluxion's values, and the table is refused.
_SAMPLES_BY_NAME = {
    "id": "'f47ac10b-58cc-4372-a567-0e02b2c3d479'",
    "server_ip": "'192.168.2.10'",
    "tipo_peso": "'0'",
    "estado_stock": "'NORMAL'",
    "codigo_producto": "'AB-01'",
}
_SAMPLES_BY_TYPE = {
    "VARCHAR": "'ABC'",
    "TIMESTAMP": "TIMESTAMP '2026-11-27 18:00:00'",
    "BOOLEAN": "true",
    "INTEGER": "3",
}


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    nullable: bool
    default: str | None


#: ``inventario_raw``'s columns by name, as :func:`copy_snapshots` fits rows to them
TargetColumns = Mapping[str, _Column]


def _columns(con: duckdb.DuckDBPyConnection, database: str | None = None) -> dict[str, _Column]:
    rows = con.execute(
        "SELECT column_name, data_type, is_nullable, column_default FROM duckdb_columns() "
        "WHERE table_name = ? AND schema_name = 'main' "
        "AND database_name = coalesce(?, current_database()) ORDER BY column_index",
        [TABLE, database],
    ).fetchall()
    return {name: _Column(name, kind, bool(null), default) for name, kind, null, default in rows}


def adopt_inventario(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 2: make ``inventario_raw`` (fluxion's or the old loader's) hold the contract."""
    existing = refuse_unadoptable(con)
    missing = [name for name in CONTRACT_COLUMNS if name not in existing]
    for name in missing:
        con.execute(f'ALTER TABLE {TABLE} ADD COLUMN "{name}" {CONTRACT_COLUMNS[name]}')
    backfill = {
        name: _BACKFILL[name]
        for name in missing
        if name in _BACKFILL and _BACKFILL[name] not in missing  # a source that exists
    }
    if backfill:
        assignments = ", ".join(f'"{name}" = {value}' for name, value in backfill.items())
        con.execute(f"UPDATE {TABLE} SET {assignments}")
    if "estado_stock" in existing:
        _translate_old_states(con)


def refuse_unadoptable(con: duckdb.DuckDBPyConnection) -> dict[str, _Column]:
    """ConfigError when the existing ``inventario_raw`` is not a table fluxion can fill safely
    (a view, a column it cannot fill or hold); else its columns. Reads only: ``check`` asks it
    of a file opened read-only, as migration 2 would."""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_name = ? AND table_schema = 'main' AND table_catalog = current_database()",
        [TABLE],
    ).fetchone()
    if kind is None or kind[0] != "BASE TABLE":
        raise ConfigError(f"{TABLE} is a {kind[0] if kind else 'missing table'}, not a table")
    existing = _columns(con)
    _refuse_unfit(con, existing)
    return existing


def _translate_old_states(con: duckdb.DuckDBPyConnection) -> None:
    """Rows fluxion 1 wrote speak its old vocabulary (negativo, sin_stock, disponible): give them
    the backend's, with the rows' own thresholds, until their store is published again."""
    con.execute(
        f"""
        UPDATE {TABLE} SET estado_stock = CASE
            WHEN cantidad_actual <= 0 THEN 'SIN_STOCK'
            WHEN cantidad_actual <= stock_minimo THEN 'CRITICO'
            WHEN cantidad_actual <= punto_reorden THEN 'BAJO'
            WHEN cantidad_actual >= stock_maximo THEN 'EXCESO'
            ELSE 'NORMAL' END
        WHERE estado_stock IN ('negativo', 'sin_stock', 'disponible')
        """
    )


def _refuse_unfit(con: duckdb.DuckDBPyConnection, existing: Mapping[str, _Column]) -> None:
    """ConfigError naming the first column or constraint that fluxion cannot fill safely."""
    where = f"cannot adopt the existing {TABLE}"
    for column in existing.values():
        if column.name not in CONTRACT_COLUMNS:
            if not column.nullable and column.default is None:
                raise ConfigError(
                    f"{where}: column {column.name} is NOT NULL without a default and fluxion "
                    "does not fill it (give it a DEFAULT or drop the NOT NULL)"
                )
            continue
        ours = CONTRACT_COLUMNS[column.name]
        sample = _SAMPLES_BY_NAME.get(column.name) or _SAMPLES_BY_TYPE.get(ours, "12.5")
        fits = con.execute(
            f"SELECT TRY_CAST(CAST({sample} AS {ours}) AS {column.type}) IS NOT NULL"
        ).fetchone()
        if not (fits and fits[0]):
            raise ConfigError(
                f"{where}: column {column.name} is {column.type}, which cannot hold "
                f"fluxion's {ours} values"
            )
        if (
            not column.nullable
            and column.name in NULLABLE_COLUMNS
            and column.default is None
            and not column.type.startswith("VARCHAR")
        ):
            raise ConfigError(
                f"{where}: column {column.name} is NOT NULL but fluxion publishes NULL there "
                "when the source has no value (drop the NOT NULL or give it a DEFAULT)"
            )
    constraints = con.execute(
        "SELECT table_name, constraint_type, constraint_column_names, referenced_table "
        "FROM duckdb_constraints() WHERE schema_name = 'main' "
        "AND database_name = current_database() AND (table_name = ? OR referenced_table = ?)",
        [TABLE, TABLE],
    ).fetchall()
    for table, kind, names, referenced in constraints:
        columns = ", ".join(names)
        if kind == "FOREIGN KEY":
            raise ConfigError(
                f"{where}: foreign key {table}({columns}) -> {referenced}: fluxion replaces a "
                "store's rows wholesale and cannot keep such a reference valid"
            )
        keyed = "id" in names or {"ubicacion_id", "codigo_producto"} <= set(names)
        if kind in ("PRIMARY KEY", "UNIQUE") and not keyed:
            raise ConfigError(
                f"{where}: {kind} ({columns}) would reject fluxion's rows, which are unique "
                "per (ubicacion_id, codigo_producto) only"
            )


def copy_snapshots(
    con: duckdb.DuckDBPyConnection,
    sources: Sequence[str],
    constants: Mapping[str, object],
    target: TargetColumns | None = None,
) -> list[int]:
    """Insert the rows of ``sources`` (views of the contract's columns) into ``inventario_raw``,
    fitted to the target's types, plus ``constants`` (e.g. ``created_at``) bound as parameters.

    One ``INSERT`` for all the sources whose columns have the same types (the transform gives
    every store the same), so the statement's planning is paid once per batch of stores, not per
    store. ``target`` is the table's columns if the caller read them already
    (:func:`target_columns`). Returns, per source, how many rows had a value the target's type
    cannot hold (published as NULL)."""
    target = target if target is not None else _columns(con)
    nulled = [0] * len(sources)
    #: (columns, their expressions, the conditions of an unfit value) -> the sources it serves
    plans: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], list[int]] = {}
    params: dict[str, object] = {}
    for index, source in enumerate(sources):
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        names, values, conditions = _fitted(
            target, {row[0]: row[1] for row in described}, constants
        )
        plans.setdefault((tuple(names), tuple(values), tuple(conditions)), []).append(index)
    for name, value in constants.items():
        if name in target:
            params[name] = _param(value)
    for (columns, expressions, unfit), indexes in plans.items():
        if unfit:
            for index in indexes:
                row = con.execute(
                    f"SELECT count(*) FROM {sources[index]} WHERE {' OR '.join(unfit)}"
                ).fetchone()
                nulled[index] = int(row[0]) if row else 0
        selects = " UNION ALL ".join(
            f"SELECT {', '.join(expressions)} FROM {sources[index]}" for index in indexes
        )
        con.execute(f"INSERT INTO {TABLE} ({', '.join(columns)}) {selects}", params)
    return nulled


def target_columns(con: duckdb.DuckDBPyConnection) -> TargetColumns:
    """``inventario_raw``'s columns as :func:`copy_snapshots` fits rows to them (read once per
    opening of the file by the publisher: the publishes do not change them)."""
    return _columns(con)


def _fitted(
    target: TargetColumns, types: Mapping[str, str], constants: Mapping[str, object]
) -> tuple[list[str], list[str], list[str]]:
    """The target columns a source of column ``types`` fills, the expressions fitting its values
    to them, and the conditions of a value that does not fit (published as NULL)."""
    names: list[str] = []
    values: list[str] = []
    unfit: list[str] = []
    for name, ours in [*types.items(), *((n, CONTRACT_COLUMNS[n]) for n in constants)]:
        column = target.get(name)
        if column is None:  # only a column the table does not have; migration 2 adds them all
            continue
        expression = f'"{name}"'
        if name in constants:
            expression = f"CAST(${name} AS {ours})"
        elif ours != column.type:
            unfit.append(f'("{name}" IS NOT NULL AND TRY_CAST("{name}" AS {column.type}) IS NULL)')
        if ours != column.type:
            expression = f"TRY_CAST({expression} AS {column.type})"
        if not column.nullable and column.type.startswith("VARCHAR") and name in NULLABLE_COLUMNS:
            expression = f"coalesce({expression}, '')"
        names.append(f'"{name}"')
        values.append(expression)
    return names, values, unfit


def _param(value: object) -> object:
    return value.replace(tzinfo=None) if isinstance(value, dt.datetime) else value
