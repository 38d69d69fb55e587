"""Settings from the environment: defaults, parsing, and one clear error per bad value."""

import re
from decimal import Decimal
from pathlib import Path

import pytest

from fluxion_etl.config import Settings
from fluxion_etl.contract import StockThresholds
from fluxion_etl.errors import ConfigError


def test_defaults_follow_the_deployment_contract() -> None:
    settings = Settings.from_env({})
    assert settings.database_path == Path("./fluxion.duckdb")
    assert settings.stores_file is None
    assert settings.engine == "arrow"
    assert (settings.batch_size, settings.max_retries) == (50_000, 3)
    assert (settings.workers, settings.memory_mib) == (None, None)  # automatic: budget.py
    assert settings.timeout_seconds == 1800 and settings.lock_wait_seconds == 600
    assert settings.odbc_driver == "ODBC Driver 18 for SQL Server"
    assert settings.log_level == "INFO"


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_PATH": "/data/x.duckdb",
            "ETL_STORES_FILE": "/data/stores.toml",
            "ETL_TIENDAS": "tienda_02, cedi_seco,tienda_02",
            "ETL_ENGINE": "PYODBC",
            "ETL_BATCH_SIZE": "1000",
            "ETL_WORKERS": "8",
            "ETL_MEMORY_MIB": "3072",
            "ETL_TIMEOUT_SECONDS": "90.5",
            "LOG_LEVEL": "debug",
            "ENVIRONMENT": "production",
            "RUN_MODE": "scheduled",
        }
    )
    assert settings.database_path == Path("/data/x.duckdb")
    assert settings.selected_stores == ("tienda_02", "cedi_seco")
    assert settings.engine == "pyodbc"
    assert settings.batch_size == 1000 and settings.workers == 8
    assert settings.memory_mib == 3072
    assert settings.timeout_seconds == 90.5
    assert settings.log_level == "DEBUG"
    assert settings.context == {"environment": "production", "run_mode": "scheduled"}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ETL_BATCH_SIZE", "lots", "ETL_BATCH_SIZE='lots' is not a whole number"),
        ("ETL_BATCH_SIZE", "0", "ETL_BATCH_SIZE=0 must be at least 1"),
        ("ETL_WORKERS", "2.5", "ETL_WORKERS='2.5' is not a whole number"),
        ("ETL_WORKERS", "0", "ETL_WORKERS=0 must be at least 1"),
        ("ETL_MEMORY_MIB", "4G", "ETL_MEMORY_MIB='4G' is not a whole number"),
        ("ETL_ENGINE", "odbc", "ETL_ENGINE='odbc' is not one of: arrow, pyodbc"),
        ("ETL_TIMEOUT_SECONDS", "nan", "ETL_TIMEOUT_SECONDS=nan must be at least 1"),
        ("ETL_LOCK_WAIT_SECONDS", "soon", "ETL_LOCK_WAIT_SECONDS='soon' is not a number"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' is not one of"),
        ("ETL_TIENDAS", "tienda_02,,cedi_seco", "has an empty store id"),
    ],
)
def test_bad_values_are_configuration_errors_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({variable: value})


def test_blank_values_mean_default() -> None:
    assert Settings.from_env({"ETL_BATCH_SIZE": "  ", "ETL_ENGINE": ""}).batch_size == 50_000


@pytest.mark.parametrize("value", ["", "  ", " , "])
def test_an_etl_tiendas_set_but_empty_is_an_error_not_the_whole_chain(value: str) -> None:
    """A script's empty variable (``ETL_TIENDAS=$SHARD``) must not silently run every store;
    only an unset ETL_TIENDAS means "all active"."""
    with pytest.raises(ConfigError, match="ETL_TIENDAS"):
        Settings.from_env({"ETL_TIENDAS": value})
    assert Settings.from_env({}).selected_stores == ()


def test_the_backend_contract_settings_default_to_what_the_chain_used() -> None:
    settings = Settings.from_env({})
    assert settings.timezone == "America/Caracas"
    assert settings.stock_thresholds == StockThresholds(Decimal(10), Decimal(100), Decimal(20))
    assert settings.duckdb_storage_version == "v1.0.0"


def test_the_backend_contract_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "ETL_TIMEZONE": "America/Bogota",
            "ETL_STOCK_MINIMO": "2.5",
            "ETL_PUNTO_REORDEN": "4",
            "ETL_STOCK_MAXIMO": "60",
            "ETL_DUCKDB_STORAGE_VERSION": "v1.4.0",
        }
    )
    assert settings.timezone == "America/Bogota"
    assert settings.stock_thresholds == StockThresholds(Decimal("2.5"), Decimal(60), Decimal(4))
    assert settings.duckdb_storage_version == "v1.4.0"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ETL_TIMEZONE": "Caracas"}, "ETL_TIMEZONE='Caracas' is not a known IANA time zone"),
        ({"ETL_STOCK_MINIMO": "diez"}, "ETL_STOCK_MINIMO='diez' is not a number"),
        ({"ETL_STOCK_MINIMO": "-1"}, "ETL_STOCK_MINIMO='-1' must be between 0 and"),
        ({"ETL_STOCK_MAXIMO": "1e9"}, "ETL_STOCK_MAXIMO='1e9' must be between 0 and"),
        ({"ETL_PUNTO_REORDEN": "nan"}, "ETL_PUNTO_REORDEN='nan' must be between 0 and"),
        ({"ETL_PUNTO_REORDEN": "20.00001"}, "has more than 4 decimals"),
        ({"ETL_STOCK_MINIMO": "30"}, "stock_minimo <= punto_reorden < stock_maximo"),
        ({"ETL_STOCK_MAXIMO": "20"}, "stock_minimo <= punto_reorden < stock_maximo"),
        ({"ETL_DUCKDB_STORAGE_VERSION": "1.4"}, "'1.4' is not a DuckDB storage version"),
    ],
)
def test_bad_backend_contract_settings_are_configuration_errors(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)


def test_an_empty_etl_workers_means_automatic_as_the_stack_passes_it() -> None:
    assert Settings.from_env({"ETL_WORKERS": "", "ETL_MEMORY_MIB": " "}).workers is None


URL = "postgresql://etl@db.internal:5432/inventario"


def test_the_table_layout_defaults_to_inventario_raw() -> None:
    settings = Settings.from_env({})
    assert settings.target_layout == "inventario_raw" and settings.ledger_schema == "fluxion"
    assert not settings.owns_products


def test_the_inventario_actual_layout_and_its_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": URL,
            "ETL_TARGET_LAYOUT": "INVENTARIO_ACTUAL",
            "ETL_LEDGER_SCHEMA": "fluxion_etl",
            "ETL_OWNS_PRODUCTS": "true",
        }
    )
    assert settings.target_layout == "inventario_actual"
    assert settings.ledger_schema == "fluxion_etl" and settings.owns_products


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ETL_TARGET_LAYOUT": "inventario"}, "ETL_TARGET_LAYOUT='inventario' is not one of"),
        ({"ETL_TARGET_LAYOUT": "inventario_actual"}, "set DATABASE_URL"),
        (
            {
                "DATABASE_URL": URL,
                "ETL_TARGET_LAYOUT": "inventario_actual",
                "ETL_LEDGER_SCHEMA": "public",
            },
            "ETL_LEDGER_SCHEMA=public is DATABASE_SCHEMA too",
        ),
        ({"ETL_LEDGER_SCHEMA": "Fluxion-ETL"}, "ETL_LEDGER_SCHEMA='Fluxion-ETL' must be"),
        ({"ETL_OWNS_PRODUCTS": "si"}, "ETL_OWNS_PRODUCTS='si' is not true or false"),
    ],
)
def test_bad_layout_settings_are_configuration_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)
