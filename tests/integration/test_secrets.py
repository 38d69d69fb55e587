"""Credentials from Secrets Manager (moto on 127.0.0.1), a hostile password, and no leak anywhere.

The test makes a PostgreSQL login of its own whose password contains every character that
breaks naive connection strings (``; } { = ! "``), puts it in a secret, and runs the real CLI
with only ``SQL_CREDENTIALS_SECRET_ID``. Then it greps everything the runs produced -- stdout,
stderr, every ledger and inventory value, the DuckDB file's bytes, the staging directory -- for
the password, in plain and in ODBC-escaped form.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from aws_local import MotoEndpoint
from etl_cli import ledger_rows, published_rows, run_cli, write_stores

from fluxion_harness.postgres_source import PgServer, PgStore

pytestmark = [pytest.mark.postgres, pytest.mark.aws]

HOSTILE = ';}{=!"'


@pytest.fixture
def hostile_login(pg_server: PgServer, make_pg_store: Any) -> Iterator[tuple[PgStore, str, str]]:
    """(a store database, a login that can read it, that login's hostile password)."""
    from psycopg2 import sql

    store: PgStore = make_pg_store(400, seed=51)
    user = f"fluxion_secret_{secrets.token_hex(4)}"
    password = f"p{HOSTILE}{secrets.token_urlsafe(8)}{HOSTILE}"
    admin = pg_server.connect()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)
            )
        )
    grants = pg_server.connect(store.database)
    with grants, grants.cursor() as cur:
        cur.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(user)
            )
        )
    try:
        yield store, user, password
    finally:
        with grants, grants.cursor() as cur:
            cur.execute(
                sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(
                    sql.Identifier(user)
                )
            )
        grants.close()
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))
        admin.close()


def secret_env(
    etl_env: dict[str, str], moto_endpoint: MotoEndpoint, name: str, user: str, password: str
) -> dict[str, str]:
    moto_endpoint.client("secretsmanager").create_secret(
        Name=name, SecretString=json.dumps({"username": user, "password": password})
    )
    env = {k: v for k, v in etl_env.items() if k not in ("SQL_USER", "SQL_PASS")}
    return {
        **env,
        **moto_endpoint.env,
        "AWS_ENDPOINT_URL": moto_endpoint.url,
        "SQL_CREDENTIALS_SECRET_ID": name,
    }


def everything_written(etl_env: dict[str, str], outputs: list[str]) -> str:
    """All the text the runs left behind, for the grep."""
    db = Path(etl_env["DATABASE_PATH"])
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [
            repr(con.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("etl_ejecuciones", "inventario_raw")
        ]
    files = [db, *Path(etl_env["ETL_STAGING_DIR"]).rglob("*"), db.with_name(db.name + ".wal")]
    raw = [path.read_bytes().decode("latin-1") for path in files if path.is_file()]
    return "\n".join(outputs + tables + raw)


def test_secrets_manager_credentials_with_a_hostile_password_work_and_never_leak(
    etl_env: dict[str, str],
    pg_server: PgServer,
    moto_endpoint: MotoEndpoint,
    hostile_login: tuple[PgStore, str, str],
) -> None:
    store, user, password = hostile_login
    wrong = f"w{HOSTILE}{secrets.token_urlsafe(8)}"
    write_stores(etl_env, ([store], pg_server))
    suffix = secrets.token_hex(3)
    good = secret_env(etl_env, moto_endpoint, f"fluxion/sql-{suffix}", user, password)
    bad = secret_env(etl_env, moto_endpoint, f"fluxion/wrong-{suffix}", user, wrong)

    ran = run_cli(["run"], good)
    checked = run_cli(["check"], good)
    refused = run_cli(["run"], bad)
    refused_check = run_cli(["check"], bad)

    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr
    assert set(published_rows(Path(etl_env["DATABASE_PATH"]), store.id)) == set(
        store.data.expected
    )
    assert checked.returncode == 0, checked.stdout
    assert refused.returncode == 1
    assert ledger_rows(Path(etl_env["DATABASE_PATH"]))[store.id]["error_tipo"] == "login"
    assert refused_check.returncode == 1 and "FAIL" in refused_check.stdout

    outputs = [
        text for result in (ran, checked, refused, refused_check) for text in (result.stdout,
                                                                              result.stderr)
    ]  # fmt: skip
    written = everything_written(etl_env, outputs)
    assert user in written  # the grep does see what the runs wrote
    for secret in (password, wrong):
        for form in (secret, secret.replace("}", "}}"), secret.strip(HOSTILE)):
            assert form not in written


def test_a_missing_secret_is_a_configuration_error_that_names_it(
    etl_env: dict[str, str], moto_endpoint: MotoEndpoint
) -> None:
    env = {k: v for k, v in etl_env.items() if k not in ("SQL_USER", "SQL_PASS")}
    env.update(moto_endpoint.env, AWS_ENDPOINT_URL=moto_endpoint.url)
    env["SQL_CREDENTIALS_SECRET_ID"] = "fluxion/does-not-exist"
    result = run_cli(["run"], env)
    assert result.returncode == 2
    assert "fluxion/does-not-exist" in result.stderr
    assert "ResourceNotFoundException" in result.stderr
    assert not Path(env["DATABASE_PATH"]).exists()


@pytest.mark.parametrize(
    "stored", ['{"username": "etl"}', "not json", '["etl", "hunter2"]', '"hunter2"']
)
def test_a_secret_of_the_wrong_shape_is_one_line_naming_the_keys_on_both_logins(
    moto_endpoint: MotoEndpoint, monkeypatch: pytest.MonkeyPatch, stored: str
) -> None:
    """The SQL login's secret and the PostgreSQL target's are read by one function: a secret
    without the keys each needs, or not a JSON object, is a ConfigError that says what the JSON
    must hold and never repeats what it held."""
    from fluxion_etl.credentials import load_credentials
    from fluxion_etl.errors import ConfigError
    from fluxion_etl.targets.postgres.url import resolve_login

    for name, value in {**moto_endpoint.env, "AWS_ENDPOINT_URL": moto_endpoint.url}.items():
        monkeypatch.setenv(name, value)
    secret_id = f"fluxion/shape-{secrets.token_hex(4)}"
    moto_endpoint.client("secretsmanager").create_secret(Name=secret_id, SecretString=stored)

    with pytest.raises(ConfigError) as sql_login:
        load_credentials({"SQL_CREDENTIALS_SECRET_ID": secret_id})
    assert str(sql_login.value) == (
        f"secret {secret_id} must be JSON with string keys 'username' and 'password'"
    )
    url = "postgresql://etl@127.0.0.1:5432/app?sslmode=disable"
    with pytest.raises(ConfigError) as target_login:
        resolve_login(url, {"TARGET_CREDENTIALS_SECRET_ID": secret_id})
    assert str(target_login.value) == (
        f"secret {secret_id} must be JSON with a string key 'password' (and 'username')"
    )
    assert "hunter2" not in str(sql_login.value) + str(target_login.value)
