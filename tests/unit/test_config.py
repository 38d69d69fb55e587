"""Settings from the environment: defaults, parsing, and one clear error per bad value."""

from pathlib import Path

import pytest

from fluxion_etl.config import Settings
from fluxion_etl.errors import ConfigError


def test_defaults_follow_the_deployment_contract() -> None:
    settings = Settings.from_env({})
    assert settings.database_path == Path("./fluxion.duckdb")
    assert settings.stores_file is None
    assert settings.engine == "arrow"
    assert (settings.batch_size, settings.workers, settings.max_retries) == (50_000, 4, 3)
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
    assert settings.timeout_seconds == 90.5
    assert settings.log_level == "DEBUG"
    assert settings.context == {"environment": "production", "run_mode": "scheduled"}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ETL_BATCH_SIZE", "lots", "ETL_BATCH_SIZE='lots' is not a whole number"),
        ("ETL_BATCH_SIZE", "0", "ETL_BATCH_SIZE=0 must be at least 1"),
        ("ETL_WORKERS", "2.5", "ETL_WORKERS='2.5' is not a whole number"),
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
