"""Where the soak looks at what a run left behind: one small adapter per target.

The soak's invariants, faults and backend reader need the same few things from either target --
the ledger, the rows each store serves, whether a run guard or a session outlived its run, the
storage's size, and a connection shaped like the web backend's. Each adapter answers them with
the target's own client library (``duckdb`` for the file, ``psycopg`` for PostgreSQL), so
:mod:`~.soak_checks`, :mod:`~.soak_faults` and :mod:`~.backend_reader` never branch on which
target it is. The fault list is per target too: a file held by another process exists only for
DuckDB; a terminated target session, a held table lock, another run's advisory lock and an
unreachable server only for PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, Self

import duckdb
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fluxion_etl.targets.duckdb.connect import is_lock_conflict
from fluxion_etl.targets.postgres.layout_names import ACTUAL, RAW
from fluxion_etl.targets.postgres.url import PostgresLogin, resolve_login
from fluxion_harness import backend_pg
from fluxion_harness.backend import SUMMARY
from fluxion_harness.postgres_source import (
    PgServer,
    create_database,
    drop_database,
    new_database_name,
)

#: the soak's own sessions on the target, so a "target session killed" fault never ends them
SOAK_APPLICATION_NAME = "fluxion-soak"
#: how the ETL's target sessions name themselves (``PostgresTarget.connect``)
ETL_APPLICATION_NAME = "fluxion-etl"

#: run_id, ubicacion_id, estado, fecha_inicio
LedgerRow = tuple[str, str, str, dt.datetime]
#: store -> codigo_producto -> (cantidad_actual, batch_id)
ServedRows = dict[str, dict[str, tuple[Decimal, str]]]

#: per store: rows of how many runs (a store half-published would show two, or a short count)
BATCHES = (
    "SELECT ubicacion_id, count(DISTINCT batch_id), min(batch_id) FROM inventario_raw GROUP BY 1"
)
LEDGER = "SELECT run_id, ubicacion_id, estado, fecha_inicio FROM etl_ejecuciones"
ROWS = "SELECT ubicacion_id, codigo_producto, cantidad_actual, batch_id FROM inventario_raw"
#: the ``inventario_actual`` layout has no batch id: a publish is one transaction, so its rows
#: share one ``xmin`` (the backend reader counts those per location)
BATCHES_ACTUAL = (
    "SELECT ubicacion_id, count(DISTINCT xmin::text), min(xmin::text) FROM inventario_actual"
    " GROUP BY 1"
)
#: per layout: the backend's per-location summary and the batches query, both on the tables the
#: backend reads (``DATABASE_SCHEMA`` on the reader's ``search_path``)
READS: dict[str, tuple[str, str]] = {
    RAW: (SUMMARY, BATCHES),
    ACTUAL: (backend_pg.SUMMARY, BATCHES_ACTUAL),
}

COMMON_FAULTS: tuple[str, ...] = (
    "none",
    "store_down",
    "link_reset",
    "link_stall",
    "session_killed",
    "sigterm",
    "sigkill",
    "sigkill_publish",
    "deadline",
    "emptied",
)
DUCKDB_FAULTS: tuple[str, ...] = (*COMMON_FAULTS, "writer_holds", "reader_holds")
POSTGRES_FAULTS: tuple[str, ...] = (
    *COMMON_FAULTS,
    "target_session_killed",
    "target_lock_held",
    "target_store_locked",
    "target_down",
)
TARGETS = ("duckdb", "postgres")
#: (key, text) of an invariant a target checks itself, after every run
OwnInvariant = tuple[str, str]
#: (key, holds, message) of one such check
OwnCheck = tuple[str, bool, str]


@dataclass(frozen=True)
class TargetState:
    """The ledger and the served rows, read together after a run."""

    ledger: list[LedgerRow]
    rows: ServedRows


class Summary(Protocol):
    """A backend-like connection: one request = the dashboard's summary plus batch ids."""

    def request(self) -> dict[str, tuple[int, int, str]] | None:
        """store -> (products, distinct batch ids, a batch id); None if it gave up."""
        ...

    def close(self) -> None: ...


class SoakTarget(Protocol):
    kind: str
    faults: tuple[str, ...]
    size_label: str

    def env(self) -> dict[str, str]:
        """What a run (and the backend reader) is started with to use this target."""
        ...

    def read(self) -> TargetState: ...

    def run_lock_free(self) -> bool:
        """No run guard outlives its run (DuckDB: the flock; PostgreSQL: advisory locks)."""
        ...

    def leftover_sessions(self) -> int | None:
        """ETL sessions still on the server after its run ended; None where there are none."""
        ...

    def size_bytes(self) -> int: ...

    def reader_target(self) -> str:
        """The backend reader's argument: a file path or a ``postgresql://`` URL."""
        ...

    def drop(self) -> None: ...

    @property
    def own_invariants(self) -> tuple[OwnInvariant, ...]:
        """Invariants of this target's tables besides the common ones (:mod:`~.soak_checks`)."""
        ...

    def before_run(self, number: int) -> None:
        """Whatever else writes the target does so now, between runs (another feed)."""
        ...

    def check_after_run(self, states: Mapping[str, str]) -> list[OwnCheck]:
        """This target's own invariants after a run whose stores ended in ``states`` (store ->
        ledger state; empty when the run opened no ledger rows)."""
        ...

    def other_locations(self) -> dict[str, int]:
        """Locations another writer keeps in the target, with their row counts: the backend
        reader checks those too."""
        ...


class NoOwnChecks:
    """A target whose invariants are the common ones, and which nobody else writes."""

    @property
    def own_invariants(self) -> tuple[OwnInvariant, ...]:
        return ()

    def before_run(self, number: int) -> None:
        """Nobody else writes it."""

    def check_after_run(self, states: Mapping[str, str]) -> list[OwnCheck]:
        return []

    def other_locations(self) -> dict[str, int]:
        return {}


# --- DuckDB ----------------------------------------------------------------------------------


class DuckDBSoakTarget(NoOwnChecks):
    kind: str = "duckdb"
    faults: tuple[str, ...] = DUCKDB_FAULTS
    size_label: str = "DuckDB file (+ WAL)"

    def __init__(self, path: Path) -> None:
        self.path = path

    def env(self) -> dict[str, str]:
        return {"DATABASE_PATH": str(self.path)}

    def read(self) -> TargetState:
        if not self.path.exists():
            return TargetState([], {})
        with _duckdb_read_only(self.path, wait_seconds=30) as con:
            return TargetState(_ledger(con.execute), _rows(con.execute))

    def run_lock_free(self) -> bool:
        path = self.path.with_name(self.path.name + ".run.lock")
        if not path.exists():
            return True
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True

    def leftover_sessions(self) -> int | None:
        return None

    def size_bytes(self) -> int:
        wal = self.path.with_name(self.path.name + ".wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.exists())

    def reader_target(self) -> str:
        return str(self.path)

    def drop(self) -> None:
        """The file lives in the soak's work directory, removed with it."""


@contextmanager
def _duckdb_read_only(path: Path, wait_seconds: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """The file read-only, waiting out a lock a lingering holder might still have."""
    ends = time.monotonic() + wait_seconds
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.Error as exc:
            if not is_lock_conflict(exc) or time.monotonic() > ends:
                raise
            time.sleep(0.05)
    try:
        yield con
    finally:
        con.close()


class DuckDBSummary:
    """The backend on the file: opens it read-only per request, retrying DuckDB's lock error
    with a short back-off up to ``max_wait`` (then shows an error page)."""

    def __init__(self, path: Path, figures: Any, max_wait: float, retry_max: float) -> None:
        self.path = path
        self.figures = figures
        self.max_wait = max_wait
        self.retry_max = retry_max

    def request(self) -> dict[str, tuple[int, int, str]] | None:
        started = time.monotonic()
        pause = 0.01
        failed = 0
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=True)
                break
            except duckdb.Error as exc:
                if not is_lock_conflict(exc):
                    raise
                failed += 1
                self.figures.failed_opens += 1
                if time.monotonic() - started > self.max_wait:
                    self.figures.gave_up += 1
                    self.figures.record_error(exc)
                    return None
                time.sleep(pause)
                pause = min(pause * 2, self.retry_max)
        if failed:
            self.figures.record_wait(time.monotonic() - started)
        try:
            return _summary(con.execute)
        finally:
            con.close()

    def close(self) -> None:
        """Nothing stays open between requests."""


# --- PostgreSQL ------------------------------------------------------------------------------


class PostgresSoakTarget(NoOwnChecks):
    kind: str = "postgres"
    faults: tuple[str, ...] = POSTGRES_FAULTS
    size_label: str = "PostgreSQL inventario_raw + etl_ejecuciones (total relation size)"
    #: the table a publish replaces rows of, in :attr:`schema` (the ``target_lock_held`` fault
    #: locks it)
    published_table: str = "inventario_raw"

    def __init__(
        self,
        url: str,
        password: str,
        schema: str,
        *,
        created_database: tuple[PgServer, str] | None = None,
    ) -> None:
        self.url = url
        self.password = password
        self.schema = schema
        self.login: PostgresLogin = resolve_login(url, {"PGPASSWORD": password})
        #: the database the soak created for itself (dropped at the end); else only its schema
        self.created_database = created_database

    @classmethod
    def own_database(cls, server: PgServer) -> Self:
        """A fresh target database on the stand-in server (as the tests make one)."""
        name = new_database_name("fluxion_soak_target_")
        create_database(server, name)
        url = f"postgresql://{server.user}@{server.host}:{server.port}/{name}?sslmode=disable"
        return cls(url, server.password, "public", created_database=(server, name))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """``DATABASE_URL`` + ``PGPASSWORD``, as the CLI takes them; the soak writes into a fresh
        schema of its own there (dropped at the end), never into an existing one."""
        return cls(
            env["DATABASE_URL"],
            env.get("PGPASSWORD", ""),
            f"fluxion_soak_{secrets.token_hex(4)}",
        )

    def connect(self, **options: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(
            make_conninfo(**self.login.connect_kwargs()),
            autocommit=True,
            application_name=SOAK_APPLICATION_NAME,
            options=f"-c search_path={self.search_path} -c TimeZone=UTC",
            connect_timeout=10,
            **options,
        )

    @property
    def search_path(self) -> str:
        """The soak's sessions' ``search_path``: where the ledger (then the rows) are found."""
        return self.schema

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.url,
            "PGPASSWORD": self.password,
            "DATABASE_SCHEMA": self.schema,
        }

    def read(self) -> TargetState:
        """Ledger and rows in one repeatable-read transaction: one consistent view."""
        with self.connect() as con:
            if not self._has_tables(con):
                return TargetState([], {})
            con.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with con.transaction():
                return TargetState(_ledger(con.execute), _rows(con.execute))

    def _has_tables(self, con: psycopg.Connection[Any]) -> bool:
        found = con.execute(
            "SELECT to_regclass('inventario_raw') IS NOT NULL"
            " AND to_regclass('etl_ejecuciones') IS NOT NULL"
        ).fetchone()
        return bool(found and found[0])

    def _etl_sessions(self, where: str = "") -> int:
        """ETL sessions in this database (a just-killed client's backend takes a moment to
        notice its socket closed: waited for, up to 10 s)."""
        query = (
            "SELECT count(*) FROM pg_stat_activity a "
            f"{where} WHERE a.application_name = %s AND a.datname = current_database()"
        )
        ends = time.monotonic() + 10
        with self.connect() as con:
            while True:
                found = con.execute(query, [ETL_APPLICATION_NAME]).fetchone()
                count = int(found[0]) if found else 0
                if count == 0 or time.monotonic() > ends:
                    return count
                time.sleep(0.1)

    def run_lock_free(self) -> bool:
        return (
            self._etl_sessions(
                "JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory' AND l.granted"
            )
            == 0
        )

    def leftover_sessions(self) -> int | None:
        return self._etl_sessions()

    def size_bytes(self) -> int:
        with self.connect() as con:
            if not self._has_tables(con):
                return 0
            found = con.execute(
                "SELECT pg_total_relation_size('inventario_raw')"
                " + pg_total_relation_size('etl_ejecuciones')"
            ).fetchone()
            return int(found[0]) if found else 0

    def reader_target(self) -> str:
        return self.url

    def drop(self) -> None:
        if self.created_database is not None:
            server, name = self.created_database
            drop_database(server, name)
            return
        with self.connect() as con:
            drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
            con.execute(drop.format(sql.Identifier(self.schema)))


class PostgresSummary:
    """The backend on PostgreSQL: one pooled connection, each request one read-only
    repeatable-read transaction (the summary and the batch ids see the same snapshot).
    ``statement_timeout`` is the bound a backend gives a request; a lost connection is
    counted as a failed open and opened again. Any error is one the backend would show: counted
    (``errors``), the connection opened again for the next request."""

    def __init__(self, url: str, env: Mapping[str, str], figures: Any, max_wait: float) -> None:
        self.login = resolve_login(url, env)
        self.schema = env.get("DATABASE_SCHEMA", "public")
        self.summary, self.batches = READS[env.get("ETL_TARGET_LAYOUT") or RAW]
        self.figures = figures
        self.max_wait = max_wait
        self.con: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self.con is None or self.con.closed:
            self.con = psycopg.connect(
                make_conninfo(**self.login.connect_kwargs()),
                autocommit=True,
                application_name="fluxion-soak-reader",
                options=(
                    f"-c search_path={self.schema} -c TimeZone=UTC"
                    f" -c statement_timeout={int(self.max_wait * 1000)}"
                    " -c default_transaction_read_only=on"
                ),
                connect_timeout=10,
            )
            self.con.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        return self.con

    def request(self) -> dict[str, tuple[int, int, str]] | None:
        try:
            con = self._connection()
            with con.transaction():
                seen = _summary(con.execute, self.summary, self.batches)
        except psycopg.errors.QueryCanceled as exc:
            self.figures.gave_up += 1
            self.figures.record_error(exc)
            return None
        except psycopg.OperationalError as exc:
            self.figures.failed_opens += 1
            self.figures.record_error(exc)
            self.close()
            return None
        except psycopg.Error as exc:  # what the backend would show as an error page
            self.figures.record_error(exc)
            self.close()
            return None
        return seen

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None


# --- shared ----------------------------------------------------------------------------------


def open_summary(
    target: str, env: Mapping[str, str], figures: Any, max_wait: float, retry_max: float
) -> Summary:
    """The backend reader's connection to ``target``: a ``postgresql://`` URL (password and
    schema from ``PGPASSWORD`` and ``DATABASE_SCHEMA``, as the CLI takes them) or a file."""
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresSummary(target, env, figures, max_wait)
    return DuckDBSummary(Path(target), figures, max_wait, retry_max)


def soak_target(
    kind: str, workdir: Path, server: PgServer, env: Mapping[str, str], layout: str = RAW
) -> SoakTarget:
    """The soak's target: a file in ``workdir``, or PostgreSQL (``DATABASE_URL`` if set, else a
    database of its own on the stand-in server) in the table layout ``layout``."""
    if kind == "duckdb":
        return DuckDBSoakTarget(workdir / "target.duckdb")
    adapter: type[PostgresSoakTarget] = PostgresSoakTarget
    if layout == ACTUAL:
        from fluxion_harness.soak_actual import ActualSoakTarget  # it builds on this module

        adapter = ActualSoakTarget
    if env.get("DATABASE_URL"):
        return adapter.from_env(env)
    return adapter.own_database(server)


def _summary(
    execute: Any, summary: str = SUMMARY, batches_query: str = BATCHES
) -> dict[str, tuple[int, int, str]]:
    """store -> (products on the backend's dashboard, distinct batch ids, a batch id): the
    dashboard's own per-location summary (:data:`fluxion_harness.backend.SUMMARY`, or the
    PostgreSQL backend's :data:`fluxion_harness.backend_pg.SUMMARY`), then the batch ids, both on
    one connection's one view."""
    products = {row[0]: int(row[3]) for row in execute(summary).fetchall()}
    batches = {row[0]: (int(row[1]), str(row[2])) for row in execute(batches_query).fetchall()}
    return {store: (count, *batches.get(store, (0, ""))) for store, count in products.items()}


def _ledger(execute: Any) -> list[LedgerRow]:
    try:
        return [(str(r[0]), str(r[1]), str(r[2]), r[3]) for r in execute(LEDGER).fetchall()]
    except duckdb.CatalogException:
        return []


def _rows(execute: Any) -> ServedRows:
    found: ServedRows = {}
    try:
        fetched = execute(ROWS).fetchall()
    except duckdb.CatalogException:
        return found
    for store, code, quantity, batch in fetched:
        found.setdefault(store, {})[code] = (quantity, batch)
    return found
