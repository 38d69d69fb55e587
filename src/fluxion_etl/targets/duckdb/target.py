"""The DuckDB target's face on the seam: the file's publish, ledger, run guard and status.

The work itself lives in this package's modules (:mod:`.publisher`, :mod:`.schema`,
:mod:`.runguard`, :mod:`.status`, :mod:`.freshness`); this class puts them behind the
:class:`~fluxion_etl.targets.base.Target` protocol.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import duckdb
import structlog

from fluxion_etl.config import Settings
from fluxion_etl.errors import TargetUnwritable
from fluxion_etl.freshness import Freshness
from fluxion_etl.ledger import LedgerEntry
from fluxion_etl.targets.base import Publication, Vet
from fluxion_etl.targets.duckdb.connect import READ_WAIT_SECONDS, is_lock_conflict, open_read_only
from fluxion_etl.targets.duckdb.freshness import read_freshness
from fluxion_etl.targets.duckdb.path import check_target_path, refuse_non_duckdb
from fluxion_etl.targets.duckdb.publisher import GATHER_SECONDS, Publisher
from fluxion_etl.targets.duckdb.runguard import RunGuard
from fluxion_etl.targets.duckdb.schema import refuse_foreign_tables
from fluxion_etl.targets.duckdb.status import store_status
from fluxion_etl.targets.duckdb.storage import file_storage_version


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DuckDBTarget:
    def __init__(self, writer: Publisher, source: str = "DATABASE_PATH") -> None:
        self.writer = writer
        self.path = writer.path
        #: the setting that named the file (``--db`` or ``DATABASE_PATH``), for its errors
        self.source = source

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        stop: threading.Event | None = None,
        logger: structlog.stdlib.BoundLogger | None = None,
    ) -> DuckDBTarget:
        writer = Publisher(
            settings.database_path,
            settings.lock_wait_seconds,
            stop,
            logger,
            storage_version=settings.duckdb_storage_version,
            timezone=settings.timezone,
        )
        return cls(writer, settings.database_source)

    @property
    def lock_held_seconds(self) -> float:
        return self.writer.lock_held_seconds

    @property
    def gather_seconds(self) -> float:
        return GATHER_SECONDS

    def describe(self) -> str:
        return str(self.path)

    def storage_version(self) -> str:
        """The file's DuckDB storage version: the backend's DuckDB must be able to read it."""
        return file_storage_version(self.path)

    def storage_line(self) -> str:
        return f"target {self.path}: DuckDB storage version {self.storage_version()}"

    def preflight(self) -> None:
        check_target_path(self.path, self.source)

    def guard(self, run_id: str, store_ids: Sequence[str]) -> AbstractContextManager[object]:
        """One run at a time per file: the flock beside it (store_ids do not matter)."""
        return RunGuard(self.path, run_id)

    def open_run(self, run_id: str, store_ids: Sequence[str], engine: str) -> int:
        return self.writer.open_run(run_id, store_ids, engine)

    def served_rows(self) -> dict[str, int]:
        return self.writer.served_rows()

    def publish(
        self, store_id: str, ready: Path, entry: LedgerEntry, vet: Vet | None = None
    ) -> LedgerEntry:
        return self.writer.publish(store_id, ready, entry, vet)

    def publish_batch(self, batch: Sequence[Publication]) -> list[LedgerEntry | Exception]:
        return self.writer.publish_batch(batch)

    def publishing(self) -> AbstractContextManager[object]:
        return self.writer.publishing()

    def reclaim(self) -> None:
        """Nothing to do: DuckDB reuses a replaced snapshot's blocks at its next checkpoint."""

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        self.writer.record(entries)

    def store_status(
        self, on_wait: Callable[[str], None] | None = None
    ) -> list[dict[str, object]] | None:
        if not self.path.exists():
            return None
        refuse_non_duckdb(self.path, self.source)
        try:  # a publish holds the file for about half a second: wait it out, bounded
            con = open_read_only(self.path, on_wait=on_wait)
        except duckdb.IOException as exc:
            reason = first_line(exc)
            if is_lock_conflict(exc):
                reason = f"still written by another process after {READ_WAIT_SECONDS:g} s"
            raise TargetUnwritable(f"cannot open {self.path} read-only: {reason}") from None
        try:
            refuse_foreign_tables(con)  # what run would refuse, status does not misread
            return store_status(con)
        except duckdb.CatalogException:  # no ledger yet: no run recorded anything
            return []
        finally:
            con.close()

    def freshness(self, store_ids: Sequence[str], stale_after_seconds: float) -> Freshness | None:
        return read_freshness(self.path, store_ids, stale_after_seconds, self.writer.stop)

    def check(self) -> str:
        """What ``run`` would refuse before writing: the directory (it must exist and take new
        files), a file that is not DuckDB's (ConfigError), and, in an existing file opened
        read-only, a table fluxion would write but cannot (ConfigError: a foreign
        ``etl_ejecuciones``, an ``inventario_raw`` it cannot adopt). Never creates the file."""
        self.preflight()
        directory = self.path.parent
        if not os.access(directory, os.W_OK | os.X_OK):
            raise TargetUnwritable(f"cannot write in {directory} (the target's directory)")
        if not self.path.exists():
            return f"{self.path}: directory writable (the first run creates the file)"
        try:
            con = open_read_only(self.path)
        except duckdb.Error as exc:
            reason = first_line(exc)
            raise TargetUnwritable(f"cannot open {self.path} read-only: {reason}") from None
        try:
            refuse_foreign_tables(con)
        finally:
            con.close()
        return f"{self.path}: directory writable, tables fluxion can write"
