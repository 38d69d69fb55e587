"""Reading what a run published, on either target: the DuckDB file or the PostgreSQL schema.

The tests about the target are parametrized over both (``target_env`` in conftest.py); they
read back through :class:`TargetReader`, which speaks each target's real client library
(``duckdb``, ``psycopg``) and hands back the same Python values from both.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import psycopg

from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_etl.targets.postgres.url import resolve_login
from fluxion_harness.postgres_source import PgServer

DUCKDB, POSTGRES = "duckdb", "postgres"


def pg_target_url(server: PgServer, database: str) -> str:
    """The URL a run gets: no password (PGPASSWORD carries it), TLS off for the local server."""
    return f"postgresql://{server.user}@{server.host}:{server.port}/{database}?sslmode=disable"


@contextmanager
def postgres_target(server: PgServer, database: str) -> Iterator[PostgresTarget]:
    """A PostgreSQL target on a fresh schema of ``database`` (5 s lock wait), dropped after."""
    schema = f"t_{secrets.token_hex(5)}"
    login = resolve_login(pg_target_url(server, database), {"PGPASSWORD": server.password})
    made = PostgresTarget(login, schema, lock_wait_seconds=5)
    try:
        yield made
    finally:
        with made.connect(autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


class TargetReader:
    """Queries against the target named by a run's environment (``?`` placeholders on both)."""

    def __init__(self, env: dict[str, str], server: PgServer | None = None) -> None:
        self.env = env
        self.kind = POSTGRES if env.get("DATABASE_URL") else DUCKDB
        self.server = server

    def connect_pg(self, **options: Any) -> psycopg.Connection[Any]:
        assert self.server is not None
        return psycopg.connect(
            self.env["DATABASE_URL"],
            password=self.server.password,
            options=f"-c search_path={self.env['DATABASE_SCHEMA']} -c TimeZone=UTC",
            autocommit=True,
            **options,
        )

    def query(self, text: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        if self.kind == DUCKDB:
            with duckdb.connect(self.env["DATABASE_PATH"], read_only=True) as con:
                cursor = con.execute(text, list(params))
                names = [c[0] for c in cursor.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        with self.connect_pg() as con, con.cursor() as cur:
            cur.execute(text.replace("?", "%s"), list(params))
            names = [c.name for c in cur.description or ()]
            return [
                {n: _naive_utc(v) for n, v in zip(names, row, strict=True)}
                for row in cur.fetchall()
            ]

    def rows(self, store_id: str) -> dict[str, dict[str, Any]]:
        found = self.query("SELECT * FROM inventario_raw WHERE ubicacion_id = ?", [store_id])
        return {row["codigo_producto"]: row for row in found}

    def ledger(self, run_id: str | None = None) -> dict[str, dict[str, Any]]:
        if run_id is None:
            newest = self.query(
                "SELECT run_id FROM etl_ejecuciones ORDER BY fecha_inicio DESC LIMIT 1"
            )
            assert newest, "the ledger is empty"
            run_id = newest[0]["run_id"]
        found = self.query("SELECT * FROM etl_ejecuciones WHERE run_id = ?", [run_id])
        return {row["ubicacion_id"]: row for row in found}

    def column_types(self) -> dict[str, str]:
        """``inventario_raw``'s declared column types, as the target names them."""
        if self.kind == DUCKDB:
            found = self.query(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'inventario_raw'"
            )
            return {r["column_name"]: r["data_type"] for r in found}
        found = self.query(
            "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type "
            "FROM pg_attribute a WHERE a.attrelid = 'inventario_raw'::regclass "
            "AND a.attnum > 0 AND NOT a.attisdropped"
        )
        return {r["name"]: r["type"] for r in found}


def _naive_utc(value: object) -> object:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def duckdb_path(env: dict[str, str]) -> Path:
    return Path(env["DATABASE_PATH"])
