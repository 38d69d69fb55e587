"""Integration fixtures: the PostgreSQL stand-in for the stores' SQL Servers.

scripts/test.sh starts PostgreSQL on 127.0.0.1, creates a CREATEDB login with a random password
and exports FLUXION_TEST_PG_HOST/PORT/USER/PASSWORD. Without them the PostgreSQL tests skip with
a message saying what is missing -- except under CI, where a skipped integration test would be a
silent hole in the suite, so they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import pytest
from aws_local import MotoEndpoint
from etl_cli import stores_toml

from fluxion_etl.demo.stellar import DEFAULT_TRAPS, Traps, generate_store
from fluxion_harness.postgres_source import (
    PgServer,
    PgStore,
    create_store_database,
    drop_database,
    new_database_name,
)

PG_VARIABLES = (
    "FLUXION_TEST_PG_HOST",
    "FLUXION_TEST_PG_PORT",
    "FLUXION_TEST_PG_USER",
    "FLUXION_TEST_PG_PASSWORD",
)
HOW_TO_START = (
    "run scripts/test.sh (it starts PostgreSQL on 127.0.0.1, creates a throw-away CREATEDB login "
    "and exports the FLUXION_TEST_PG_* variables), or export them for a server of your own"
)
# (id, name, warehouse, seed) of the stores every PostgreSQL test shares.
SHARED_STORES = (
    ("tienda_02", "AV. BOLIVAR", "0202", 102),
    ("tienda_03", "MAÑONGO", "0302", 103),
    ("cedi_seco", "CEDI SECO", "2001", 2001),
)
SHARED_STORE_PRODUCTS = 3000

MakePgStore = Callable[..., PgStore]


@pytest.fixture(scope="session")
def pg_server(unavailable: Callable[[str], NoReturn]) -> PgServer:
    """The PostgreSQL server from FLUXION_TEST_PG_*, checked to answer (skip/fail otherwise)."""

    def _unavailable(reason: str) -> NoReturn:
        unavailable(f"PostgreSQL stand-in unavailable: {reason}; {HOW_TO_START}")

    missing = [name for name in PG_VARIABLES if not os.environ.get(name)]
    if missing:
        _unavailable(f"{', '.join(missing)} not set")
    host, port, user, password = (os.environ[name] for name in PG_VARIABLES)
    if not port.isdigit():
        _unavailable(f"FLUXION_TEST_PG_PORT={port!r} is not a port number")
    server = PgServer(host=host, port=int(port), user=user, password=password)
    try:
        import psycopg2
    except ImportError:
        _unavailable("psycopg2 is not installed (pip install -e '.[dev]')")
    try:
        server.connect("postgres", connect_timeout=5).close()
    except psycopg2.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _unavailable(f"cannot log in to {host}:{port} as {user}: {first_line}")
    return server


@pytest.fixture(scope="session")
def _pg_databases(pg_server: PgServer) -> Iterator[list[str]]:
    """Names of the databases this session created; all dropped when the session ends."""
    names: list[str] = []
    yield names
    for name in names:
        drop_database(pg_server, name)


def _create_store(
    server: PgServer,
    registry: list[str],
    *,
    id: str,
    name: str,
    warehouse: str,
    products: int,
    seed: int,
    traps: Traps,
    encoding: str = "UTF8",
) -> PgStore:
    data = generate_store(warehouse, products, seed=seed, traps=traps)
    database = new_database_name("fluxion_t_")
    registry.append(database)
    create_store_database(server, database, data, encoding)
    return PgStore(id=id, name=name, database=database, warehouse=warehouse, data=data)


@pytest.fixture(scope="session")
def pg_stores(pg_server: PgServer, _pg_databases: list[str]) -> list[PgStore]:
    """Three store databases (two stores and a distribution centre), ~3,000 products each with
    every trap on. Shared by the whole session: tests must only read them."""
    return [
        _create_store(
            pg_server,
            _pg_databases,
            id=id,
            name=name,
            warehouse=warehouse,
            products=SHARED_STORE_PRODUCTS,
            seed=seed,
            traps=DEFAULT_TRAPS,
        )
        for id, name, warehouse, seed in SHARED_STORES
    ]


@pytest.fixture
def make_pg_store(pg_server: PgServer, _pg_databases: list[str]) -> MakePgStore:
    """Factory for a test's own store database (dropped at session end):
    ``make_pg_store(products=500, seed=7, traps=Traps.disabled(), warehouse="0402",
    id="tienda_04", name="NAGUANAGUA", encoding="LATIN1")``; every argument has a default."""

    def make(
        products: int = 500,
        *,
        seed: int = 0,
        traps: Traps = DEFAULT_TRAPS,
        warehouse: str = "0202",
        id: str = "tienda_02",
        name: str = "AV. BOLIVAR",
        encoding: str = "UTF8",
    ) -> PgStore:
        return _create_store(
            pg_server,
            _pg_databases,
            id=id,
            name=name,
            warehouse=warehouse,
            products=products,
            seed=seed,
            traps=traps,
            encoding=encoding,
        )

    return make


@pytest.fixture
def etl_env(tmp_path: Path, pg_server: PgServer, pg_stores: Sequence[PgStore]) -> dict[str, str]:
    stores_file = tmp_path / "stores.toml"
    stores_file.write_text(stores_toml(pg_stores, pg_server), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))}
    env.update(
        ETL_STORES_FILE=str(stores_file),
        DATABASE_PATH=str(tmp_path / "target.duckdb"),
        SQL_USER=pg_server.user,
        SQL_PASS=pg_server.password,
        ETL_STAGING_DIR=str(tmp_path / "staging"),
        ETL_BATCH_SIZE="700",  # several batches per store
        ENVIRONMENT="test",
    )
    return env


@pytest.fixture(scope="session")
def moto_endpoint(
    tmp_path_factory: pytest.TempPathFactory, unavailable: Callable[[str], NoReturn]
) -> Iterator[MotoEndpoint]:
    """One moto server for the session, on a free port of 127.0.0.1.

    moto keeps its state per process, not per server, so one server loses nothing; the tests
    using it keep their names (stacks, clusters, secrets) apart.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        unavailable("moto[server] is not installed (pip install -e '.[dev]')")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    nowhere = tmp_path_factory.mktemp("aws") / "none"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(nowhere),
        "AWS_SHARED_CREDENTIALS_FILE": str(nowhere),
    }
    try:
        yield MotoEndpoint(url=f"http://{host}:{port}", env=env)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_target_database(pg_server: PgServer, _pg_databases: list[str]) -> str:
    """The session's PostgreSQL *target* database (docs/testing.md: a separate database on the local
    server); each test publishes into a schema of its own in it."""
    from fluxion_harness.postgres_source import create_database

    name = new_database_name("fluxion_target_")
    _pg_databases.append(name)
    create_database(pg_server, name)
    return name


@pytest.fixture
def pg_target_env(
    etl_env: dict[str, str], pg_server: PgServer, pg_target_database: str
) -> dict[str, str]:
    """``etl_env`` pointed at a fresh schema of the PostgreSQL target database."""
    import secrets

    from target_db import pg_target_url

    env = {k: v for k, v in etl_env.items() if k not in ("DATABASE_PATH", "PGPASSWORD")}
    env.update(
        DATABASE_URL=pg_target_url(pg_server, pg_target_database),
        DATABASE_SCHEMA=f"t_{secrets.token_hex(5)}",
        PGPASSWORD=pg_server.password,
    )
    return env


@pytest.fixture(params=["duckdb", "postgres"])
def target_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """A run's environment for each target in turn: the tests about the target run on both."""
    name = "etl_env" if request.param == "duckdb" else "pg_target_env"
    env: dict[str, str] = request.getfixturevalue(name)
    return env
