"""The production path against a real T-SQL server: Babelfish for PostgreSQL over TDS, through
Microsoft's ODBC Driver 18 (production's driver) and FreeTDS (the fallback), on both engines.

scripts/tsql-server.sh builds Babelfish once (cached) and starts it on 127.0.0.1 with a
throw-away login; scripts/test.sh does both and exports FLUXION_TEST_TSQL_HOST/PORT/USER/
PASSWORD. The store databases hold the Stellar tables with SQL Server's types (tsql_source.py:
``varchar`` in ``SQL_Latin1_General_CP1_CI_AS``, ``nvarchar``, ``float`` quantities,
``decimal``/``money`` prices, ``bit`` flags, ``datetime``, space-padded ``char`` codes), filled by
the generator, traps included; every published row must equal the generator's oracle.

What Babelfish cannot show: a real SQL Server's versions (it answers as 12.0.2000.8 whatever the
client asks) and the exact error numbers and texts where Babelfish's differ from SQL Server's
(a wrong password is SQL Server's 18456 "Login failed for user" here too, but a missing database
is PostgreSQL's wording); nor a real server's TLS stack and certificates.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import pyodbc
import pytest
from etl_cli import TEXT_COLUMNS, json_lines, ledger_rows, published_as_expected, run_cli

from fluxion_etl.config import DEFAULT_DRIVER
from fluxion_etl.credentials import Credentials
from fluxion_etl.demo.stellar import DEFAULT_TRAPS, generate_store
from fluxion_etl.source.connection import build_connection_string
from fluxion_etl.source.query import load_query
from fluxion_etl.stores import Store
from fluxion_harness.linkproxy import FaultyProxy
from fluxion_harness.tsql_source import (
    TsqlServer,
    TsqlStore,
    create_store_database,
    drop_database,
    freetds_driver_library,
    mssql_driver_library,
    new_database_name,
    odbcinst_ini,
)

pytestmark = pytest.mark.tsql

TSQL_VARIABLES = (
    "FLUXION_TEST_TSQL_HOST",
    "FLUXION_TEST_TSQL_PORT",
    "FLUXION_TEST_TSQL_USER",
    "FLUXION_TEST_TSQL_PASSWORD",
)
HOW_TO_START = (
    'run scripts/test.sh, or `eval "$(scripts/tsql-server.sh start)"` (builds Babelfish once, '
    "~15 min, then starts it on 127.0.0.1 and prints the FLUXION_TEST_TSQL_* variables)"
)
MSSQL, FREETDS = DEFAULT_DRIVER, "FreeTDS"
DRIVERS = (MSSQL, FREETDS)
ENGINES = ("arrow", "pyodbc")
#: (id, name, warehouse, seed) of the stores the tests share (read only)
SHARED_STORES = (
    ("tienda_03", "MAÑONGO", "0302", 103),
    ("cedi_seco", "CEDI SECO", "2001", 2001),
)
SHARED_STORE_PRODUCTS = 3000


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tsql_server(unavailable: Callable[[str], NoReturn]) -> TsqlServer:
    """The T-SQL server from FLUXION_TEST_TSQL_*, checked to answer (skip, or fail in CI)."""

    def _unavailable(reason: str) -> NoReturn:
        unavailable(f"T-SQL server (Babelfish) unavailable: {reason}; {HOW_TO_START}")

    missing = [name for name in TSQL_VARIABLES if not os.environ.get(name)]
    if missing:
        _unavailable(f"{', '.join(missing)} not set")
    host, port, user, password = (os.environ[name] for name in TSQL_VARIABLES)
    if not port.isdigit():
        _unavailable(f"FLUXION_TEST_TSQL_PORT={port!r} is not a port number")
    if mssql_driver_library() is None:
        _unavailable("mssql-python-odbc (Microsoft ODBC Driver 18) is not installed")
    if freetds_driver_library() is None:
        _unavailable("FreeTDS's ODBC driver is not installed (apt-get install tdsodbc)")
    pg_port = os.environ.get("FLUXION_TEST_TSQL_PG_PORT", "15433")
    server = TsqlServer(host, int(port), user, password, int(pg_port))
    try:
        server.connect().close()
    except pyodbc.Error as exc:
        _unavailable(f"cannot log in to {host}:{port} as {user}: {exc}")
    return server


@pytest.fixture(scope="session")
def tsql_odbcsysini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose odbcinst.ini registers both drivers under the names a stores file
    uses: the child processes get ODBCSYSINI pointing at it."""
    directory = tmp_path_factory.mktemp("tsql-odbcsysini")
    odbcinst_ini(directory)
    return directory


@pytest.fixture(scope="session")
def _tsql_databases(tsql_server: TsqlServer) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        drop_database(tsql_server, name)


def _create_store(
    server: TsqlServer,
    registry: list[str],
    id: str,
    name: str,
    warehouse: str,
    seed: int,
    products: int,
) -> TsqlStore:
    data = generate_store(warehouse, products, seed=seed, traps=DEFAULT_TRAPS)
    database = new_database_name()
    registry.append(database)
    create_store_database(server, database, data)
    return TsqlStore(id=id, name=name, database=database, warehouse=warehouse, data=data)


@pytest.fixture(scope="session")
def tsql_stores(tsql_server: TsqlServer, _tsql_databases: list[str]) -> list[TsqlStore]:
    """One database per store on the T-SQL server, every trap on. Tests only read them."""
    return [
        _create_store(
            tsql_server, _tsql_databases, id, name, warehouse, seed, SHARED_STORE_PRODUCTS
        )
        for id, name, warehouse, seed in SHARED_STORES
    ]


def store_entry(
    store_id: str, name: str, host: str, port: int, database: str, warehouse: str, driver: str
) -> str:
    kind = "cedi" if store_id.startswith("cedi") else "tienda"
    return (
        f'\n[[stores]]\nid = "{store_id}"\nname = "{name}"\ntype = "{kind}"\nhost = "{host}"\n'
        f'port = {port}\ndatabase = "{database}"\nwarehouse = "{warehouse}"\ndriver = "{driver}"\n'
    )


def stores_toml(stores: Sequence[TsqlStore], server: TsqlServer, driver: str) -> str:
    return "".join(
        store_entry(s.id, s.name, server.host, server.port, s.database, s.warehouse, driver)
        for s in stores
    )


@pytest.fixture
def tsql_env(tmp_path: Path, tsql_server: TsqlServer, tsql_odbcsysini: Path) -> dict[str, str]:
    """A run's environment: the private odbcinst.ini, the server's login, a DuckDB target.
    The stores file (ETL_STORES_FILE) is each test's to write."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))}
    env.update(
        ODBCSYSINI=str(tsql_odbcsysini),
        ETL_STORES_FILE=str(tmp_path / "stores.toml"),
        DATABASE_PATH=str(tmp_path / "target.duckdb"),
        SQL_USER=tsql_server.user,
        SQL_PASS=tsql_server.password,
        ETL_STAGING_DIR=str(tmp_path / "staging"),
        ETL_BATCH_SIZE="700",  # several batches per store
        ENVIRONMENT="test",
    )
    return env


def write_stores(env: dict[str, str], text: str) -> None:
    Path(env["ETL_STORES_FILE"]).write_text(text, encoding="utf-8")


def driver_connection(server: TsqlServer, database: str, driver: str, extra: str = "") -> str:
    """A connection string naming the driver by its library (this process has no ODBCSYSINI),
    with the keywords fluxion's connection.py writes for that driver's family."""
    if driver == MSSQL:
        return (
            f"Driver={{{mssql_driver_library()}}};Server=tcp:{server.host},{server.port};"
            f"Database={database};UID={server.user};PWD={{{server.password}}};"
            f"Connection Timeout=10;{extra or 'Encrypt=yes;TrustServerCertificate=yes;'}"
        )
    return (
        f"Driver={{{freetds_driver_library()}}};Server={server.host};Port={server.port};"
        f"Database={database};UID={server.user};PWD={{{server.password}}};TDS_Version=7.4;"
        f"ClientCharset=UTF-8;{extra}"
    )


# -- the server and the types as the drivers hand them over ---------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_drivers_see_sql_servers_types(
    tsql_server: TsqlServer, tsql_stores: list[TsqlStore], driver: str
) -> None:
    store = tsql_stores[0]
    columns, rows = store.data.tables["MA_PRODUCTOS"]
    enye = next(
        dict(zip(columns, row, strict=True))
        for row in rows
        if "Ñ" in str(row[columns.index("c_Descri")]) and row[columns.index("n_Precio1")]
    )
    with closing(
        pyodbc.connect(driver_connection(tsql_server, store.database, driver), timeout=10)
    ) as conn:
        cursor = conn.cursor()
        version = cursor.execute("SELECT @@VERSION").fetchone()[0]
        assert "Babelfish" in version
        cursor.execute(
            "SELECT c_Descri, n_Precio1, n_CostoAct, n_Activo, c_Departamento, f_Actualizacion "
            "FROM MA_PRODUCTOS WHERE c_Codigo = ?",
            enye["c_Codigo"],
        )
        described = {d[0]: d[1] for d in cursor.description}
        descri, price, cost, active, department, updated = cursor.fetchone()
        assert descri == _nfc(enye["c_Descri"])
        assert price == enye["n_Precio1"] and isinstance(price, Decimal)
        assert cost == enye["n_CostoAct"]
        assert active in (True, 1) and described["n_Activo"] in (bool, int)
        assert department == str(enye["c_Departamento"]).ljust(10)  # char(10): padded
        assert updated is not None
        quantity = cursor.execute("SELECT TOP 1 n_cantidad FROM MA_DEPOPROD").fetchone()[0]
        assert isinstance(quantity, float)
        collations = {
            name.lower(): collation
            for name, collation in cursor.execute(
                "SELECT name, collation_name FROM sys.columns "
                "WHERE object_id = OBJECT_ID('MA_PRODUCTOS') AND name IN ('c_Descri', 'c_Codigo')"
            ).fetchall()
        }
        # Babelfish names SQL_Latin1_General_CP1_CI_AS by its own ICU collation (code page 1252)
        # and lists column names lower-cased
        assert collations == {
            "c_descri": "bbf_unicode_cp1_ci_as",
            "c_codigo": "bbf_unicode_cp1_cs_as",
        }


def _nfc(text: object) -> str:
    import unicodedata

    return unicodedata.normalize("NFC", str(text))


def test_the_packaged_query_runs_unchanged_and_selects_the_oracles_rows(
    tsql_server: TsqlServer, tsql_stores: list[TsqlStore]
) -> None:
    """The padded char warehouse code, the CI collation and the bit flag do not change what the
    packaged query selects."""
    for store in tsql_stores:
        with closing(tsql_server.connect(store.database)) as conn:
            rows = conn.cursor().execute(load_query(None), store.warehouse).fetchall()
        assert len(rows) == store.data.source_rows_selected, store.id


# -- fluxion-etl run, both drivers, both engines --------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("driver", DRIVERS)
def test_run_publishes_exactly_the_oracles_rows(
    tsql_env: dict[str, str],
    tsql_server: TsqlServer,
    tsql_stores: list[TsqlStore],
    driver: str,
    engine: str,
) -> None:
    write_stores(tsql_env, stores_toml(tsql_stores, tsql_server, driver))
    result = run_cli(["run"], {**tsql_env, "ETL_ENGINE": engine})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    db = Path(tsql_env["DATABASE_PATH"])
    ledger = ledger_rows(db)
    texts = []
    for store in tsql_stores:
        entry = ledger[store.id]
        assert (entry["estado"], entry["intentos"]) == ("exitoso", 1), entry
        rows = published_as_expected(db, store)
        texts += [" ".join(str(got[c]) for c in TEXT_COLUMNS) for got in rows.values()]
    joined = " | ".join(texts)
    for needle in ("1/2 KG", "50% GRASA", "P&G", "CAFÉ", "Ñ"):
        assert needle in joined, needle
    nulls = sum(
        1 for s in tsql_stores for e in s.data.expected.values() if e.precio_venta_actual is None
    )
    assert nulls > 0


@pytest.mark.parametrize("driver", DRIVERS)
def test_check_and_stores_warehouses_work(
    tsql_env: dict[str, str], tsql_server: TsqlServer, tsql_stores: list[TsqlStore], driver: str
) -> None:
    write_stores(tsql_env, stores_toml(tsql_stores, tsql_server, driver))
    check = run_cli(["check"], tsql_env)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    for store in tsql_stores:
        line = next(line for line in check.stdout.splitlines() if store.id in line)
        assert line.count("ok") >= 4, line
        assert f"{store.data.source_rows_selected:,}" in line, line
    listing = run_cli(["stores", "--warehouses"], tsql_env)
    assert listing.returncode == 0, listing.stdout[-3000:] + listing.stderr[-2000:]
    for store in tsql_stores:
        # the char(10) code comes back padded; fluxion trims it
        configured = [
            line
            for line in listing.stdout.splitlines()
            if store.id in line and "<- configured" in line
        ]
        assert len(configured) == 1 and f" {store.warehouse} " in configured[0], listing.stdout
        for other in store.data.other_warehouses:
            assert f" {other} " in listing.stdout


# -- the drivers' real errors, classified ---------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_wrong_password_missing_database_and_closed_port_are_classified(
    tsql_env: dict[str, str], tsql_server: TsqlServer, tsql_stores: list[TsqlStore], driver: str
) -> None:
    store = tsql_stores[0]
    host, port = tsql_server.host, tsql_server.port
    text = (
        store_entry("tienda_03", store.name, host, port, store.database, store.warehouse, driver)
        + store_entry("tienda_90", "SIN BASE", host, port, "no_such_db", "0902", driver)
        + store_entry("tienda_99", "SIN VPN", "127.0.0.1", 9, "VAD10", "9902", driver)
    )
    write_stores(tsql_env, text)
    env = {**tsql_env, "ETL_MAX_RETRIES": "2", "ETL_CONNECT_TIMEOUT_SECONDS": "5"}
    result = run_cli(["run"], env, timeout=180)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-2000:]
    ledger = ledger_rows(Path(env["DATABASE_PATH"]))
    assert ledger["tienda_03"]["estado"] == "exitoso"
    missing_db, closed = ledger["tienda_90"], ledger["tienda_99"]
    assert (missing_db["estado"], missing_db["error_tipo"], missing_db["intentos"]) == (
        "fallido",
        "login",
        1,
    ), missing_db
    assert (closed["estado"], closed["error_tipo"], closed["intentos"]) == (
        "fallido",
        "conexion",
        2,
    ), closed
    said_closed = {MSSQL: "Login timeout expired", FREETDS: "Adaptive Server is unavailable"}
    assert said_closed[driver] in closed["error_mensaje"], closed["error_mensaje"]
    # Babelfish's words (08004, 911, PostgreSQL's phrase); SQL Server says 4060 "Cannot open
    # database ... requested by the login": both are classified as a refused login
    assert 'database "no_such_db" does not exist' in missing_db["error_mensaje"], missing_db

    wrong = {**env, "SQL_PASS": "not-the-password", "ETL_STORES": "tienda_03"}
    result = run_cli(["run", "--stores", "tienda_03"], wrong, timeout=120)
    assert result.returncode in (1, 3), result.stdout[-3000:]
    refused = ledger_rows(Path(env["DATABASE_PATH"]))["tienda_03"]
    assert (refused["estado"], refused["error_tipo"], refused["intentos"]) == (
        "fallido",
        "login",
        1,
    ), refused
    # SQL Server's own words and number, which Babelfish reproduces
    assert 'Login failed for user "fluxion_tsql"' in refused["error_mensaje"], refused
    assert (
        "Native error: 18456" in refused["error_mensaje"] or "(18456)" in refused["error_mensaje"]
    )
    assert "not-the-password" not in refused["error_mensaje"]
    for entry in (missing_db, closed, refused):
        assert ("ODBC Driver 18" if driver == MSSQL else "FreeTDS") in entry["error_mensaje"]


# -- a session ended by the server mid-fetch -----------------------------------------------------


def _pg_admin(server: TsqlServer) -> Any:
    """A psycopg2 connection to Babelfish's PostgreSQL side (the same login), for what T-SQL
    cannot do: a function that sleeps, the sessions as the server sees them."""
    import psycopg2

    conn = psycopg2.connect(
        host=server.host,
        port=server.pg_port,
        user=server.user,
        password=server.password,
        dbname="babelfish_db",
        connect_timeout=10,
    )
    conn.autocommit = True
    return conn


def slowed_query(
    server: TsqlServer, store: TsqlStore, tmp_path: Path, seconds_per_row: float
) -> Path:
    """The packaged query plus a predicate that sleeps per row, so the rows trickle out of the
    server and the fetch is still streaming when the test ends the session.

    The predicate reads a column of every table, so the planner can only evaluate it on the
    joined rows, as they go out: placed lower (one table's column, or none) it lands under a
    hash join's build side and the whole result is computed before the first row is sent.
    """
    with closing(_pg_admin(server)) as conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE OR REPLACE FUNCTION {store.database}_dbo.fluxion_trickle(text) "
            "RETURNS integer LANGUAGE plpgsql VOLATILE AS "
            f"$$ BEGIN PERFORM pg_sleep({seconds_per_row}); RETURN 1; END $$"
        )
    every_table = "CONCAT(d.id, p.c_Codigo, b.codigo_barras, dep.C_CODIGO, g.c_CODIGO, sg.c_CODIGO)"
    query = tmp_path / "trickle.sql"
    query.write_text(
        load_query(None) + f"\n  AND dbo.fluxion_trickle({every_table}) = 1\n", encoding="utf-8"
    )
    return query


@contextmanager
def when_streaming(server: TsqlServer, act: Callable[[int], None]) -> Iterator[list[int]]:
    """Calls ``act(spid)`` once, half a second after the first session found streaming the
    inventory query's rows; yields the spids it acted on. A TDS session is a PostgreSQL
    backend (spid = pid), seen in pg_stat_activity with the T-SQL text (its first 1,024
    bytes: the packaged query's head is matched)."""
    acted: list[int] = []
    done = threading.Event()
    # the trickle sleeping means the joined rows are being produced and sent
    find = (
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
        "AND wait_event = 'PgSleep' AND query ILIKE '%AS origen_id%'"
    )

    def watch() -> None:
        admin = _pg_admin(server)
        try:
            with admin.cursor() as cur:
                while not done.is_set() and not acted:
                    cur.execute(find)
                    row = cur.fetchone()
                    if row is None:
                        time.sleep(0.05)
                        continue
                    time.sleep(0.5)  # some batches reach the client
                    acted.append(int(row[0]))
                    act(int(row[0]))
        finally:
            with contextlib.suppress(Exception):  # the act may have stopped the server
                admin.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield acted
    finally:
        done.set()
        watcher.join(timeout=10)


def session_killer(server: TsqlServer) -> Any:
    """KILLs (T-SQL, from a second TDS session) the session streaming the inventory query."""

    def kill(spid: int) -> None:
        with closing(server.connect("master")) as tds:
            tds.cursor().execute(f"KILL {spid}")

    return when_streaming(server, kill)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_session_killed_mid_fetch_is_retried_and_publishes_exact_rows(
    tsql_env: dict[str, str],
    tsql_server: TsqlServer,
    tsql_stores: list[TsqlStore],
    tmp_path: Path,
    driver: str,
    engine: str,
) -> None:
    store = tsql_stores[0]
    query = slowed_query(tsql_server, store, tmp_path, seconds_per_row=0.002)
    write_stores(tsql_env, stores_toml([store], tsql_server, driver))
    env = {**tsql_env, "ETL_ENGINE": engine, "ETL_QUERY_FILE": str(query), "ETL_MAX_RETRIES": "3"}
    with session_killer(tsql_server) as killed:
        result = run_cli(["run"], env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert len(killed) == 1, "the fetch was never caught streaming"
    retried = [
        line
        for line in json_lines(result.stdout)
        if line.get("event") == "transient error; retrying the store from scratch"
    ]
    assert len(retried) == 1, result.stdout[-3000:]
    # Driver 18: the TCP reset, 08S01/10054, in SQLFetch or SQLGetData -- or, when the KILL
    # cut a DECIMAL's text short (pyodbc then raises decimal.InvalidOperation), 08S01 from the
    # engine's probe of the session. FreeTDS: 20017 "Unexpected EOF", or -- when the KILL cuts
    # off Babelfish's error message, which then comes first -- that message's number
    # (33557097) with no text, all arrow-odbc shows; through the encrypted session fluxion's
    # string asks for (Encryption=require), the TLS layer's end shows as HY000 "Unknown error".
    said = {
        MSSQL: (("08S01", "10054"), ("08S01", "Communication link failure")),
        FREETDS: (("20017",), ("33557097",), ("HY000", "Unknown error")),
    }
    error = retried[0]["error"]
    assert any(all(word in error for word in words) for words in said[driver]), error
    mid_fetch = ("SQLFetch", "SQLGetData", "Communication link failure")
    assert any(word in error for word in mid_fetch), f"not killed mid-fetch: {error}"
    db = Path(env["DATABASE_PATH"])
    entry = ledger_rows(db)[store.id]
    assert (entry["estado"], entry["intentos"]) == ("exitoso", 2), entry
    published_as_expected(db, store)


#: where in the store's answer the link is reset: FreeTDS's words depend on it
RESETS = [(MSSQL, 60_000)] + [(FREETDS, after) for after in (45_000, 60_000, 75_000)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("driver", "after_bytes"), RESETS)
def test_a_link_reset_mid_fetch_is_retried_and_publishes_exact_rows(
    tsql_env: dict[str, str],
    tsql_server: TsqlServer,
    tsql_stores: list[TsqlStore],
    driver: str,
    after_bytes: int,
    engine: str,
) -> None:
    """The VPN resets the link mid-fetch (a TCP proxy on 127.0.0.1, after ``after_bytes``).
    FreeTDS says so three ways depending on where in the stream the reset lands: 20017
    "Unexpected EOF", a server message without its text, or -- inside a row -- HY000 "Unknown
    error"; each must be a lost connection, retried."""
    store = tsql_stores[0]
    upstream = (tsql_server.host, tsql_server.port)
    with FaultyProxy(upstream, fault="reset", after_bytes=after_bytes, spoil=1) as proxy:
        write_stores(
            tsql_env,
            store_entry(
                store.id,
                store.name,
                "127.0.0.1",
                proxy.port,
                store.database,
                store.warehouse,
                driver,
            ),
        )
        result = run_cli(["run"], {**tsql_env, "ETL_ENGINE": engine, "ETL_MAX_RETRIES": "3"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert proxy.spoiled == 1
    db = Path(tsql_env["DATABASE_PATH"])
    entry = ledger_rows(db)[store.id]
    assert (entry["estado"], entry["intentos"]) == ("exitoso", 2), entry
    published_as_expected(db, store)


@contextmanager
def own_server(repo_root: Path) -> Iterator[tuple[TsqlServer, Callable[[], None]]]:
    """A second Babelfish of this session's test alone (scripts/tsql-server.sh start, own run
    directory and free ports): yields it and its ``stop``, which the test may call early."""
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    script = str(repo_root / "scripts" / "tsql-server.sh")
    env = {
        **os.environ,
        # directly under /tmp: the server's user must reach it (pytest's tmp_path is root's)
        "FLUXION_TSQL_RUN_DIR": str(
            Path(tempfile.gettempdir()) / f"fluxion-tsql-{secrets.token_hex(4)}"
        ),
        "FLUXION_TSQL_PORT": str(ports[0]),
        "FLUXION_TSQL_PG_PORT": str(ports[1]),
    }
    started = subprocess.run(
        [script, "start"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120, check=False)

    try:
        assert started.returncode == 0, started.stderr[-3000:]
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in started.stdout.splitlines()
            if line.startswith("export ")
        )
        server = TsqlServer(
            exports["FLUXION_TEST_TSQL_HOST"],
            int(exports["FLUXION_TEST_TSQL_PORT"]),
            exports["FLUXION_TEST_TSQL_USER"],
            exports["FLUXION_TEST_TSQL_PASSWORD"],
            int(exports["FLUXION_TEST_TSQL_PG_PORT"]),
        )
        yield server, stop
    finally:
        stop()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("driver", DRIVERS)
def test_the_server_stopped_mid_fetch_is_a_lost_connection_retried(
    tsql_env: dict[str, str],
    tsql_server: TsqlServer,
    tsql_stores: list[TsqlStore],
    repo_root: Path,
    tmp_path: Path,
    driver: str,
    engine: str,
) -> None:
    """The store's server goes away mid-fetch (stopped, as a crash or a power cut does) and
    stays away: the fetch is a lost connection, each retry meets a closed port, and the store
    ends ``fallido``/``conexion`` after every attempt."""
    shared = tsql_stores[0]
    with own_server(repo_root) as (server, stop):
        database = new_database_name()
        create_store_database(server, database, shared.data)
        store = TsqlStore(shared.id, shared.name, database, shared.warehouse, shared.data)
        query = slowed_query(server, store, tmp_path, seconds_per_row=0.002)
        write_stores(tsql_env, stores_toml([store], server, driver))
        env = {
            **tsql_env,
            "SQL_PASS": server.password,
            "ETL_ENGINE": engine,
            "ETL_QUERY_FILE": str(query),
            "ETL_MAX_RETRIES": "2",
            "ETL_CONNECT_TIMEOUT_SECONDS": "5",
        }
        with when_streaming(server, lambda _spid: stop()) as acted:
            result = run_cli(["run"], env, timeout=240)
    assert len(acted) == 1, "the fetch was never caught streaming"
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    retried = [
        line
        for line in json_lines(result.stdout)
        if line.get("event") == "transient error; retrying the store from scratch"
    ]
    assert len(retried) == 1 and "connection lost" in retried[0]["error"], result.stdout[-3000:]
    entry = ledger_rows(Path(env["DATABASE_PATH"]))[store.id]
    assert (entry["estado"], entry["error_tipo"], entry["intentos"]) == (
        "fallido",
        "conexion",
        2,
    ), entry
    error = retried[0]["error"]
    assert "SQLFetch" in error or "SQLGetData" in error, f"not stopped mid-fetch: {error}"
    closed = {MSSQL: "Login timeout expired", FREETDS: "Adaptive Server is unavailable"}
    assert closed[driver] in entry["error_mensaje"], entry["error_mensaje"]


# -- encryption ------------------------------------------------------------------------------------


def fluxion_connection(server: TsqlServer, database: str, driver: str, extra: str = "") -> str:
    """The connection string fluxion builds for a store of ``driver`` (connection.py), with the
    driver named by its library (this process has no ODBCSYSINI) and ``extra`` keywords added."""
    store = Store(
        id="tienda_03",
        name="MAÑONGO",
        type="tienda",
        host=server.host,
        port=server.port,
        database=database,
        warehouse="0302",
    )
    text = build_connection_string(
        store, driver, Credentials(server.user, server.password), connect_timeout_seconds=10
    ).text
    library = mssql_driver_library() if driver == MSSQL else freetds_driver_library()
    return text.replace(f"Driver={driver};", f"Driver={{{library}}};", 1) + extra


def encrypted(conn_str: str) -> bool:
    """Whether the server sees the session encrypted (sys.dm_exec_connections, per session)."""
    with closing(pyodbc.connect(conn_str, timeout=10)) as conn:
        row = (
            conn.cursor()
            .execute("SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID")
            .fetchone()
        )
    return str(row[0]).upper() == "TRUE"


def test_driver_18_encrypts_and_fluxion_trusts_the_self_signed_certificate(
    tsql_server: TsqlServer, tsql_stores: list[TsqlStore]
) -> None:
    """Driver 18 defaults to Encrypt=yes with certificate validation: the server must offer TLS
    (Babelfish: ssl=on) and a certificate that chains to a trusted CA under the host's name. A
    store's self-signed certificate fails that (08001 "SSL Provider: ... certificate verify
    failed"), so fluxion's string says Encrypt=yes;TrustServerCertificate=yes: encrypted, not
    authenticated (the VPN authenticates the link). Encrypt=strict (TDS 8.0) Babelfish refuses."""
    database = tsql_stores[0].database
    fluxion = fluxion_connection(tsql_server, database, MSSQL)
    assert "Encrypt=yes;TrustServerCertificate=yes;" in fluxion
    assert encrypted(fluxion)
    without_trust = fluxion.replace("TrustServerCertificate=yes;", "")  # the driver's default
    with pytest.raises(pyodbc.Error) as refused:
        pyodbc.connect(without_trust, timeout=10)
    assert "certificate verify failed" in str(refused.value), refused.value
    assert refused.value.args[0] == "08001"
    assert not encrypted(fluxion.replace("Encrypt=yes;", "Encrypt=no;"))


def test_fluxions_freetds_string_encrypts_the_whole_session(
    tsql_server: TsqlServer, tsql_stores: list[TsqlStore]
) -> None:
    """fluxion's FreeTDS string says ``Encryption=require``: the whole session is encrypted.
    Without it FreeTDS (TDS 7.4) only offers encryption, the server does not insist, and only the
    login packet is encrypted -- the rows would travel in clear over the VPN. (FreeTDS does not
    check the certificate unless given a CA file, so a self-signed one passes.)"""
    database = tsql_stores[0].database
    fluxion = fluxion_connection(tsql_server, database, FREETDS)
    assert "Encryption=require;" in fluxion
    assert encrypted(fluxion)
    assert not encrypted(fluxion.replace("Encryption=require;", ""))


def test_the_private_odbcinst_registers_both_drivers(tsql_odbcsysini: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-c", "import pyodbc; print(pyodbc.drivers())"],
        env={**os.environ, "ODBCSYSINI": str(tsql_odbcsysini)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert MSSQL in listed.stdout and FREETDS in listed.stdout
