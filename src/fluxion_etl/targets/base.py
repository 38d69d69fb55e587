"""The target seam's neutral half: the :class:`Target` protocol and what crosses it.

Both implementations (:mod:`fluxion_etl.targets.duckdb`, :mod:`fluxion_etl.targets.postgres`)
import this module; it imports neither, so the pipeline, ``status`` and ``check`` depend on the
protocol alone. Constants both targets share live here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fluxion_etl.errors import Interrupted, StoreError, TargetUnwritable
from fluxion_etl.freshness import Freshness
from fluxion_etl.ledger import LedgerEntry

#: After a stop (deadline, SIGTERM) the failed stores' ledger rows still deserve a short wait
#: for the target's lock: Fargate's 120 s grace leaves room for it, and the next run would close
#: them anyway. Both targets bound their closing write by it.
CLOSING_LOCK_WAIT_SECONDS = 20.0

#: The snapshot guard's judgement, called inside the publish transaction with the rows the store
#: serves now: returns the ledger entry to write, or raises to keep the previous snapshot.
Vet = Callable[[LedgerEntry, int], LedgerEntry]


@dataclass(frozen=True)
class Publication:
    """One store's snapshot, ready to publish: its ready database, the ledger entry to close and
    the snapshot guard's judgement (:data:`Vet`)."""

    store_id: str
    ready: Path
    entry: LedgerEntry
    vet: Vet | None = None


def publish_each(
    publish: Callable[[Publication], LedgerEntry], batch: Sequence[Publication]
) -> list[LedgerEntry | Exception]:
    """``publish`` each store of ``batch`` in turn; each one's entry, or the error that kept its
    previous snapshot. A stop (Interrupted) ends the batch: the stores not tried get it too."""
    outcomes: list[LedgerEntry | Exception] = []
    for publication in batch:
        try:
            outcomes.append(publish(publication))
        except Interrupted as exc:
            return outcomes + [exc] * (len(batch) - len(outcomes))
        except (StoreError, TargetUnwritable) as exc:
            outcomes.append(exc)
    return outcomes


class Target(Protocol):
    """One target database: run guard, schema, ledger, atomic per-store publish, status."""

    @property
    def lock_held_seconds(self) -> float:
        """Seconds this process held the target's write lock (DuckDB's file lock, or PostgreSQL
        transactions), for the run's metrics."""
        ...

    def describe(self) -> str:
        """What logs and messages call the target (never a credential)."""
        ...

    def storage_version(self) -> str:
        """The target's storage format, for ``status`` and ``check`` (never raises)."""
        ...

    def storage_line(self) -> str:
        """One line about the storage format for ``status`` and ``check``."""
        ...

    def preflight(self) -> None:
        """Configuration checks that need no connection (ConfigError, exit 2)."""
        ...

    def guard(self, run_id: str, store_ids: Sequence[str]) -> AbstractContextManager[object]:
        """Hold the run guard over ``store_ids`` for the run (RunLockedError: exit 4)."""
        ...

    def open_run(self, run_id: str, store_ids: Sequence[str], engine: str) -> int:
        """Migrate the schema and open the run's ledger rows; return stale rows closed."""
        ...

    def served_rows(self) -> dict[str, int]:
        """Rows each store serves now."""
        ...

    def publish(
        self, store_id: str, ready: Path, entry: LedgerEntry, vet: Vet | None = None
    ) -> LedgerEntry:
        """Swap ``store_id``'s snapshot for the ready database's rows and close its ledger row,
        in one transaction; return the entry written."""
        ...

    def publish_batch(self, batch: Sequence[Publication]) -> list[LedgerEntry | Exception]:
        """Publish the stores ready together; each one's outcome, in ``batch``'s order. Every
        store's swap is atomic with its ledger row, and a store that fails keeps its previous
        snapshot without taking the others' with it. DuckDB commits them together (see
        :meth:`fluxion_etl.targets.duckdb.publisher.Publisher.publish_batch`); PostgreSQL one by
        one."""
        ...

    @property
    def gather_seconds(self) -> float:
        """How long the run may wait, once a store is ready, for more stores to publish with it
        (0: publish at once). A target whose cost is per opening (DuckDB's open and checkpoint)
        pays it once for what arrives in this window; the stores' lock bound is unchanged."""
        ...

    def publishing(self) -> AbstractContextManager[object]:
        """A publishing session around the stores that are ready together: their publishes may
        share one connection (each still its own transaction), and the target decides how long
        it may hold its lock before letting readers in (DuckDB: one opening of the file per
        batch, a bounded hold)."""
        ...

    def reclaim(self) -> None:
        """After the run's publishes, make the replaced snapshots' space reusable; never raises
        (a failure is a warning: the data is already published)."""
        ...

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Close failed stores' ledger rows (their snapshots stay as they were)."""
        ...

    def store_status(
        self, on_wait: Callable[[str], None] | None = None
    ) -> list[dict[str, object]] | None:
        """Last run and served snapshot per store; None when nothing was ever published.
        ``on_wait`` hears once that the read waits for a writer (bounded)."""
        ...

    def freshness(self, store_ids: Sequence[str], stale_after_seconds: float) -> Freshness | None:
        """Snapshot ages from the ledger after a run; None (and a warning) if unreadable."""
        ...

    def check(self) -> str:
        """Prove the target is writable (connect, create/insert/delete); raise if not."""
        ...
