"""Connection strings per driver family, escaping, and keeping the password out of sight."""

import pytest

from fluxion_etl.credentials import Credentials, load_credentials, redact
from fluxion_etl.errors import ConfigError
from fluxion_etl.source.connection import (
    DriverFamily,
    build_connection_string,
    driver_family,
    odbc_value,
)
from fluxion_etl.stores import Store

STORE = Store("tienda_02", "AV. BOLIVAR", "tienda", "192.168.2.10", 14348, "VAD10", "0202")
CREDS = Credentials("etl_reader", 'p;w}{=!"x')
LOGIN = Credentials("etl_reader", 'p;w{=!"x')  # all FreeTDS can carry: no '}'


@pytest.mark.parametrize(
    ("driver", "family"),
    [
        ("ODBC Driver 18 for SQL Server", DriverFamily.MSSQL),
        ("ODBC Driver 17 for SQL Server", DriverFamily.MSSQL),
        ("FreeTDS", DriverFamily.FREETDS),
        ("PostgreSQL Unicode", DriverFamily.POSTGRES),
        ("SQLite3", DriverFamily.SQLITE),
    ],
)
def test_driver_family_is_inferred_from_the_name(driver: str, family: DriverFamily) -> None:
    assert driver_family(driver) is family


def test_unknown_driver_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported ODBC driver 'Oracle'"):
        driver_family("Oracle")


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("VAD10", "VAD10"),
        ("a;b", "{a;b}"),
        ("a}b", "{a}}b}"),
        ("{x}", "{{x}}}"),
        ("k=v", "{k=v}"),
        (" pad", "{ pad}"),
        ("", "{}"),
    ],
)
def test_values_are_escaped_the_odbc_way(value: str, escaped: str) -> None:
    assert odbc_value(value) == escaped


def test_sql_server_18_string() -> None:
    text = build_connection_string(STORE, "ODBC Driver 18 for SQL Server", CREDS, 20).text
    assert text.startswith("Driver=ODBC Driver 18 for SQL Server;Server=tcp:192.168.2.10,14348;")
    assert "Database=VAD10;" in text and "TrustServerCertificate=yes;" in text
    assert "Connection Timeout=20;" in text
    assert text.endswith('UID=etl_reader;PWD={p;w}}{=!"x};')


def test_freetds_and_postgres_use_server_and_port() -> None:
    tds = build_connection_string(STORE, "FreeTDS", LOGIN).text
    assert "Server=192.168.2.10;Port=14348;" in tds and "TDS_Version=7.4;" in tds
    pg = build_connection_string(STORE, "PostgreSQL Unicode", CREDS).text
    assert pg.startswith("Driver=PostgreSQL Unicode;Server=192.168.2.10;Port=14348;Database=VAD10;")


def test_sqlite_uses_the_file_and_no_credentials() -> None:
    store = Store("demo", "DEMO", "tienda", "", 1, "/data/a b.sqlite", "0202", driver="SQLite3")
    built = build_connection_string(store, "SQLite3", CREDS)
    # read-only and never created: the SQLite3 driver reads no braces, so the path is a URI
    assert built.text.startswith("Driver=SQLite3;Database=file:/data/a%20b.sqlite?mode=ro;")
    assert ";NoCreat=1;" in built.text
    assert ";StepAPI=1;" in built.text  # rows streamed, not read whole first (issue 25)
    assert "PWD" not in built.text


def test_reprs_never_show_the_password() -> None:
    built = build_connection_string(STORE, "ODBC Driver 18 for SQL Server", CREDS)
    for shown in (repr(built), str(built), repr(CREDS), str(CREDS), f"{CREDS}"):
        assert CREDS.password not in shown and "p;w" not in shown


def test_redact_scrubs_plain_and_escaped_password() -> None:
    text = 'failed for PWD={p;w}}{=!"x} and p;w}{=!"x'
    assert redact(text, CREDS) == "failed for PWD={***} and ***"


def test_credentials_come_from_the_environment_only() -> None:
    assert load_credentials({}) is None
    creds = load_credentials({"SQL_USER": "u", "SQL_PASS": "s3"})
    assert creds == Credentials("u", "s3")
    with pytest.raises(ConfigError, match="set both SQL_USER and SQL_PASS"):
        load_credentials({"SQL_USER": "u"})
