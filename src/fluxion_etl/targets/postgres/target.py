"""The PostgreSQL target: the backend's own server (RDS), for backends that outgrew one file.

What changes against DuckDB, and why:

* **Readers never wait.** Each store's publish is one transaction (count what it serves for the
  snapshot guard, delete its rows, COPY the new ones, write its ledger row). MVCC keeps the old
  rows visible to every reader until the commit, and a ``DELETE``/``COPY`` takes only a
  ``ROW EXCLUSIVE`` table lock, which no ``SELECT`` conflicts with.
* **Rows go in by binary COPY** from the store's ready database's Arrow, on the publish's own
  cursor (:mod:`.pgcopy`, which says what was measured against what).
* **Dead rows**: every publish leaves the store's previous rows dead. After the run's publishes
  one ``VACUUM`` makes their space reusable (:mod:`.pgvacuum`), so the table stays near its live
  size instead of waiting for autovacuum's pace.
* **Run guard per store**: a session-level advisory lock per store, held by one connection for the
  whole run. Overlapping runs exit 4; runs over disjoint stores (the shards of a chain) proceed
  together. A killed run's session ends and the server drops its locks, as the kernel drops a
  flock.
* **Waits**: ``lock_timeout`` = ``ETL_LOCK_WAIT_SECONDS`` (a table lock someone else holds, e.g.
  a ``VACUUM FULL`` or an ``ALTER``); a stop (deadline, SIGTERM) cancels the running statement on
  the server (``cancel_safe``), so no backend is left copying after the run has gone.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fluxion_etl.config import Settings
from fluxion_etl.contract import DEFAULT_TIMEZONE, local_naive
from fluxion_etl.errors import (
    ConnectionFailed,
    DataError,
    FluxionError,
    Interrupted,
    PublishLockTimeout,
    TargetUnwritable,
)
from fluxion_etl.freshness import Freshness, snapshot_age
from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.stores import Store
from fluxion_etl.targets.base import CLOSING_LOCK_WAIT_SECONDS, Publication, Vet, publish_each
from fluxion_etl.targets.postgres import vacuum as pgvacuum
from fluxion_etl.targets.postgres.actual import ActualLayout
from fluxion_etl.targets.postgres.layout_names import ACTUAL
from fluxion_etl.targets.postgres.layouts import Layout, RawLayout
from fluxion_etl.targets.postgres.locks import StoreLocks, serialize_store_publish
from fluxion_etl.targets.postgres.url import PostgresLogin, resolve_login

T = TypeVar("T")
log = structlog.get_logger("fluxion_etl.targets.postgres.target")


def layout_for(settings: Settings, stores: Sequence[Store] = ()) -> Layout:
    """The layout the settings name; ``stores`` give the warehouse codes of the
    ``inventario_actual`` layout (a store not among them gets the code derived from its id)."""
    if settings.target_layout == ACTUAL:
        codes: Mapping[str, str] = {store.id: store.almacen_codigo for store in stores}
        return ActualLayout(
            schema=settings.database_schema,
            ledger_schema=settings.ledger_schema,
            warehouses=dict(codes),
            owns_products=settings.owns_products,
        )
    return RawLayout(settings.database_schema)


class PostgresTarget:
    #: the Target seam's wait for more ready stores: none, a publish blocks no reader and its
    #: session is shared already by the stores ready together
    gather_seconds = 0.0

    def __init__(
        self,
        login: PostgresLogin,
        schema: str,
        lock_wait_seconds: float,
        connect_timeout_seconds: int = 15,
        stop: threading.Event | None = None,
        logger: structlog.stdlib.BoundLogger | None = None,
        timezone: str = DEFAULT_TIMEZONE,
        layout: Layout | None = None,
        trusted_owners: Sequence[str] = (),
    ) -> None:
        self.login = login
        #: the tables a publish writes (layouts.py): ``inventario_raw`` unless told otherwise
        self.layout: Layout = layout or RawLayout(schema)
        #: roles besides fluxion's own whose objects it may publish into (:mod:`.owners`)
        self.trusted_owners = tuple(trusted_owners)
        #: the chain's zone, for ``created_at`` (naive local time, as on DuckDB)
        self.timezone = timezone
        self.schema = schema
        self.lock_wait_seconds = lock_wait_seconds
        self.connect_timeout_seconds = connect_timeout_seconds
        self.stop = stop or threading.Event()
        self.log = logger or log
        self.lock_held_seconds = 0.0
        #: the run guard this target holds (set by :class:`StoreLocks` while it is held)
        self.locks: StoreLocks | None = None
        #: inside :meth:`publishing`: the publishes' one session, opened by the first of them
        self._in_session = False
        self._session: psycopg.Connection[Any] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        stop: threading.Event | None = None,
        logger: structlog.stdlib.BoundLogger | None = None,
        stores: Sequence[Store] = (),
    ) -> PostgresTarget:
        """The target the settings name, with the table layout of ``ETL_TARGET_LAYOUT`` (the
        ``stores`` give the ``inventario_actual`` layout its warehouse codes)."""
        assert settings.database_url is not None
        return cls(
            resolve_login(settings.database_url),
            settings.database_schema,
            settings.lock_wait_seconds,
            settings.connect_timeout_seconds,
            stop,
            logger,
            settings.timezone,
            layout_for(settings, stores),
            settings.database_trusted_owners,
        )

    def describe(self) -> str:
        return f"{self.login.describe()} {self.layout.describe()}"

    def storage_version(self) -> str:
        """No file format to agree on: any PostgreSQL client reads the tables."""
        return "n/a"

    def storage_line(self) -> str:
        return f"target {self.describe()}: PostgreSQL (no file format to agree on)"

    def preflight(self) -> None:
        """The URL was checked with the settings; nothing else is knowable without connecting."""

    # --- connections --------------------------------------------------------------------------

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A session in the target's schema, in UTC, named in ``pg_stat_activity``.

        Keepalives make a dead peer (an RDS fail-over, a dropped route) an error within a
        minute instead of a hang; a failure to connect is one line without the password.
        """
        try:
            return psycopg.connect(
                make_conninfo(**self.login.connect_kwargs()),
                autocommit=autocommit,
                connect_timeout=self.connect_timeout_seconds,
                application_name="fluxion-etl",
                client_encoding="UTF8",  # Arrow's strings are UTF-8, whatever the database's
                options=f"-c search_path={self.layout.search_path} -c TimeZone=UTC",
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
            )
        except psycopg.Error as exc:
            raise ConnectionFailed(
                f"target {self.login.describe()}: cannot connect: {self._reason(exc)}"
            ) from None

    def _reason(self, exc: BaseException) -> str:
        text = self.login.redact(str(exc)).strip()  # redacted before lines or spaces are cut
        return text.splitlines()[0] if text else type(exc).__name__

    @contextmanager
    def _cancel_on_stop(self, con: psycopg.Connection[Any], interruptible: bool) -> Iterator[None]:
        """While the block runs, a stop request cancels the running statement on the server."""
        if not interruptible:
            yield
            return
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if self.stop.wait(0.1) and not done.is_set():
                    con.cancel_safe(timeout=5.0)
                    return

        watcher = threading.Thread(target=watch, name="fluxion-pg-cancel", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()

    def run(
        self,
        work: Callable[[psycopg.Cursor[Any]], T],
        *,
        interruptible: bool = True,
        step: str = "writing",
        store: str | None = None,
    ) -> T:
        """Run ``work`` in one transaction; translate the server's refusals into fluxion errors.

        ``lock_timeout`` bounds any wait for a table lock to ``ETL_LOCK_WAIT_SECONDS`` (after a
        stop, the closing write waits at most ``CLOSING_LOCK_WAIT_SECONDS``).
        """
        if interruptible and self.stop.is_set():
            raise Interrupted(f"{self.describe()}: run stopped before {step}")
        bound = self.lock_wait_seconds
        if not interruptible and self.stop.is_set():
            bound = min(bound, CLOSING_LOCK_WAIT_SECONDS)
        where = f"{store}: " if store else ""
        con = self._session or self.connect()
        if self._in_session:
            self._session = con
        opened = time.monotonic()
        failed = True
        try:
            with self._cancel_on_stop(con, interruptible), con.transaction(), con.cursor() as cur:
                cur.execute(
                    sql.SQL("SET LOCAL lock_timeout = {}").format(
                        sql.Literal(f"{max(int(bound * 1000), 1)}ms")
                    )
                )
                done = work(cur)
            failed = False
            return done
        except pgerrors.LockNotAvailable:
            raise PublishLockTimeout(
                f"{where}{step}: a table of {self.describe()} stayed locked by another session "
                f"for more than {bound:g} s (ETL_LOCK_WAIT_SECONDS)"
            ) from None
        except pgerrors.QueryCanceled:
            if self.stop.is_set():
                raise Interrupted(
                    f"{where}{step}: run stopped; the statement was cancelled"
                ) from None
            raise DataError(f"{where}{step}: the server cancelled the statement") from None
        except psycopg.OperationalError as exc:
            raise ConnectionFailed(
                f"{where}{step}: lost the target {self.login.describe()}: {self._reason(exc)}"
            ) from None
        except psycopg.Error as exc:
            raise DataError(
                f"{where}{step} failed on {self.describe()}: {type(exc).__name__}: "
                f"{self._reason(exc)}"
            ) from None
        finally:
            # a failed transaction ends a publishing session's connection too: it may be the
            # connection that failed (a fail-over, a cancelled statement); the next store
            # opens a new one
            if failed or not self._in_session:
                self._end_session(con)
            self.lock_held_seconds += time.monotonic() - opened

    def _end_session(self, con: psycopg.Connection[Any]) -> None:
        if con is self._session:
            self._session = None
        con.close()

    # --- the seam ----------------------------------------------------------------------------

    def guard(self, run_id: str, store_ids: Sequence[str]) -> AbstractContextManager[object]:
        return StoreLocks(self, run_id, store_ids)

    def open_run(self, run_id: str, store_ids: Sequence[str], engine: str) -> int:
        def work(cur: psycopg.Cursor[Any]) -> int:
            # whose objects these are, before anything is created or written (owners.py)
            self.layout.check_ownership(cur, self.trusted_owners)
            return self.layout.open_run(cur, run_id, store_ids, engine)

        return self.run(work, step="opening the run")

    def served_rows(self) -> dict[str, int]:
        return self.run(self.layout.served_rows, step="counting served rows")

    def publish(
        self, store_id: str, ready: Path, entry: LedgerEntry, vet: Vet | None = None
    ) -> LedgerEntry:
        """Swap the store's snapshot in one transaction (see the module's docstring); the rows go
        in by binary ``COPY`` from the ready database's Arrow (:mod:`.pgcopy`). The entry's
        ``finished`` is stamped just before the commit, as on DuckDB."""
        created_at = local_naive(utcnow(), self.timezone)

        def work(cur: psycopg.Cursor[Any]) -> LedgerEntry:
            serialize_store_publish(cur, self.schema, store_id)
            if self.locks is not None:
                self.locks.confirm(cur, store_id)
            return self.layout.publish(cur, store_id, ready, entry, vet, created_at)

        return self.run(work, step="publishing the store", store=store_id)

    def publish_batch(self, batch: Sequence[Publication]) -> list[LedgerEntry | Exception]:
        """Each store in its own transaction: a publish blocks no reader here, so there is
        nothing to gain from sharing one, and each store's advisory lock stays short."""
        return publish_each(lambda p: self.publish(p.store_id, p.ready, p.entry, p.vet), batch)

    def reclaim(self) -> None:
        """After the run's publishes, the replaced snapshots' space made reusable
        (:mod:`.pgvacuum`); never raises: a failure is a warning (autovacuum still gets there)."""
        if self.stop.is_set():
            return
        try:
            con = self.connect(autocommit=True)
        except FluxionError as exc:
            self.log.warning("dead rows not reclaimed", phase="vacuum", error=str(exc))
            return
        try:
            with self._cancel_on_stop(con, interruptible=True):
                done = pgvacuum.vacuum(con, self.layout.vacuum_table)
        except psycopg.Error as exc:
            self.log.warning(
                "dead rows not reclaimed; autovacuum will", phase="vacuum", error=self._reason(exc)
            )
        else:
            if done.refused is not None:
                self.log.warning(
                    "dead rows not reclaimed: the server refused the vacuum",
                    phase="vacuum",
                    error=self._reason(RuntimeError(done.refused)),
                )
                return
            self.log.info(
                "dead rows reclaimed" if done.vacuumed else "vacuum skipped: table busy",
                phase="vacuum",
                seconds=round(done.seconds, 3),
                dead_rows_before=done.dead_before,
            )
        finally:
            con.close()

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """The stores ready together share one session, each still in its own transaction
        (readers are never blocked by a publish, so there is no hold to bound). A new session per
        store cost more than a small store's publish: ~50 ms of connecting and authenticating
        (a server process forked per session) against ~30 ms of swapping 2,000 rows."""
        self._in_session = True
        try:
            yield
        finally:
            self._in_session = False
            if self._session is not None:
                self._end_session(self._session)

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        def work(cur: psycopg.Cursor[Any]) -> None:
            for entry in entries:
                self.layout.close_entry(cur, entry)

        self.run(work, interruptible=False, step="recording failed stores")

    def store_status(
        self, on_wait: Callable[[str], None] | None = None
    ) -> list[dict[str, object]] | None:
        """Readers never wait for a publish on PostgreSQL (MVCC): ``on_wait`` is not called."""
        return self.run(self.layout.store_status, interruptible=False, step="reading the status")

    def freshness(self, store_ids: Sequence[str], stale_after_seconds: float) -> Freshness | None:
        """Snapshot ages from ``etl_ultima_carga``, read after the run."""

        def work(cur: psycopg.Cursor[Any]) -> dict[str, dt.datetime]:
            present = cur.execute("SELECT to_regclass('etl_ultima_carga')").fetchone()
            if not present or present[0] is None:
                return {}
            rows = cur.execute("SELECT ubicacion_id, ultima_actualizacion FROM etl_ultima_carga")
            return {
                str(store): when.astimezone(dt.UTC).replace(tzinfo=None)
                for store, when in rows.fetchall()
                if when is not None
            }

        try:
            successes = self.run(work, interruptible=False, step="reading the snapshot ages")
        except FluxionError as exc:
            self.log.warning(
                "could not read the snapshot ages; the store metrics go without them",
                phase="metrics",
                error=str(exc),
            )
            return None
        now = utcnow()
        ages = {store: snapshot_age(successes.get(store), now) for store in store_ids}
        return Freshness(ages, stale_after_seconds)

    def check(self) -> str:
        """Connect, then create, fill and empty a scratch table in the schema, rolled back: it
        proves the rights a run needs and leaves nothing behind."""

        def work(cur: psycopg.Cursor[Any]) -> str:
            owners = self.layout.check_ownership(cur, self.trusted_owners)
            self.layout.check_tables(cur)
            cur.execute("CREATE TABLE fluxion_check (id INTEGER)")
            cur.execute("INSERT INTO fluxion_check VALUES (1)")
            cur.execute("DELETE FROM fluxion_check")
            version = cur.execute("SHOW server_version").fetchone()
            server = version[0] if version else "?"
            raise _RollBack(
                f"{self.describe()}: create/insert/delete ok (PostgreSQL {server}); "
                f"{owners}"
            )

        try:
            self.run(work, interruptible=False, step="checking the target")
        except _RollBack as done:
            return str(done)
        raise TargetUnwritable("unreachable")  # pragma: no cover - work always raises


class _RollBack(FluxionError):
    """Leaves the check's transaction by rolling it back, carrying the result."""
