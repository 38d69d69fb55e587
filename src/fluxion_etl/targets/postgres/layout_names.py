"""The PostgreSQL table layouts' names and the rule their settings follow (``ETL_TARGET_LAYOUT``,
``ETL_LEDGER_SCHEMA``): read by the settings, before any connection. The layouts themselves are
:mod:`.layouts` (``inventario_raw``) and :mod:`.actual` (``inventario_actual``).
"""

from __future__ import annotations

from fluxion_etl.errors import ConfigError

RAW = "inventario_raw"
ACTUAL = "inventario_actual"
LAYOUTS = (RAW, ACTUAL)
DEFAULT_LAYOUT = RAW
DEFAULT_LEDGER_SCHEMA = "fluxion"


def check_layout(
    layout: str, database_url: str | None, database_schema: str, ledger_schema: str
) -> None:
    """The layout's settings agree with each other (ConfigError, exit 2, otherwise)."""
    if layout != ACTUAL:
        return
    if database_url is None:
        raise ConfigError(
            "ETL_TARGET_LAYOUT=inventario_actual writes the chain backend's PostgreSQL tables: "
            "set DATABASE_URL (the DuckDB file only has the inventario_raw layout)"
        )
    if ledger_schema == database_schema:
        raise ConfigError(
            f"ETL_LEDGER_SCHEMA={ledger_schema} is DATABASE_SCHEMA too: fluxion's ledger must live "
            "in a schema of its own in the inventario_actual layout (the chain has an "
            "etl_ejecuciones of its own)"
        )
