"""Opening the target DuckDB file politely: wait out another process's lock, leave readers a gap.

DuckDB allows one writer process, and the web backend opens the same file per request. So the
ETL opens it read-write only for short transactions, and when someone else holds it, waits with
jittered exponential backoff up to ``ETL_LOCK_WAIT_SECONDS`` (``bloqueo`` after that). Every
re-opening first leaves the file free for :func:`reader_gap` (three times the last hold, at least
:data:`READER_GAP_SECONDS`), so a backend waiting to open it gets in between two of the ETL's
openings, and has the file at least three quarters of the time. The publisher
(:mod:`fluxion_etl.targets.duckdb.publisher`) and the after-run reads (freshness) share this.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    stop_when_event_set,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from fluxion_etl import duckdb_offline
from fluxion_etl.errors import Interrupted, PublishLockTimeout
from fluxion_etl.targets.base import CLOSING_LOCK_WAIT_SECONDS
from fluxion_etl.targets.duckdb.path import unwritable
from fluxion_etl.targets.duckdb.storage import (
    DEFAULT_STORAGE_VERSION,
    WRITER_SETTINGS,
    connect_config,
)

T = TypeVar("T")
#: How long a reader of fluxion's own (``status``, ``check``) waits for a publish to let go of the
#: file: what docs/operations.md tells the backend to wait, retrying as often as it is told to.
READ_WAIT_SECONDS = 5.0
READ_RETRY_SECONDS = 0.05
#: the file stays free at least this long between two openings by a publish, so a backend
#: waiting to open it gets in between two batches of stores
READER_GAP_SECONDS = 0.1
#: the largest share of the time the publishes hold the file while they follow one another:
#: after holding it for ``h`` seconds, a publish re-opens it only ``h * (1 - share) / share``
#: later (three times as long), so readers have it at least three quarters of the time however
#: far the publishes are behind. A run whose stores are ready faster than the file takes them
#: (thousands of small stores on two cores: its publisher was its bottleneck, and held the file
#: 57-85 % of the run) publishes at this pace and takes longer; a run whose publishes keep up
#: (the chain's fleet, whose stores arrive over the VPN) rarely waits for the gap.
WRITER_SHARE = 0.25
#: longest pause between two attempts to open the file while another process holds it
LOCK_RETRY_MAX_SECONDS = 0.25
#: random part of that pause, so two waiting writers do not retry in step
LOCK_RETRY_JITTER = 0.05
log = structlog.get_logger("fluxion_etl.targets.duckdb")


def is_lock_conflict(exc: BaseException) -> bool:
    """True for DuckDB's 'another process holds this file' error."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def _log_lock_wait(
    wait_log: structlog.stdlib.BoundLogger, step: str, state: RetryCallState
) -> None:
    """Log the 1st, 2nd, 4th, 8th... attempt of a lock wait (retries come every ~0.25 s)."""
    attempt = state.attempt_number
    if attempt & (attempt - 1) == 0:
        wait_log.warning(
            "target database is locked by another process; waiting",
            phase="publish",
            step=step,
            attempt=attempt,
            waited_seconds=round(state.seconds_since_start or 0.0, 1),
        )


def reader_gap(held_seconds: float) -> float:
    """How long the file stays free after a publish held it ``held_seconds``: at least
    :data:`READER_GAP_SECONDS`, and long enough that the publishes hold it at most
    :data:`WRITER_SHARE` of the time."""
    return max(READER_GAP_SECONDS, held_seconds * (1 - WRITER_SHARE) / WRITER_SHARE)


class TargetFile:
    """The target DuckDB file, opened read-write only for short, retried transactions."""

    def __init__(
        self,
        path: Path,
        lock_wait_seconds: float,
        stop: threading.Event | None = None,
        logger: structlog.stdlib.BoundLogger | None = None,
        *,
        storage_version: str = DEFAULT_STORAGE_VERSION,
    ) -> None:
        self.path = path
        #: the run's logger (bound to its run_id), so a lock wait says which run waits
        self.log = logger or log
        #: the storage format a *new* file is created with (an existing file keeps its own)
        self.storage_version = storage_version
        self.lock_wait_seconds = lock_wait_seconds
        #: set by the run's deadline or a signal: cuts a lock wait short (raises Interrupted)
        self.stop = stop or threading.Event()
        #: total seconds the write lock was held by this process (for the run's metrics)
        self.lock_held_seconds = 0.0
        #: until when (monotonic) the file is the readers' after a publish let go of it: the
        #: reader gap, :func:`reader_gap` of that publish's hold
        self._free_until = 0.0

    @contextmanager
    def _transaction(
        self, *, interruptible: bool, step: str, store: str | None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._connect(interruptible, step, store)
        opened = time.monotonic()
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()
            self.lock_held_seconds += time.monotonic() - opened

    def _connect(
        self, interruptible: bool, step: str, store: str | None
    ) -> duckdb.DuckDBPyConnection:
        """Open the file read-write, waiting for another process's lock up to the bound.

        Each wait is logged with the ``step`` that waits (opening the run, publishing a store,
        recording failed stores) and the ``store`` it is for, if one.

        An ``interruptible`` wait also ends as soon as the run is stopped (``Interrupted``);
        the closing write of failed stores is not interruptible but waits at most
        ``CLOSING_LOCK_WAIT_SECONDS`` once the run has been stopped.

        A publish that let go of the file less than :func:`reader_gap` ago is waited for first
        (a stop cuts that short): the gap is the backend's turn.
        """
        gap = self._free_until - time.monotonic()
        if gap > 0:
            self.stop.wait(gap)
        bound = self.lock_wait_seconds
        if not interruptible and self.stop.is_set():
            bound = min(bound, CLOSING_LOCK_WAIT_SECONDS)
        stop: stop_base = stop_after_delay(bound)
        sleep: Callable[[float], None] = time.sleep
        if interruptible:
            stop = stop | stop_when_event_set(self.stop)
            sleep = self._sleep_unless_stopped
        wait_log = self.log.bind(store=store) if store else self.log
        retrying = Retrying(
            retry=retry_if_exception(is_lock_conflict),
            stop=stop,
            # Short and flat: a backend opening the file per request leaves it free in gaps of
            # tens of ms, which a writer backing off to seconds rarely hits (the soak, a reader
            # at 20 requests/s: with a 10 s cap, 1 store in 21 of each run gave up after a 4 s
            # wait). A failed open costs well under a millisecond.
            # The jitter is added rather than asked of wait_exponential_jitter: its ``initial``
            # warns (deprecated) on recent tenacity, and the ``multiplier`` replacing it does not
            # exist on older ones; this sum is the same wait on every tenacity >= 8.2.
            wait=wait_exponential(multiplier=0.05, max=LOCK_RETRY_MAX_SECONDS - LOCK_RETRY_JITTER)
            + wait_random(0, LOCK_RETRY_JITTER),
            sleep=sleep,
            before_sleep=lambda state: _log_lock_wait(wait_log, step, state),
            reraise=True,
        )
        try:
            config = connect_config(self.storage_version)
            con = retrying(duckdb_offline.connect, str(self.path), config=config)
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):  # read-only mount, wrong owner: one line, no traceback
                raise unwritable(self.path, exc) from None
            if interruptible and self.stop.is_set():
                raise Interrupted(
                    f"{self.path}: run stopped while waiting for another process's lock"
                ) from None
            raise PublishLockTimeout(
                f"{self.path} stayed locked by another process for more than "
                f"{bound:g} s (ETL_LOCK_WAIT_SECONDS); is the backend holding "
                "a long-lived connection?"
            ) from None
        con.execute(WRITER_SETTINGS)
        return con

    def _sleep_unless_stopped(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def run(
        self,
        work: Callable[[duckdb.DuckDBPyConnection], T],
        *,
        interruptible: bool = True,
        step: str = "writing",
        store: str | None = None,
    ) -> T:
        """Run ``work`` inside one write transaction on the target (``step`` and ``store`` name
        it in the lock-wait warnings)."""
        with self._transaction(interruptible=interruptible, step=step, store=store) as con:
            return work(con)


def open_read_only(
    path: Path,
    wait_seconds: float = READ_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """``path`` opened read-only, waiting out a writer (a publish holds the file for about half
    a second) up to ``wait_seconds``, as the backend is told to; ``on_wait`` hears once that it
    waits. Never creates anything: no file, no lock file (a read-only open of DuckDB takes a
    shared lock on the file itself). Raises what DuckDB raised once the wait is over."""
    retrying = Retrying(
        retry=retry_if_exception(is_lock_conflict),
        stop=stop_after_delay(wait_seconds),
        wait=wait_random(0, READ_RETRY_SECONDS),
        before_sleep=lambda state: (
            on_wait(
                f"{path} is being written by another process (a publish?); waiting up to "
                f"{wait_seconds:g} s"
            )
            if on_wait is not None and state.attempt_number == 1
            else None
        ),
        reraise=True,
    )
    return retrying(duckdb_offline.connect, str(path), read_only=True)
