"""Publish: swap one store's snapshot in the target DuckDB file, atomically, lock politely.

DuckDB allows one writer process. The web backend reads the same file, so the ETL opens the
file only for the publish transactions, and when someone else holds it, waits with jittered
exponential backoff up to ``ETL_LOCK_WAIT_SECONDS`` before giving up on that store (``bloqueo``).
Per store, in the publish's transaction: count the rows it serves for the snapshot guard
(guard.py), delete them, insert the new snapshot, write its ledger row. Either the whole new
snapshot is visible or the previous one stays.

Stores that are ready together are published in one opening of the file (a publishing session,
:meth:`Publisher.publishing`) and as one batch (:meth:`Publisher.publish_batch`): one transaction
for as many of them as the hold bound allows, a failing store isolated by publishing the others
again one by one. Opening the file and its checkpoint on close cost three times the copy of a chain
store's rows, and a commit per store most of the rest, so a run paying them per store queued its
stores behind the lock. A session lets go of the file after
:data:`MAX_HOLD_SECONDS`, and every re-opening first leaves the file free three times as long
as the last opening held it (:func:`~fluxion_etl.targets.duckdb.connect.reader_gap`), so a
backend reader gets in within a bounded wait and has the file at least three quarters of the
time while the publishes follow one another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import duckdb
import structlog

from fluxion_etl.contract import DEFAULT_TIMEZONE, local_naive
from fluxion_etl.errors import (
    SnapshotHeldBack,
    StoreError,
    TargetUnwritable,
)
from fluxion_etl.ledger import LedgerEntry, utcnow
from fluxion_etl.sql import TABLE_ROW_GROUP_ROWS
from fluxion_etl.sql import literal as sql_literal
from fluxion_etl.targets.base import Publication
from fluxion_etl.targets.duckdb import schema
from fluxion_etl.targets.duckdb.adoption import TargetColumns, copy_snapshots, target_columns
from fluxion_etl.targets.duckdb.connect import TargetFile, reader_gap
from fluxion_etl.targets.duckdb.storage import (
    DEFAULT_STORAGE_VERSION,
)

T = TypeVar("T")
#: a publishing session lets go of the file once it has held it this long (checked after each
#: store's commit), so a reader waits at most about this plus one store's transaction
MAX_HOLD_SECONDS = 0.5
log = structlog.get_logger("fluxion_etl.targets.duckdb.publisher")
#: every this many openings, the checkpoint closing one vacuums (DuckDB's default task count):
#: the writer's checkpoints do not (storage.WRITER_SETTINGS), so each opening's transactions leave
#: small row groups behind, and every opening of the file reads all their metadata; merged this
#: often, a run of thousands of small stores keeps its openings cheap and still rewrites each
#: row group at most once per this many openings instead of at every one. The count starts full
#: in every run (every :class:`Publisher`): its first opening vacuums what the runs before it
#: left, so a run of fewer openings (the chain's fleet) does not leave the file growing.
VACUUM_EVERY_OPENINGS = 16
VACUUM_SETTING = "SET max_vacuum_tasks = 100"
#: the run waits this long, once a store is ready, for more to publish in the same opening of
#: the file (the Target seam's ``gather_seconds``). Opening the file and the checkpoint closing
#: it cost ~15 and ~10-35 ms whatever the stores, on top of a small store's ~10-25 ms swap, so
#: stores published as they come, one or two per opening, paid them per store and held the
#: lock most of a run of thousands. A store's snapshot becomes visible up to this much later;
#: a reader's wait is still bounded by :data:`MAX_HOLD_SECONDS` plus one store.
GATHER_SECONDS = 1.0

#: one transaction publishes at most this many rows and stores (the first store always): a
#: batch's statements take all its stores at once, so this bounds what a reader waits for past
#: MAX_HOLD_SECONDS; ~60k rows/s copied on a busy 2-core machine makes it ~0.3 s
TRANSACTION_ROWS = 20_000
TRANSACTION_STORES = 32

#: DuckDB's memory for a publish. Without a limit (DuckDB's default is 80% of the machine) it
#: keeps every block of the uncommitted snapshot cached, so the ETL's peak memory would grow
#: with the largest store (1M products: 545 MiB); with it, blocks already written are dropped.
#: Measured: 1M products 545 -> 359 MiB in the publish, 500k 386 -> 333 MiB, same lock time.
PUBLISH_MEMORY_LIMIT = "256MB"


def _rows_of(publication: Publication) -> int:
    counters = publication.entry.counters
    return counters.loaded if counters else 0


def _threads_for(chosen: Sequence[Publication]) -> str:
    """The setting of DuckDB's threads for one transaction's stores: one for a store of one row
    group.

    Its rows cannot be split between threads, so a second one only waits on the first, and
    that costs CPU under the lock: 22 against 13 ms for a 3,700-row store (the fleet's 21
    publishes are the end of its run). Bigger stores copy their row groups in parallel.
    """
    rows = max(_rows_of(publication) for publication in chosen)
    return "SET threads = 1" if rows <= TABLE_ROW_GROUP_ROWS else "RESET threads"


def _transaction_share(
    batch: Sequence[Publication], left_seconds: float, seconds_per_store: float
) -> Sequence[Publication]:
    """The first stores of ``batch`` that one transaction publishes: at least one, then as many
    as the hold has time left for at the pace of the last transaction (``seconds_per_store``;
    one store while it is unknown), within :data:`TRANSACTION_ROWS` and
    :data:`TRANSACTION_STORES`. The share is chosen before the transaction, since its
    statements take all its stores at once; so a reader still waits about
    :data:`MAX_HOLD_SECONDS` plus one store (a fixed 32 stores per transaction held the file
    1.6 s at the 50 ms a store took in a busy 5,000-store run)."""
    fits = int(left_seconds / seconds_per_store) if seconds_per_store > 0 else 1
    rows = _rows_of(batch[0])
    count = 1
    for publication in batch[1:]:
        rows += _rows_of(publication)
        if count >= min(fits, TRANSACTION_STORES) or rows > TRANSACTION_ROWS:
            break
        count += 1
    return batch[:count]


class Publisher(TargetFile):
    """Publishes stores into the target DuckDB file, opened read-write only for short, retried
    transactions (:class:`~fluxion_etl.targets.duckdb.connect.TargetFile`)."""

    def __init__(
        self,
        path: Path,
        lock_wait_seconds: float,
        stop: threading.Event | None = None,
        logger: structlog.stdlib.BoundLogger | None = None,
        *,
        storage_version: str = DEFAULT_STORAGE_VERSION,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        super().__init__(
            path, lock_wait_seconds, stop, logger or log, storage_version=storage_version
        )
        #: the chain's zone, for ``created_at`` (naive local time, like ``fecha_extraccion``)
        self.timezone = timezone
        #: inside :meth:`publishing`: publishes keep the file open between stores
        self._in_session = False
        #: the publishes' open connection, and when it was opened (monotonic)
        self._held: duckdb.DuckDBPyConnection | None = None
        self._held_since = 0.0
        #: stores committed in the current opening (for its log line)
        self._held_stores = 0
        #: how long a store took in the last transaction (its share of it), for the next one's
        self._seconds_per_store = 0.0
        #: ``inventario_raw``'s columns, read once per opening (the publishes do not alter them)
        self._target_columns: TargetColumns | None = None
        #: openings since a checkpoint last vacuumed (:data:`VACUUM_EVERY_OPENINGS`); as if a
        #: whole cadence had passed, since the runs before this one may not have vacuumed
        #: (a run of fewer openings never reached its count)
        self._unvacuumed = VACUUM_EVERY_OPENINGS - 1

    def open_run(self, run_id: str, store_ids: Sequence[str], engine: str) -> int:
        """Migrate the schema and open the run's ledger rows (one transaction)."""

        def work(con: duckdb.DuckDBPyConnection) -> int:
            schema.migrate(con)
            return schema.open_run(con, run_id, store_ids, engine)

        return self.run(work, step="opening the run")

    def served_rows(self) -> dict[str, int]:
        """How many rows each store serves now (for the snapshot guard's early judgement)."""

        def work(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
            rows = con.execute(
                "SELECT ubicacion_id, count(*) FROM inventario_raw GROUP BY ubicacion_id"
            ).fetchall()
            return {str(store_id): int(count) for store_id, count in rows}

        return self.run(work, step="counting the rows each store serves")

    def publish(
        self,
        store_id: str,
        ready: Path,
        entry: LedgerEntry,
        vet: Callable[[LedgerEntry, int], LedgerEntry] | None = None,
    ) -> LedgerEntry:
        """Replace ``store_id``'s snapshot with the rows of ``ready`` and close its ledger row;
        return ``entry`` as recorded, or raise what kept the previous snapshot.

        ``ready`` is the store's ready database (:func:`fluxion_etl.run.transform.transform_store`):
        its view ``inventario`` gives the new snapshot's rows, in the target's row-group size.
        ``vet`` (the snapshot guard) is called first, with the rows the store serves now, counted
        in this transaction so nothing can change them before the swap: it returns the ledger
        entry to write, or raises to keep the previous snapshot (nothing of the store written).
        The entry's ``finished`` is stamped inside the transaction, just before the commit: the
        ledger says when the snapshot became visible, not when the wait for the lock began.
        """
        (outcome,) = self.publish_batch([Publication(store_id, ready, entry, vet)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def publish_batch(self, batch: Sequence[Publication]) -> list[LedgerEntry | Exception]:
        """:meth:`publish` for the stores ready together, in as few transactions as the hold
        bound allows; each one's outcome, in ``batch``'s order.

        One transaction for many stores pays the commit (the write-ahead log's flush) and the
        statements around the swaps once: 13 stores of 3,700 rows took 380 instead of 520 ms
        of CPU, and the end of a fleet's run is its publishes, one after another. Each store's
        swap still goes with its ledger row, and all become visible at the commit, which every
        entry's ``finished`` says. A store the guard holds back is left out before anything of
        it is written. Any other failure rolls back the whole transaction and its stores are
        published again one by one, so that only the failing one keeps its previous snapshot.
        A failure to open the file (a stop, the lock wait, an unwritable target) is the outcome
        of every store not yet committed.
        """
        outcomes: list[LedgerEntry | Exception] = []
        while len(outcomes) < len(batch):
            rest = batch[len(outcomes) :]
            try:
                con = self._publishing_connection(rest[0].store_id)
            except (StoreError, TargetUnwritable, duckdb.Error) as exc:
                return outcomes + [exc] * len(rest)
            outcomes += self._commit_some(con, rest)
        return outcomes

    def _commit_some(
        self, con: duckdb.DuckDBPyConnection, batch: Sequence[Publication]
    ) -> list[LedgerEntry | Exception]:
        """The first stores of ``batch`` (at least one, :func:`_transaction_share`), in one
        transaction on ``con``: their outcomes."""
        left = MAX_HOLD_SECONDS - (time.monotonic() - self._held_since)
        chosen = _transaction_share(batch, left, self._seconds_per_store)
        outcomes: list[LedgerEntry | Exception] = []
        swapped: list[tuple[int, LedgerEntry, int]] = []
        began = time.monotonic()
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                for index, written, nulled in self._swap_all(con, chosen, outcomes):
                    swapped.append((index, written, nulled))
                finished = utcnow()
                for index, written, nulled in swapped:
                    outcomes[index] = recorded = replace(written, finished=finished)
                    schema.close_entry(con, recorded, nulled)
            except BaseException:
                with suppress(duckdb.Error):  # a connection closed without COMMIT rolls back too
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            self._held_stores += len(swapped)
            self._seconds_per_store = (time.monotonic() - began) / len(chosen)
        except (StoreError, TargetUnwritable, duckdb.Error) as exc:
            # A failed transaction ends the opening: its connection may be unusable, or still
            # have a ready database attached.
            self._release()
            return self._each_alone(chosen, outcomes, exc)
        except BaseException:
            self._release()
            raise
        if not self._in_session or self._held_long_enough():
            self._release()
        for index, _, nulled in swapped:
            if nulled:
                self.log.warning(
                    "values the target's column types cannot hold were published as NULL",
                    phase="publish",
                    store=batch[index].store_id,
                    rows=nulled,
                )
        return outcomes

    def _each_alone(
        self,
        tried: Sequence[Publication],
        outcomes: list[LedgerEntry | Exception],
        error: Exception,
    ) -> list[LedgerEntry | Exception]:
        """The outcomes of the stores a transaction ``tried`` before it failed with ``error``:
        each published again alone, except those the guard held back (nothing of them was
        written), and a store that was alone already (``error`` is its outcome)."""
        redone: list[LedgerEntry | Exception] = []
        for index, publication in enumerate(tried):
            if index < len(outcomes) and isinstance(outcomes[index], SnapshotHeldBack):
                redone.append(outcomes[index])
            elif len(tried) == 1:
                redone.append(error)
            else:
                redone += self.publish_batch([publication])
        return redone

    def _swap_all(
        self,
        con: duckdb.DuckDBPyConnection,
        chosen: Sequence[Publication],
        outcomes: list[LedgerEntry | Exception],
    ) -> list[tuple[int, LedgerEntry, int]]:
        """Inside the open transaction: the guard's judgement of every store of ``chosen``, then
        the rows of those it lets through replaced by their ready databases'. Appends each
        store's outcome to ``outcomes`` (the entry to record, or what held it back); returns the
        swapped ones' (index, entry, rows published as NULL because the target's column type
        cannot hold their value).

        One statement per step for all the stores (their counts, the delete, the insert of the
        ready databases attached side by side), not one per store: a small store's swap was
        mostly the statements' own cost."""
        con.execute(_threads_for(chosen))
        ids = [publication.store_id for publication in chosen]
        served: dict[str, int] = {}
        if any(publication.vet is not None for publication in chosen):
            rows = con.execute(
                "SELECT ubicacion_id, count(*) FROM inventario_raw "
                "WHERE ubicacion_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY ubicacion_id",
                [ids],
            ).fetchall()
            served = {str(store): int(count) for store, count in rows}
        kept: list[tuple[int, Publication, LedgerEntry]] = []
        for publication in chosen:
            written = publication.entry
            if publication.vet is not None:
                try:
                    written = publication.vet(written, served.get(publication.store_id, 0))
                except SnapshotHeldBack as exc:  # judged before any of its rows changed
                    outcomes.append(exc)
                    continue
            kept.append((len(outcomes), publication, written))
            outcomes.append(written)
        if not kept:
            return []
        con.execute(
            "DELETE FROM inventario_raw WHERE ubicacion_id IN (SELECT unnest(?::VARCHAR[]))",
            [[publication.store_id for _, publication, _ in kept]],
        )
        if self._target_columns is None:
            self._target_columns = target_columns(con)
        for number, (_, publication, _) in enumerate(kept):
            # ATTACH takes no parameter; the path is one the transform made
            con.execute(
                f"ATTACH {sql_literal(str(publication.ready))} AS ready_{number} (READ_ONLY)"
            )
        created_at = local_naive(utcnow(), self.timezone)
        nulled = copy_snapshots(
            con,
            [f"ready_{number}.inventario" for number in range(len(kept))],
            {"created_at": created_at},
            self._target_columns,
        )
        for number in range(len(kept)):
            con.execute(f"DETACH ready_{number}")
        return [
            (index, written, count)
            for (index, _, written), count in zip(kept, nulled, strict=True)
        ]

    def _held_long_enough(self) -> bool:
        """The session has held the file for :data:`MAX_HOLD_SECONDS`: readers' turn next."""
        return time.monotonic() - self._held_since >= MAX_HOLD_SECONDS

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """A publishing session: the publishes inside it share one opening of the file, each
        :meth:`publish` or :meth:`publish_batch` its own transactions (every store's swap with
        its ledger row).

        The file is let go when the session ends, and earlier, after the commit that reaches
        :data:`MAX_HOLD_SECONDS` of holding; the next store then re-opens it after the reader
        gap. Outside a session every publish opens and closes the file itself.
        """
        self._in_session = True
        try:
            yield
        finally:
            self._in_session = False
            self._release()

    def _publishing_connection(self, store_id: str) -> duckdb.DuckDBPyConnection:
        """The session's open connection, or a new one (after the reader gap and the lock wait)."""
        if self._held is None:
            con = self._connect(True, "publishing the store", store_id)
            self._held, self._held_since, self._held_stores = con, time.monotonic(), 0
            try:
                con.execute(f"SET memory_limit = '{PUBLISH_MEMORY_LIMIT}'")
            except BaseException:
                self._release()
                raise
        return self._held

    def _release(self) -> None:
        """Close the publishes' connection, if open: DuckDB checkpoints the file and drops its
        lock. Never raises: the stores it held were committed (or rolled back) already, and a
        checkpoint that fails leaves the write-ahead log, which DuckDB replays at the next
        opening."""
        con, self._held = self._held, None
        if con is None:
            return
        self._target_columns = None
        self._unvacuumed += 1
        try:
            if self._unvacuumed >= VACUUM_EVERY_OPENINGS:
                self._unvacuumed = 0
                con.execute(VACUUM_SETTING)
            con.close()
        except duckdb.Error as exc:
            self.log.warning(
                "closing the target after publishing failed; its next opening replays the log",
                phase="publish",
                error=str(exc),
            )
        finally:
            released = time.monotonic()
            held = released - self._held_since
            self._free_until = released + reader_gap(held)
            self.lock_held_seconds += held
            self.log.info(
                "target released",
                phase="publish",
                stores=self._held_stores,
                held_seconds=round(held, 3),
            )

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Close failed stores' ledger rows (one transaction); their snapshots stay as they were."""

        def work(con: duckdb.DuckDBPyConnection) -> None:
            for entry in entries:
                schema.close_entry(con, entry)

        self.run(work, interruptible=False, step="recording failed stores")
