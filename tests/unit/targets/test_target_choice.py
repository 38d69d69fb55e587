"""Choosing the target from the settings: DATABASE_PATH (DuckDB, the default) or DATABASE_URL."""

from __future__ import annotations

import pytest

from fluxion_etl.config import Settings
from fluxion_etl.errors import ConfigError
from fluxion_etl.targets import open_target
from fluxion_etl.targets.duckdb.target import DuckDBTarget
from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_etl.targets.postgres.url import check_database_url, resolve_login

URL = "postgresql://etl@db.internal:5432/inventario"


def test_without_a_url_the_target_is_the_duckdb_file() -> None:
    target = open_target(Settings.from_env({"DATABASE_PATH": "/data/x.duckdb"}))
    assert isinstance(target, DuckDBTarget) and target.describe() == "/data/x.duckdb"


def test_a_postgresql_url_selects_postgres_with_a_verified_server_by_default() -> None:
    settings = Settings.from_env({"DATABASE_URL": URL, "PGPASSWORD": "s3cret"})
    target = open_target(settings)
    assert isinstance(target, PostgresTarget)
    assert target.login.params["sslmode"] == "verify-full"
    assert target.schema == "public"
    assert "s3cret" not in repr(target.login) + target.describe()


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DATABASE_URL": URL, "DATABASE_PATH": "/data/x.duckdb"}, "both DATABASE_URL"),
        ({"DATABASE_URL": "mysql://etl@db/inventario"}, "must be a postgresql:// URL"),
        ({"DATABASE_URL": "/data/x.duckdb"}, "must be a postgresql:// URL"),
        ({"DATABASE_URL": "postgresql://etl:pw@db/inventario"}, "must not carry a password"),
        ({"DATABASE_URL": URL + "?password=pw"}, "must not carry a password"),
        ({"DATABASE_URL": URL + "?sslmode=prefer"}, "unencrypted"),
        ({"DATABASE_URL": URL, "DATABASE_SCHEMA": "Inventario; drop"}, "DATABASE_SCHEMA"),
    ],
)
def test_a_bad_target_setting_is_a_one_line_configuration_error(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        Settings.from_env(env)
    assert "\n" not in str(caught.value) and "pw" not in str(caught.value).replace("password", "")


def test_sslmode_disable_is_the_visible_opt_out() -> None:
    local = "postgresql://etl@127.0.0.1:5432/inventario?sslmode=disable"
    assert check_database_url(local, {})["sslmode"] == "disable"
    insecure = {"DATABASE_INSECURE_TLS": "1"}
    assert check_database_url(URL + "?sslmode=disable", insecure)["sslmode"] == "disable"


def test_pgpassword_wins_and_the_url_user_is_kept() -> None:
    login = resolve_login(URL, {"PGPASSWORD": "pw1-Long-enough"})
    assert login.password == "pw1-Long-enough" and login.params["user"] == "etl"
    said = "FATAL: password pw1-Long-enough rejected"
    assert login.redact(said) == "FATAL: password *** rejected"  # short ones: test_redaction.py


def test_the_layout_is_given_to_the_postgres_target_once() -> None:
    from fluxion_etl.stores import Store
    from fluxion_etl.targets.postgres.actual import ActualLayout
    from fluxion_etl.targets.postgres.layouts import RawLayout

    raw = open_target(Settings.from_env({"DATABASE_URL": URL}))
    assert isinstance(raw, PostgresTarget) and isinstance(raw.layout, RawLayout)
    settings = Settings.from_env({"DATABASE_URL": URL, "ETL_TARGET_LAYOUT": "inventario_actual"})
    store = Store("cedi_seco", "CEDI SECO", "cedi", "h", 1433, "VAD10", "1413", almacen="SECO")
    target = open_target(settings, stores=[store])
    assert isinstance(target, PostgresTarget) and isinstance(target.layout, ActualLayout)
    assert target.layout.search_path == "fluxion" and target.schema == "public"
    assert target.layout.code("cedi_seco") == "SECO"
    assert target.layout.code("cedi_frio") == "CEDI-FRIO"
    assert "layout=inventario_actual ledger=fluxion" in target.describe()
