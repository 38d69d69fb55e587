"""The backend's contract for ``inventario_raw``: its columns, stock thresholds, the chain's clock.

The chain's web backend reads ``inventario_raw`` from the same file and was written against the
old loader's table: it filters ``activo``, groups by ``subcategoria``, shows ``estado_stock`` in
its own vocabulary and compares ``DATE(fecha_extraccion)`` with its own ``CURRENT_DATE``. This
module is the one place that says what fluxion owes it, so the migration that adds the columns
(:mod:`fluxion_etl.targets.duckdb.adoption`), the transform that fills them and the tests agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fluxion_etl.errors import ConfigError

#: The chain's time zone: ``fecha_extraccion`` and ``created_at`` are naive local times in it.
DEFAULT_TIMEZONE = "America/Caracas"

#: Columns fluxion adds for the backend (migration 2), with their types. Every one is filled by
#: the transform (sql/transform.sql); the source has no data for most and they get the constant
#: the old loader wrote, so the backend's filters and sums keep working.
BACKEND_COLUMNS: dict[str, str] = {
    "id": "VARCHAR",
    "subcategoria": "VARCHAR",
    "tipo_peso": "VARCHAR(20)",
    "cantidad_disponible": "DECIMAL(12,4)",
    "cantidad_reservada": "DECIMAL(12,4)",
    "cantidad_en_transito": "DECIMAL(12,4)",
    "stock_minimo": "DECIMAL(12,4)",
    "stock_maximo": "DECIMAL(12,4)",
    "punto_reorden": "DECIMAL(12,4)",
    "ubicacion_fisica": "VARCHAR",
    "pasillo": "VARCHAR",
    "estante": "VARCHAR",
    "fecha_ultima_entrada": "TIMESTAMP",
    "fecha_ultima_salida": "TIMESTAMP",
    "fecha_ultimo_conteo": "TIMESTAMP",
    "dias_sin_movimiento": "INTEGER",
    "activo": "BOOLEAN",
    "es_perecedero": "BOOLEAN",
    "dias_vencimiento": "INTEGER",
    "server_ip": "VARCHAR(50)",
    "created_at": "TIMESTAMP",
}

#: The numeric columns the source brings, in their exact types (the per-row clean-up casts to
#: these: transform.DECIMAL_TYPES).
SOURCE_DECIMAL_TYPES: dict[str, str] = {
    "cantidad_actual": "DECIMAL(18,3)",
    "costo_unitario_actual": "DECIMAL(18,4)",
    "precio_venta_actual": "DECIMAL(18,4)",
    "impuesto_porcentaje": "DECIMAL(9,2)",
    "peso_producto": "DECIMAL(18,3)",
    "volumen_producto": "DECIMAL(18,3)",
    "cantidad_bultos": "DECIMAL(18,3)",
}

#: fluxion's own columns (migration 1) with their types: an adopted old-loader table may lack some.
FLUXION_COLUMNS: dict[str, str] = {
    "ubicacion_id": "VARCHAR",
    "ubicacion_nombre": "VARCHAR",
    "tipo_ubicacion": "VARCHAR",
    "codigo_producto": "VARCHAR",
    "codigo_barras": "VARCHAR",
    "descripcion_producto": "VARCHAR",
    "categoria": "VARCHAR",
    "grupo": "VARCHAR",
    "subgrupo": "VARCHAR",
    "marca": "VARCHAR",
    "presentacion": "VARCHAR",
    "cuadrante": "VARCHAR",
    **SOURCE_DECIMAL_TYPES,
    "valor_inventario_actual": "DECIMAL(18,2)",
    "margen_porcentaje": "DECIMAL(12,2)",
    "estado_stock": "VARCHAR",
    "fecha_extraccion": "TIMESTAMP",
    "batch_id": "VARCHAR",
}

#: Every column of ``inventario_raw`` fluxion publishes, in the order a new table has them.
CONTRACT_COLUMNS: dict[str, str] = {**FLUXION_COLUMNS, **BACKEND_COLUMNS}

#: Columns fluxion may publish as NULL (no value at the source, or a value the adopted table's
#: type cannot hold). An adopted table with ``NOT NULL`` on one of them is fitted (text: ``''``)
#: or refused (anything else), see :mod:`fluxion_etl.targets.duckdb.adoption`.
NULLABLE_COLUMNS = frozenset(
    {
        "codigo_barras",
        "descripcion_producto",
        "categoria",
        "grupo",
        "subgrupo",
        "marca",
        "presentacion",
        "cuadrante",
        "costo_unitario_actual",
        "precio_venta_actual",
        "impuesto_porcentaje",
        "peso_producto",
        "volumen_producto",
        "cantidad_bultos",
        "valor_inventario_actual",
        "margen_porcentaje",
        "subcategoria",
        "tipo_peso",
        "ubicacion_fisica",
        "pasillo",
        "estante",
        "fecha_ultima_entrada",
        "fecha_ultima_salida",
        "fecha_ultimo_conteo",
        "dias_vencimiento",
        "server_ip",
    }
)

#: The backend's ``estado_stock`` vocabulary, in the order the rules are tried.
STOCK_STATES = ("SIN_STOCK", "CRITICO", "BAJO", "EXCESO", "NORMAL")

#: The largest threshold DECIMAL(12,4) holds.
_THRESHOLD_LIMIT = Decimal("99999999.9999")


@dataclass(frozen=True)
class StockThresholds:
    """A location's stock thresholds, in units: what ``estado_stock`` is measured against.

    The defaults (10, 100, 20) are what the chain's old loader wrote for every location.
    """

    stock_minimo: Decimal = Decimal(10)
    stock_maximo: Decimal = Decimal(100)
    punto_reorden: Decimal = Decimal(20)

    def checked(self, where: str) -> StockThresholds:
        """Self, if the bands make sense: ``0 <= stock_minimo <= punto_reorden < stock_maximo``.

        Otherwise a state could never be reached (a reorder point under the minimum hides
        ``BAJO``; a maximum at or under it hides ``EXCESO``): a configuration error.
        """
        if not self.stock_minimo <= self.punto_reorden < self.stock_maximo:
            raise ConfigError(
                f"{where}: stock thresholds must satisfy stock_minimo <= punto_reorden < "
                f"stock_maximo (got {self.stock_minimo}, {self.punto_reorden}, "
                f"{self.stock_maximo})"
            )
        return self

    def merged(self, overrides: dict[str, Decimal]) -> StockThresholds:
        """These thresholds with a location's own values (from the stores file) on top."""
        return StockThresholds(
            stock_minimo=overrides.get("stock_minimo", self.stock_minimo),
            stock_maximo=overrides.get("stock_maximo", self.stock_maximo),
            punto_reorden=overrides.get("punto_reorden", self.punto_reorden),
        )


THRESHOLD_KEYS = ("stock_minimo", "stock_maximo", "punto_reorden")


def parse_threshold(raw: object, where: str) -> Decimal:
    """One threshold from the environment or the stores file: a number >= 0 that fits
    DECIMAL(12,4) exactly (a value the column would round or refuse is a configuration error)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ConfigError(f"{where} must be a number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ConfigError(f"{where}={raw!r} is not a number") from None
    if not value.is_finite() or value < 0 or value > _THRESHOLD_LIMIT:
        raise ConfigError(f"{where}={raw!r} must be between 0 and {_THRESHOLD_LIMIT}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise ConfigError(f"{where}={raw!r} has more than 4 decimals (DECIMAL(12,4))")
    return value


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows, else a configuration error."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"ETL_TIMEZONE={name!r} is not a known IANA time zone (e.g. America/Caracas)"
        ) from None
    return name


def local_naive(moment: dt.datetime, timezone: str) -> dt.datetime:
    """``moment`` as the chain's wall-clock time, without zone (what the backend compares with
    its own ``CURRENT_DATE``). A naive ``moment`` is UTC, fluxion's convention everywhere else."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
