"""Redaction hides the password without turning ordinary words into ``***`` (issue 23, item 6).

Replacing every occurrence of the password as text garbled messages and told the reader the
password: ``failed for user "***"`` when it equals the user, ``port *** failed`` when it is
``5432``, ``is the VPN u*** and ...`` when it is ``p``. And it ran after whitespace was collapsed,
so a password with two spaces in a row escaped it.
"""

from __future__ import annotations

import pytest

from fluxion_etl.credentials import Credentials, redact
from fluxion_etl.source.odbc_errors import classify
from fluxion_etl.targets.postgres.url import PostgresLogin

WHERE = "tienda_02 (192.168.2.10:14348)"


@pytest.mark.parametrize(
    ("login", "message"),
    [
        (Credentials("etl", "etl"), 'login failed for user "etl"'),
        (Credentials("etl", "5432"), "connection to 127.0.0.1 port 5432 failed"),
        (Credentials("etl", "p"), "is the VPN up and the server listening?"),
        (Credentials("etl", "server"), "the server closed the connection"),
        (Credentials("etl_reader_01", "etl_reader_01"), 'login failed for "etl_reader_01"'),
    ],
)
def test_ordinary_words_are_left_alone(login: Credentials, message: str) -> None:
    assert redact(message, login) == message


@pytest.mark.parametrize("password", ["5432", "p", "etl", "a}b", "Str0ng;pass{=}word"])
@pytest.mark.parametrize(
    "template",
    [
        "DRIVER=FreeTDS;UID=etl;PWD={secret};",
        "Driver={{X}};PWD={{{escaped}}};",
        "password={secret} host=h",
        "Password: {secret}",
    ],
)
def test_where_a_driver_shows_the_password_it_is_always_hidden(
    password: str, template: str
) -> None:
    login = Credentials("etl", password)
    escaped = password.replace("}", "}}")
    shown = template.format(secret=password, escaped=escaped)
    hidden = template.format(secret="***", escaped="***")
    assert redact(shown, login) == hidden


def test_a_long_password_is_hidden_anywhere() -> None:
    login = Credentials("etl", "Sup3r-Secret!")
    assert redact("echo: Sup3r-Secret! and x=Sup3r-Secret!", login) == "echo: *** and x=***"


def test_redaction_runs_before_whitespace_is_collapsed() -> None:
    login = Credentials("etl", "correct  horse  battery")
    driver = Exception(
        "08001",
        "[FreeTDS][SQL Server]Unable to connect:\\n  echo correct  horse  battery  (PWD=x)",
    )
    error = classify(driver, "connect", WHERE, login)
    text = str(error)
    assert "correct" not in text and "horse" not in text and "battery" not in text
    assert "***" in text and "  " not in text  # redacted, then collapsed


def test_the_postgres_targets_redaction_follows_the_same_rules() -> None:
    login = PostgresLogin({"user": "fluxion", "host": "db"}, password="5432")
    said = 'connection to server at "db", port 5432 failed: password=5432 rejected'
    assert (
        login.redact(said)
        == 'connection to server at "db", port 5432 failed: password=*** rejected'
    )
    spaced = PostgresLogin({"user": "fluxion"}, password="two  spaces here")
    assert "two" not in spaced.redact("FATAL: two  spaces here\\nDETAIL: x")
