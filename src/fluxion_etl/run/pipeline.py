"""The run: plan -> extract (parallel, retried) -> stage -> transform -> guard -> publish -> ledger.

Worker threads fetch, stage and transform stores concurrently (each store is bound by its own
network link; the fetch itself runs in a child process, see run/fetch.py; the transforms
share one DuckDB); the main thread publishes the stores as soon as they are ready, the stores
ready together as one batch of the target (on DuckDB: one opening of the file, one short write
transaction). A failing store is recorded and the others carry on. A deadline or a stop
request (SIGTERM) kills the fetches and cuts lock waits short; what is not published by then
keeps its previous snapshot and is recorded as ``timeout`` / ``interrumpido``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import structlog
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential_jitter,
)

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials, redact
from fluxion_etl.errors import (
    DataError,
    DeadlineExceeded,
    FluxionError,
    Interrupted,
    PublishLockTimeout,
    SnapshotHeldBack,
    StoreError,
    TargetUnwritable,
)
from fluxion_etl.ledger import LedgerEntry, QualityCounters, State, utcnow
from fluxion_etl.progress import fetch_progress
from fluxion_etl.run.budget import plan_fetches
from fluxion_etl.run.fetch import fetch_to_staging
from fluxion_etl.run.forkserver import start_fork_server
from fluxion_etl.run.guard import SnapshotGuard
from fluxion_etl.run.staging_area import StagedFile, StagingArea, local_disk_error
from fluxion_etl.run.transform import Transformer
from fluxion_etl.source.engines.base import FetchRequest, RefetchNeeded
from fluxion_etl.source.query import load_query
from fluxion_etl.stores import Store
from fluxion_etl.targets import open_target
from fluxion_etl.targets.base import Publication, Target

log = structlog.get_logger("fluxion_etl.run.pipeline")


def new_run_id() -> str:
    """Sortable and unique: ``20261127T221500Z-3f9a1c``."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class RunControl:
    """How the outside world stops a run: the deadline timer, or a signal handler calling ``stop``.

    Everything that waits (the fetch processes, which are killed, retry back-offs, the DuckDB
    lock wait, the main loop) watches the one ``stop_event``, so a stop takes effect within a
    poll interval wherever the run is. ``reason`` says why: ``timeout`` or the signal's name.
    """

    stop_event: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None
    _timer: threading.Timer | None = field(default=None, repr=False)

    def sleep(self, seconds: float) -> None:
        """A retry back-off that a stop request cuts short."""
        self.stop_event.wait(seconds)

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.stop_event.set()

    def arm_deadline(self, seconds: float) -> None:
        """Stop the run with reason ``timeout`` after ``seconds`` (ETL_TIMEOUT_SECONDS).

        A timer rather than a check in the main loop: the deadline must also cut a publish that
        is waiting for the DuckDB lock, which runs on the main thread.
        """
        self._timer = threading.Timer(seconds, self.stop, args=("timeout",))
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


@dataclass
class _Attempts:
    """How many times a store's fetch was started (the ledger's ``intentos``)."""

    count: int = 0


@dataclass(frozen=True)
class Prepared:
    """A store fetched, staged and transformed, waiting for its publish."""

    store: Store
    ready: Path
    rows: Path
    counters: QualityCounters
    started: dt.datetime
    attempts: int
    cause: str | None = None
    """What the store's database says about a snapshot the guard will probably hold back."""


@dataclass
class RunResult:
    run_id: str
    entries: list[LedgerEntry]
    seconds: float
    lock_held_seconds: float

    @property
    def published(self) -> list[LedgerEntry]:
        return [entry for entry in self.entries if entry.state == "exitoso"]

    @property
    def failed(self) -> list[LedgerEntry]:
        return [entry for entry in self.entries if entry.state != "exitoso"]

    @property
    def held_back(self) -> list[LedgerEntry]:
        """Failed stores whose snapshot the guard held back (they serve their previous rows)."""
        return [e for e in self.failed if e.error_tipo == SnapshotHeldBack.error_tipo]

    @property
    def rows_published(self) -> int:
        return sum(entry.counters.loaded for entry in self.published if entry.counters)

    @property
    def ran(self) -> bool:
        """Published every store, or some (partial). A store down for days must not make the
        dead-man alarm (RunSucceeded) or Sentry's check-in call the whole run missed; the exit
        code 3 and the failed stores carry the rest."""
        return bool(self.published) or not self.failed

    @property
    def exit_code(self) -> int:
        """0 all published, 3 partial, 1 nothing published."""
        if not self.failed:
            return 0
        return 3 if self.published else 1


def run_pipeline(
    settings: Settings,
    stores: Sequence[Store],
    credentials: Credentials | None,
    *,
    run_id: str | None = None,
    control: RunControl | None = None,
) -> RunResult:
    """Run the ETL for ``stores`` under the single-run guard; never raises for a store failure.

    Each fetch runs in a child process (run/fetch.py), so a program that calls this must
    keep its entry point under ``if __name__ == "__main__":`` (multiprocessing re-imports the main
    script in the child); ``fluxion-etl`` and ``python -m fluxion_etl`` do.
    """
    run_id = run_id or new_run_id()
    control = control or RunControl()
    query = load_query(settings.query_file)
    target = open_target(settings, control.stop_event, log.bind(run_id=run_id), stores)
    with target.guard(run_id, [store.id for store in stores]):
        return _Run(settings, stores, credentials, run_id, control, query, target).execute()


class _Run:
    def __init__(
        self,
        settings: Settings,
        stores: Sequence[Store],
        credentials: Credentials | None,
        run_id: str,
        control: RunControl,
        query: str,
        target: Target,
    ) -> None:
        self.settings = settings
        self.stores = list(stores)
        self.credentials = credentials
        self.run_id = run_id
        self.control = control
        self.query = query
        self.plan = plan_fetches(settings, len(self.stores))
        self.guard = SnapshotGuard.for_run(settings, run_id)
        self.log = log.bind(run_id=run_id)
        self.target = target
        #: each store's outcome once decided (a published store's row is written with it)
        self._outcomes: dict[str, LedgerEntry] = {}

    def execute(self) -> RunResult:
        started = time.monotonic()
        self.control.arm_deadline(self.settings.timeout_seconds)
        start_fork_server()
        self.log.info(
            "ETL started",
            phase="plan",
            stores=[store.id for store in self.stores],
            engine=self.settings.engine,
            workers=self.plan.workers,
            fetch_buffer_mib=round(self.plan.buffer_bytes / 2**20, 1),
            fetch_mib=round(self.plan.fetch_bytes / 2**20, 1),
            workers_reason=self.plan.reason,
            database=self.target.describe(),
            **self.settings.context,
        )
        inactive = [store.id for store in self.stores if not store.active]
        if inactive:  # named by --stores / ETL_TIENDAS: run, but not without a word
            self.log.warning(
                "running inactive stores because the run names them",
                phase="plan",
                stores=inactive,
                reason="--stores / ETL_TIENDAS named them; every other run skips them "
                "(active = false in the stores file)",
            )
        stale = self.target.open_run(
            self.run_id, [store.id for store in self.stores], self.settings.engine
        )
        if stale:
            self.log.warning(
                "closed ledger rows left open by a killed run", phase="plan", rows=stale
            )
        entries: list[LedgerEntry] = []
        try:
            self.guard.read_served(self.target.served_rows)
            staging = self._staging_area()
            try:
                with Transformer(staging.path) as transformer:
                    entries = self._extract_and_publish(staging, transformer)
                self.target.reclaim()
            finally:
                staging.cleanup()
        except BaseException as exc:  # the ledger is open: close its rows with the true cause
            where = str(self.settings.staging_dir or tempfile.gettempdir())
            error = None if isinstance(exc, StoreError) else local_disk_error(where, exc)
            self._close_unfinished(error or exc)
            if error is not None:
                raise error from None
            raise
        finally:
            self.control.disarm()
        return RunResult(
            run_id=self.run_id,
            entries=entries,
            seconds=time.monotonic() - started,
            lock_held_seconds=self.target.lock_held_seconds,
        )

    def _staging_area(self) -> StagingArea:
        """The run's staging directory; a local disk that refuses it is a LocalDiskError."""
        try:
            return StagingArea(self.settings.staging_dir, self.run_id)
        except OSError as exc:
            where = str(self.settings.staging_dir or tempfile.gettempdir())
            raise local_disk_error(where, exc, any_os_error=True) or exc from None

    def _close_unfinished(self, exc: BaseException) -> None:
        """After a failure that ends the whole run (``exc``), close the ledger rows it leaves
        open, so none stays ``en_proceso``: a store with an outcome gets it, the others get
        ``exc`` as their cause (a store error's own ``error_tipo``; anything else: the run was
        interrupted by it). Not logged per store: the CLI's one ``ETL failed`` line says why.
        Skipped when the cause is the target itself refusing (nothing could be written): the
        next run closes those rows as ``interrumpido``."""
        if isinstance(exc, TargetUnwritable | PublishLockTimeout):
            return
        message = redact(f"{exc}" if isinstance(exc, FluxionError) else repr(exc), self.credentials)
        now = utcnow()
        closing: list[LedgerEntry] = []
        for store in self.stores:
            entry = self._outcomes.get(store.id)
            if entry is not None and entry.state == "exitoso":
                continue  # written with its snapshot
            if entry is None:
                stored = isinstance(exc, StoreError) and not isinstance(exc, Interrupted)
                entry = LedgerEntry(
                    run_id=self.run_id,
                    store_id=store.id,
                    state="fallido" if stored else "interrumpido",
                    started=now,
                    finished=now,
                    attempts=0,
                    engine=self.settings.engine,
                    error_tipo=exc.error_tipo if isinstance(exc, StoreError) else "interrumpido",
                    error_message=(
                        f"{store.id}: {message}"
                        if stored
                        else f"{store.id}: the run failed before the store finished: {message}"
                    ),
                )
            closing.append(entry)
        try:
            self.target.record(closing)
        except Exception as error:  # the CLI reports the run's failure; the next run closes them
            self.log.warning(
                "could not close the run's ledger rows; the next run closes them",
                phase="ledger",
                error=redact(str(error), self.credentials),
            )

    def _extract_and_publish(
        self, staging: StagingArea, transformer: Transformer
    ) -> list[LedgerEntry]:
        entries = self._outcomes
        failures: list[LedgerEntry] = []
        pool = ThreadPoolExecutor(
            max_workers=self.plan.workers,
            thread_name_prefix="fluxion-store",
        )
        futures: dict[Future[Prepared | LedgerEntry], Store] = {
            pool.submit(self._prepare, store, staging, transformer): store for store in self.stores
        }
        pending = set(futures)
        try:
            while pending and not self.control.stop_event.is_set():
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                if done:
                    gathered, pending = self._gathered(pending)
                    done |= gathered
                # The stores ready together are published together: one opening of the target
                # (its lock is not paid per store), as few transactions as the target's bound
                # on holding it allows.
                with self.target.publishing():
                    while done:
                        prepared = [future.result() for future in done]
                        ready = [each for each in prepared if isinstance(each, Prepared)]
                        closed = [each for each in prepared if isinstance(each, LedgerEntry)]
                        for entry in closed + self._publish(ready):
                            entries[entry.store_id] = entry
                            if entry.state != "exitoso":
                                failures.append(entry)
                        done, pending = self._ready_since(pending)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        # Stopped (or done): queued stores never start, and running ones see the stop within a
        # poll interval (their fetch process is killed) and return their own entry. Waiting for
        # them costs that interval; it keeps their real start and attempts in the ledger, logs
        # each failure once, and nothing after the run's last line.
        pool.shutdown(wait=True, cancel_futures=True)
        for future in pending:
            entry = self._unpublished(futures[future], future)
            entries[entry.store_id] = entry
            failures.append(entry)
        self._record_failures(failures)
        return [entries[store.id] for store in self.stores]

    def _gathered(
        self, pending: set[Future[Prepared | LedgerEntry]]
    ) -> tuple[set[Future[Prepared | LedgerEntry]], set[Future[Prepared | LedgerEntry]]]:
        """Once a store is ready: the stores that become ready within the target's gather
        window (``Target.gather_seconds``) too, to be published with it, and those still
        pending. A stop ends the window at once."""
        window = self.target.gather_seconds
        done: set[Future[Prepared | LedgerEntry]] = set()
        deadline = time.monotonic() + window
        while pending and not self.control.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more, pending = wait(pending, timeout=min(left, 0.2), return_when=ALL_COMPLETED)
            done |= more
        return done, pending

    def _ready_since(
        self, pending: set[Future[Prepared | LedgerEntry]]
    ) -> tuple[set[Future[Prepared | LedgerEntry]], set[Future[Prepared | LedgerEntry]]]:
        """The stores that became ready while the last ones were published (none once the run
        is stopped: they are left to the stop), and those still pending."""
        if self.control.stop_event.is_set():
            return set(), pending
        done = {future for future in pending if future.done()}
        return done, pending - done

    def _unpublished(self, store: Store, future: Future[Prepared | LedgerEntry]) -> LedgerEntry:
        """The entry of a store the stop caught: never started, stopped in its worker (which
        recorded the entry), or prepared but not published."""
        if future.cancelled():
            return self._stopped_entry(store)
        outcome = future.result()
        if isinstance(outcome, Prepared):
            outcome.ready.unlink(missing_ok=True)
            outcome.rows.unlink(missing_ok=True)
            return self._stopped_entry(store, outcome.started, outcome.attempts)
        return outcome

    def _prepare(
        self, store: Store, staging: StagingArea, transformer: Transformer
    ) -> Prepared | LedgerEntry:
        """Fetch, stage and transform one store (in a worker). Failures become ledger entries."""
        slog = self.log.bind(store=store.id)
        started = utcnow()
        attempts = _Attempts()
        try:
            request = FetchRequest.for_store(
                store, self.settings, self.credentials, self.query, self.plan.buffer_bytes
            )
            extract_started = time.monotonic()
            staged = self._fetch_and_stage(
                request,
                staging.file_for(store.id, "staged"),
                slog,
                attempts,
                partial(fetch_progress.report, store.id),
            )
            slog.info(
                "extract staged",
                phase="stage",
                rows=staged.rows,
                batches=staged.batches,
                seconds=round(time.monotonic() - extract_started, 3),
            )
            transform_started = time.monotonic()
            transformed = transformer.transform(
                staged,
                staging.file_for(store.id, "ready"),
                store,
                self.run_id,
                started,
                thresholds=store.thresholds(self.settings.stock_thresholds),
                timezone=self.settings.timezone,
            )
            slog.info(
                "transformed",
                phase="transform",
                rows=transformed.counters.loaded,
                seconds=round(time.monotonic() - transform_started, 3),
                duplicates=transformed.counters.duplicates,
                rejected=transformed.counters.rejected,
                negative_stock=transformed.counters.negative_stock,
            )
            cause = self.guard.likely_cause(
                store, request, transformed.counters, self.control.stop_event
            )
            return Prepared(
                store,
                transformed.path,
                transformed.rows,
                transformed.counters,
                started,
                attempts.count,
                cause,
            )
        except Interrupted:  # stopped by the deadline or a signal: say which
            return self._stopped_entry(store, started, attempts.count)
        except StoreError as exc:
            return self._failed_entry(store, started, attempts.count, exc)
        except Exception as exc:  # a bug or unexpected data must not take the other stores down
            error = local_disk_error(store.label, exc) or DataError(
                f"{store.label}: {type(exc).__name__}: {redact(str(exc), self.credentials)}"
            )
            slog.exception("unexpected error while preparing the store", phase="transform")
            return self._failed_entry(store, started, attempts.count, error)

    def _fetch_and_stage(
        self,
        request: FetchRequest,
        path: Path,
        slog: structlog.stdlib.BoundLogger,
        attempts: _Attempts,
        on_rows: Callable[[int], None],
    ) -> StagedFile:
        """Fetch the store into the staged file ``path``, from scratch on every attempt.

        Transient errors (VPN reset, timeout, deadlock victim) are retried with jittered
        exponential back-off, at most ETL_MAX_RETRIES attempts, cut short by a stop request. Data
        that does not fit the fetch settings (RefetchNeeded) is fetched again with the wider
        settings the engine asks for; that does not count against the retries, and terminates
        because each refetch only widens a bounded setting. ``on_rows`` hears the rows fetched
        so far by the current attempt (for the live view).
        """
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, StoreError) and exc.transient),
            stop=stop_after_attempt(self.settings.max_retries)
            | stop_when_event_set(self.control.stop_event),
            wait=wait_exponential_jitter(initial=1.0, max=30.0, jitter=1.0),
            sleep=self.control.sleep,
            before_sleep=lambda state: slog.warning(
                "transient error; retrying the store from scratch",
                phase="extract",
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else None,
            ),
            reraise=True,
        )
        while True:
            try:
                for attempt in retrying:
                    with attempt:
                        if self.control.stop_event.is_set():  # no fetch starts after a stop
                            raise Interrupted(f"{request.where}: run stopped before the fetch")
                        attempts.count += 1
                        slog.info(
                            "extract started",
                            phase="extract",
                            attempt=attempts.count,
                            max_attempts=self.settings.max_retries,
                        )
                        return fetch_to_staging(
                            self.settings.engine,
                            request,
                            path,
                            self.control.stop_event,
                            on_rows,
                        )
            except RefetchNeeded as exc:
                slog.warning(
                    "fetching the store again with wider settings", phase="extract", reason=str(exc)
                )
                request = exc.request

    def _publish(self, ready: list[Prepared]) -> list[LedgerEntry]:
        """Publish the stores ready together (one batch of the target); their ledger entries."""
        if not ready:
            return []
        publications = [
            Publication(
                prepared.store.id,
                prepared.ready,
                LedgerEntry(
                    run_id=self.run_id,
                    store_id=prepared.store.id,
                    state="exitoso",
                    started=prepared.started,
                    finished=utcnow(),
                    attempts=prepared.attempts,
                    engine=self.settings.engine,
                    counters=prepared.counters,
                ),
                self.guard.vet(prepared.store, prepared.counters, prepared.cause),
            )
            for prepared in ready
        ]
        publish_started = time.monotonic()
        try:
            outcomes = self.target.publish_batch(publications)
        finally:  # published or not, the stores' files are done with: free the disk now
            for prepared in ready:
                prepared.ready.unlink(missing_ok=True)
                prepared.rows.unlink(missing_ok=True)
        # each store's share of the batch's time (what the benchmarks add up as publishing)
        seconds = (time.monotonic() - publish_started) / len(ready)
        return [
            self._published(prepared, outcome, seconds, len(ready))
            for prepared, outcome in zip(ready, outcomes, strict=True)
        ]

    def _published(
        self, prepared: Prepared, outcome: LedgerEntry | Exception, seconds: float, batch: int
    ) -> LedgerEntry:
        """The ledger entry of a store the target published, or of the error that kept its
        previous snapshot."""
        store = prepared.store
        if isinstance(outcome, Interrupted):  # the deadline or a signal cut the lock wait
            return self._stopped_entry(store, prepared.started, prepared.attempts)
        if isinstance(outcome, SnapshotHeldBack):  # what was fetched goes to the ledger
            counters = replace(prepared.counters, loaded=0)
            return self._failed_entry(
                store, prepared.started, prepared.attempts, outcome, counters, phase="publish"
            )
        if isinstance(outcome, StoreError):
            return self._failed_entry(
                store, prepared.started, prepared.attempts, outcome, phase="publish"
            )
        if isinstance(outcome, Exception):  # the target's own error: its previous snapshot stays
            error = DataError(f"{store.id}: publish failed: {type(outcome).__name__}: {outcome}")
            return self._failed_entry(
                store, prepared.started, prepared.attempts, error, phase="publish"
            )
        self.log.info(
            "store published",
            store=store.id,
            phase="publish",
            rows=prepared.counters.loaded,
            seconds=round(seconds, 3),
            batch=batch,
            total_seconds=round(outcome.seconds, 3),
        )
        return outcome

    def _stopped_entry(
        self, store: Store, started: dt.datetime | None = None, attempts: int = 0
    ) -> LedgerEntry:
        error: StoreError
        if self.control.reason == "timeout":
            error = DeadlineExceeded(
                f"{store.id}: not finished within ETL_TIMEOUT_SECONDS="
                f"{self.settings.timeout_seconds:g}"
            )
        else:
            error = Interrupted(f"{store.id}: run stopped ({self.control.reason or 'signal'})")
        return self._failed_entry(store, started, attempts, error)

    def _failed_entry(
        self,
        store: Store,
        started: dt.datetime | None,
        attempts: int,
        exc: StoreError,
        counters: QualityCounters | None = None,
        *,
        phase: str = "extract",
    ) -> LedgerEntry:
        message = redact(str(exc), self.credentials)
        now = utcnow()
        state: State = "interrumpido" if isinstance(exc, Interrupted) else "fallido"
        entry = LedgerEntry(
            run_id=self.run_id,
            store_id=store.id,
            state=state,
            started=started or now,
            finished=now,
            attempts=attempts,
            engine=self.settings.engine,
            counters=counters,
            error_tipo=exc.error_tipo,
            error_message=message,
        )
        self.log.error(
            "store failed",
            store=store.id,
            phase=phase,
            error_tipo=exc.error_tipo,
            error=message,
            attempts=attempts,
            seconds=round(entry.seconds, 3),
        )
        return entry

    def _record_failures(self, failures: list[LedgerEntry]) -> None:
        """Close the failed stores' ledger rows in one transaction (their data is untouched)."""
        if not failures:
            return
        try:
            self.target.record(failures)
        except FluxionError as exc:
            self.log.error(
                "could not record failed stores in the ledger; the next run closes them",
                phase="ledger",
                error=str(exc),
            )
