"""The PostgreSQL target publishes only into objects its own role (or a trusted one) owns.

Issue 23, item 1, reproduced with real roles: another role that may create objects in the
target's schema (``public`` before PostgreSQL 15) creates fluxion's tables first, with schema
versions 1-3 and a ``BEFORE INSERT`` trigger that turns every price into ``0.01``. fluxion used
to adopt them: ``check`` said ok, ``run`` exited 0, every price served was ``0.01``, and the
vacuum the server refused was logged as done. Now both stop with exit 2 naming the object.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import psycopg
import pytest
from etl_cli import run_cli, write_stores
from psycopg import sql
from target_db import TargetReader

from fluxion_etl.targets.postgres import schema as pgschema
from fluxion_etl.targets.postgres import vacuum as pgvacuum
from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_etl.targets.postgres.url import resolve_login
from fluxion_harness import backend_pg
from fluxion_harness.postgres_source import PgServer, PgStore

CHEAP = """
CREATE FUNCTION {schema}.cheap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.precio_venta_actual := 0.01; RETURN NEW; END $$;
CREATE TRIGGER cheap BEFORE INSERT ON {schema}.inventario_raw
FOR EACH ROW EXECUTE FUNCTION {schema}.cheap();
"""


@pytest.fixture
def store(pg_target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any) -> PgStore:
    made: PgStore = make_pg_store(300, seed=231)
    write_stores(pg_target_env, ([made], pg_server))
    return made


@pytest.fixture
def admin(pg_target_env: dict[str, str], pg_server: PgServer) -> Iterator[psycopg.Connection]:
    """A session as the test's own role (fluxion's role), in the target database."""
    reader = TargetReader(pg_target_env, pg_server)
    with reader.connect_pg() as con:
        yield con


@pytest.fixture
def other(admin: psycopg.Connection, pg_target_env: dict[str, str]) -> Iterator[str]:
    """A second role (a reader, the backend) fluxion's role may act as (SET ROLE) to create
    objects the way that role would; dropped with everything it owns afterwards."""
    name = f"fluxion_other_{secrets.token_hex(4)}"
    schema = pg_target_env["DATABASE_SCHEMA"]
    admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    admin.execute(sql.SQL("GRANT {} TO current_user").format(sql.Identifier(name)))
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    admin.execute(
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(
            sql.Identifier(schema), sql.Identifier(name)
        )
    )
    try:
        yield name
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def as_role(admin: psycopg.Connection, role: str, schema: str, statements: str) -> None:
    with admin.transaction():
        admin.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(schema)))
        admin.execute(statements.format(schema=schema).encode())


def plant_tables(admin: psycopg.Connection, role: str, schema: str, trigger: bool) -> None:
    """``role`` creates fluxion's tables (versions 1-3 recorded) and optionally the trigger,
    then lets fluxion's role write them, as the issue's attacker did."""
    with admin.transaction(), admin.cursor() as cur:
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        cur.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(schema)))
        pgschema.migrate(cur, schema)
        cur.execute(
            sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA {} TO PUBLIC").format(sql.Identifier(schema))
        )
    if trigger:
        as_role(admin, role, schema, CHEAP)


def prices(env: dict[str, str], server: PgServer, store_id: str) -> set[Decimal]:
    rows = TargetReader(env, server).rows(store_id)
    return {row["precio_venta_actual"] for row in rows.values()}


def revoke_create(admin: psycopg.Connection, role: str, schema: str) -> None:
    admin.execute(
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(
            sql.Identifier(schema), sql.Identifier(role)
        )
    )


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_schema_another_role_may_create_in_is_refused(
    pg_target_env: dict[str, str], store: PgStore, other: str, command: str
) -> None:
    result = run_cli([command], pg_target_env, timeout=120)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr
    schema = pg_target_env["DATABASE_SCHEMA"]
    assert f"schema {schema} lets {other} create objects in it" in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["run", "check"])
def test_tables_another_role_created_first_are_refused(
    pg_target_env: dict[str, str],
    pg_server: PgServer,
    store: PgStore,
    admin: psycopg.Connection,
    other: str,
    command: str,
) -> None:
    schema = pg_target_env["DATABASE_SCHEMA"]
    plant_tables(admin, other, schema, trigger=True)
    revoke_create(admin, other, schema)  # only the tables it made remain
    result = run_cli([command], pg_target_env, timeout=120)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr
    said = result.stdout + result.stderr
    assert f"table {schema}.etl_ejecuciones is owned by role {other}" in said
    assert "DATABASE_TRUSTED_OWNERS" in said
    assert prices(pg_target_env, pg_server, store.id) == set()  # nothing published


def test_a_trigger_another_role_put_on_fluxions_table_is_refused(
    pg_target_env: dict[str, str],
    pg_server: PgServer,
    store: PgStore,
    admin: psycopg.Connection,
    other: str,
) -> None:
    schema = pg_target_env["DATABASE_SCHEMA"]
    revoke_create(admin, other, schema)
    first = run_cli(["run"], pg_target_env, timeout=120)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    served = prices(pg_target_env, pg_server, store.id)
    admin.execute(
        sql.SQL("GRANT CREATE ON SCHEMA {} TO {}").format(
            sql.Identifier(schema), sql.Identifier(other)
        )
    )
    admin.execute(
        sql.SQL("GRANT TRIGGER ON {}.inventario_raw TO {}").format(
            sql.Identifier(schema), sql.Identifier(other)
        )
    )
    as_role(admin, other, schema, CHEAP)
    revoke_create(admin, other, schema)
    result = run_cli(["run"], pg_target_env, timeout=120)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr
    assert (
        f"trigger cheap on {schema}.inventario_raw runs a function owned by role {other}"
        in result.stderr
    )
    assert prices(pg_target_env, pg_server, store.id) == served  # never 0.01


def test_a_trusted_owner_is_accepted(
    pg_target_env: dict[str, str],
    pg_server: PgServer,
    store: PgStore,
    admin: psycopg.Connection,
    other: str,
) -> None:
    schema = pg_target_env["DATABASE_SCHEMA"]
    plant_tables(admin, other, schema, trigger=False)
    revoke_create(admin, other, schema)
    env = {**pg_target_env, "DATABASE_TRUSTED_OWNERS": f"someone_else, {other}"}
    check = run_cli(["check"], env, timeout=120)
    assert f"owned by {other}" in check.stdout, check.stdout + check.stderr
    result = run_cli(["run"], env, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert Decimal("0.01") not in prices(env, pg_server, store.id)


class ActingAs(PostgresTarget):
    """The target, its sessions acting as ``role`` (SET ROLE): a login that owns neither the
    table nor the database, which the server will not let vacuum the table."""

    role = ""

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        con = super().connect(autocommit=autocommit)
        con.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.role)))
        return con


def test_a_vacuum_the_server_refused_is_never_logged_as_done(
    pg_target_env: dict[str, str], store: PgStore, admin: psycopg.Connection, other: str
) -> None:
    schema = pg_target_env["DATABASE_SCHEMA"]
    revoke_create(admin, other, schema)
    assert run_cli(["run"], pg_target_env, timeout=120).returncode == 0  # fluxion's own table
    stranger = f"{other}_x"
    admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(stranger)))
    try:
        admin.execute(sql.SQL("GRANT {} TO current_user").format(sql.Identifier(stranger)))
        admin.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), sql.Identifier(stranger)
            )
        )
        logged = Recorder()
        target = ActingAs(
            resolve_login(pg_target_env["DATABASE_URL"], pg_target_env),
            schema,
            5.0,
            logger=cast(Any, logged),
        )
        target.role = stranger
        with target.connect(autocommit=True) as con:
            done = pgvacuum.vacuum(con)
        assert not done.vacuumed and done.refused and "inventario_raw" in done.refused
        target.reclaim()
        assert [event for level, event, _ in logged.lines] == [
            "dead rows not reclaimed: the server refused the vacuum"
        ]
        assert logged.lines[0][0] == "warning"
    finally:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(stranger)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(stranger)))


class Recorder:
    """A logger that keeps what it was told (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))


def test_in_the_inventario_actual_layout_the_chains_tables_need_their_owner_trusted(
    pg_target_env: dict[str, str],
    pg_server: PgServer,
    store: PgStore,
    admin: psycopg.Connection,
    other: str,
) -> None:
    """The chain's tables belong to the backend's role: untrusted, a run refuses them (exit 2
    naming the table and its owner) and writes nothing; named in DATABASE_TRUSTED_OWNERS, the
    same run publishes into them."""
    schema = pg_target_env["DATABASE_SCHEMA"]
    env = {
        **pg_target_env,
        "ETL_TARGET_LAYOUT": "inventario_actual",
        "ETL_LEDGER_SCHEMA": f"{schema}_fx",
    }
    as_role(admin, other, schema, backend_pg.BACKEND_DDL)  # the backend creates its tables
    admin.execute(
        sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA {} TO PUBLIC").format(sql.Identifier(schema))
    )
    admin.execute(
        sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO PUBLIC").format(
            sql.Identifier(schema)
        )
    )
    revoke_create(admin, other, schema)
    try:
        refused = run_cli(["run"], env, timeout=120)
        assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr
        said = refused.stdout + refused.stderr
        assert f"owned by role {other}" in said or f"owned by {other}" in said, said[-2000:]
        count = admin.execute(
            sql.SQL("SELECT count(*) FROM {}.inventario_actual").format(sql.Identifier(schema))
        ).fetchone()
        assert count == (0,)
        trusted = run_cli(["run"], {**env, "DATABASE_TRUSTED_OWNERS": other}, timeout=120)
        assert trusted.returncode == 0, trusted.stdout[-3000:] + trusted.stderr
        count = admin.execute(
            sql.SQL("SELECT count(*) FROM {}.inventario_actual WHERE ubicacion_id = %s").format(
                sql.Identifier(schema)
            ),
            [store.id],
        ).fetchone()
        assert count is not None and count[0] == len(store.data.expected)
    finally:
        admin.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(f"{schema}_fx"))
        )
