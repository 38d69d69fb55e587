"""Stores-file values cannot smuggle settings into a connection string, for any driver family.

The attacks (issue 23): FreeTDS ends a braced value at the first ``};``, so a ``database`` of
``VAD10};Port=59998;x={`` sent the login to another port; the SQLite driver ignores braces, so
``x.sqlite;LoadExt=/path/evil.so`` loaded a library. Each value is now checked for what it is,
before any connection: exit 2 (ConfigError) naming the store and the field.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials
from fluxion_etl.errors import ConfigError
from fluxion_etl.source.connection import (
    DriverFamily,
    build_connection_string,
    check_connection_values,
    check_login_values,
    check_store_values,
    is_host,
)
from fluxion_etl.source.drivers import require_drivers
from fluxion_etl.stores import Store, parse_stores

NETWORK_DRIVERS = (
    "ODBC Driver 18 for SQL Server",
    "ODBC Driver 17 for SQL Server",
    "FreeTDS",
    "PostgreSQL Unicode",
)
STORE = Store("tienda_02", "AV. BOLIVAR", "tienda", "192.168.2.10", 14348, "VAD10", "0202")
SQLITE = Store("demo_01", "DEMO", "tienda", "", 1, "/data/demo_01.sqlite", "0101", driver="SQLite3")
LOGIN = Credentials("etl_reader", "s3cret;=")


@pytest.mark.parametrize("driver", NETWORK_DRIVERS)
@pytest.mark.parametrize(
    "database",
    [
        "VAD10};Port=59998;x={",
        "VAD10};Database=INJECTED2;x={",
        "VAD10;Server=10.0.0.9",
        "{VAD10}",
        "x=y",
        "/var/lib/evil.db",
        "..\\\\VAD10",
        " VAD10",
    ],
)
def test_a_database_carrying_settings_or_a_path_is_refused_naming_store_and_field(
    driver: str, database: str
) -> None:
    store = replace(STORE, database=database)
    with pytest.raises(ConfigError, match=r"store tienda_02: field 'database'"):
        check_store_values(store, driver)
    with pytest.raises(ConfigError, match=r"field 'database'"):  # and the builder refuses too
        build_connection_string(store, driver, LOGIN)


@pytest.mark.parametrize("driver", NETWORK_DRIVERS)
@pytest.mark.parametrize(
    "host", ["10.0.0.9;Port=1", "h}", "{h}", "a=b", "/run/sock", "tcp:h,1433", "h 1", ""]
)
def test_a_host_that_is_not_a_host_is_refused(driver: str, host: str) -> None:
    with pytest.raises(ConfigError, match=r"store tienda_02: field 'host'"):
        check_store_values(replace(STORE, host=host), driver)


@pytest.mark.parametrize(
    "database", ["x.sqlite;LoadExt=/tmp/evil.so;", "x.sqlite}", "{x.sqlite}", "a=b.sqlite"]
)
def test_a_sqlite_file_path_cannot_carry_settings(database: str) -> None:
    store = replace(SQLITE, database=database)
    with pytest.raises(ConfigError, match=r"store demo_01: field 'database' \(the SQLite file"):
        check_store_values(store, "SQLite3")
    with pytest.raises(ConfigError):
        build_connection_string(store, "SQLite3", None)


def test_ordinary_values_pass_for_every_family() -> None:
    for driver in NETWORK_DRIVERS:
        for host in ("192.168.2.10", "127.0.0.1", "::1", "srv-stellar.chain.local", "SRV_01"):
            for database in ("VAD10", "VAD_20", "Stellar DB", "db.2024"):
                check_store_values(replace(STORE, host=host, database=database), driver)
    check_store_values(replace(SQLITE, database="/data/my stores/demo 01.sqlite"), "SQLite3")
    assert is_host("a.b.") and not is_host("a..b") and not is_host("-a")


@pytest.mark.parametrize("driver", ["Postgre;SQL Unicode", "{FreeTDS}", "Driver=FreeTDS"])
def test_a_driver_name_carrying_settings_is_refused(driver: str) -> None:
    with pytest.raises(ConfigError, match=r"store tienda_02: field 'driver' must not contain"):
        check_store_values(replace(STORE, driver=driver), driver)


def test_a_driver_library_path_needs_the_explicit_setting() -> None:
    lib = "/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so"
    store = replace(STORE, driver=lib)
    with pytest.raises(ConfigError, match=r"field 'driver' is a library path .*ETL_ALLOW_DRIVER"):
        check_store_values(store, lib)
    with pytest.raises(ConfigError, match="ETL_ALLOW_DRIVER_PATHS=1"):
        require_drivers([store], "FreeTDS")  # refused before the pre-flight loads it
    with pytest.raises(ConfigError, match=r"field 'driver': unsupported ODBC driver"):
        evil = "/srv/libevil.so"
        check_store_values(replace(STORE, driver=evil), evil, allow_driver_paths=True)
    check_store_values(store, lib, allow_driver_paths=True)  # allowed: psqlODBC by its path


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).allow_driver_paths is False
    assert Settings.from_env({"ETL_ALLOW_DRIVER_PATHS": "1"}).allow_driver_paths is True
    with pytest.raises(ConfigError, match="ETL_ALLOW_DRIVER_PATHS"):
        Settings.from_env({"ETL_ALLOW_DRIVER_PATHS": "maybe"})


def test_freetds_requires_encryption() -> None:
    text = build_connection_string(STORE, "FreeTDS", LOGIN).text
    assert ";Encryption=require;" in text


@pytest.mark.parametrize("field", ["user", "password"])
def test_a_login_freetds_cannot_carry_is_refused_with_the_reason(field: str) -> None:
    login = replace(LOGIN, **{field: "pa}ss;word"})
    with pytest.raises(ConfigError, match=r"contains '}', which the FreeTDS driver cannot pass"):
        check_login_values(login, {DriverFamily.FREETDS})
    with pytest.raises(ConfigError) as caught:
        build_connection_string(STORE, "FreeTDS", login)
    assert "pa}ss" not in str(caught.value)  # the reason, never the value
    check_login_values(login, {DriverFamily.MSSQL, DriverFamily.POSTGRES})  # they can


def test_the_run_checks_every_store_with_its_own_or_the_default_driver() -> None:
    settings = Settings(odbc_driver="FreeTDS")
    fine = replace(STORE, id="tienda_01")
    bad = replace(STORE, database="VAD10};Port=59998;x={")
    with pytest.raises(ConfigError, match="store tienda_02: field 'database'"):
        check_connection_values([fine, bad], settings, LOGIN)
    with pytest.raises(ConfigError, match="FreeTDS driver cannot pass"):
        check_connection_values([fine], settings, Credentials("u", "a}b"))
    own = replace(fine, driver="ODBC Driver 18 for SQL Server")
    check_connection_values([own], settings, Credentials("u", "a}b"))  # not a FreeTDS store


@pytest.mark.parametrize("warehouse", ["0202;x", "02 02", "{0202}", "a=b", "../0202"])
def test_a_warehouse_must_be_a_code(warehouse: str) -> None:
    entry = {
        "id": "tienda_02",
        "name": "AV. BOLIVAR",
        "type": "tienda",
        "host": "192.168.2.10",
        "database": "VAD10",
        "warehouse": warehouse,
    }
    with pytest.raises(ConfigError, match=r"store 'tienda_02': field 'warehouse'"):
        parse_stores({"stores": [entry]})
