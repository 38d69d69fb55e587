"""The snapshot guard: a store's new snapshot replaces the one it serves only if it looks right.

Why: a mistyped warehouse code, a Stellar database being restored, a stock table truncated
mid-sync -- each makes the inventory query return few or no rows, without any error. Published,
such a snapshot wipes the store's stock from the backend while the run reports success. So a
snapshot is *held back* (docs/operations.md) when

* it is empty;
* it has fewer than ``ETL_MAX_SHRINK`` (0.5) times the rows the store serves now -- a store
  with no previous snapshot is not judged by this rule;
* more than ``ETL_MAX_REJECTED`` (0.05) of its fetched rows were rejected (no product code, no
  numeric quantity).

Held back means not published: the store keeps serving its previous rows and fails with
``error_tipo = 'retenido'`` (:class:`~fluxion_etl.errors.SnapshotHeldBack`) and the numbers, so
the run exits 3 (1 if nothing published) and the alert fires like for any failed store.
``--accept-shrink a,b`` / ``ETL_ACCEPT_SHRINK`` (ids or ``all``) publish such a snapshot anyway,
in that run only, and the ledger's ``guardia_aceptada`` says what was accepted.

:func:`judge` is the rule, a pure function. The binding call happens inside the publish transaction,
with the rows the store serves counted in that same transaction, so nothing can change them before
the swap (:meth:`fluxion_etl.targets.duckdb.publisher.Publisher.publish`). Earlier, the worker that
prepared the store judges it with the counts read when the run opened -- only to decide whether to
ask the store's database for the likely cause (:mod:`fluxion_etl.source.warehouses`), which the
message then names: "0 rows where 402 were served; warehouse '9999' is not in MA_DEPOSITO".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

import structlog

from fluxion_etl.config import Settings
from fluxion_etl.errors import (
    ConfigError,
    FluxionError,
    Interrupted,
    SnapshotHeldBack,
    StoreError,
)
from fluxion_etl.ledger import LedgerEntry, QualityCounters
from fluxion_etl.run.fetch import run_isolated
from fluxion_etl.source.engines.base import FetchRequest
from fluxion_etl.source.warehouses import likely_cause, warehouses_of
from fluxion_etl.stores import Store

#: ``ETL_ACCEPT_SHRINK=all``: accept for every store of the run.
ACCEPT_ALL = "all"
log = structlog.get_logger("fluxion_etl.run.guard")


@dataclass(frozen=True)
class Limits:
    """The thresholds (validated to 0..1 by the settings). ``max_shrink = 0`` turns the shrink
    rule off, ``max_rejected = 1`` the rejected-rows rule; an empty snapshot is always held."""

    max_shrink: float = 0.5
    max_rejected: float = 0.05


@dataclass(frozen=True)
class Verdict:
    """What the guard makes of one snapshot."""

    broken: tuple[str, ...]
    """The rules it breaks, in order (``empty``, ``shrink``, ``rejected``); () if it looks right."""
    message: str
    """The numbers behind ``broken`` (one clause per rule), "" when nothing is broken."""
    accepted: bool
    """It breaks a rule, but the operator accepted it for this run."""

    @property
    def publish(self) -> bool:
        return not self.broken or self.accepted

    @property
    def held_back(self) -> bool:
        return not self.publish


def judge(
    *, fetched: int, rejected: int, loaded: int, served: int, limits: Limits, accepted: bool
) -> Verdict:
    """The guard's rule for a snapshot of ``loaded`` rows (``fetched`` by the query, ``rejected``
    by the transform) replacing the ``served`` rows the store serves now (0: no snapshot yet)."""
    broken: list[str] = []
    clauses: list[str] = []
    if loaded == 0:
        broken.append("empty")
        clauses.append(
            f"0 rows where {served:,} were served"
            if served
            else "0 rows (an empty snapshot; the store has none published yet)"
        )
    elif served and loaded < limits.max_shrink * served:
        broken.append("shrink")
        clauses.append(
            f"{loaded:,} rows where {served:,} were served (fewer than "
            f"ETL_MAX_SHRINK={limits.max_shrink:g} of them)"
        )
    if fetched and rejected / fetched > limits.max_rejected:
        broken.append("rejected")
        clauses.append(
            f"{rejected:,} of {fetched:,} fetched rows rejected for no product code or no "
            f"numeric quantity ({rejected / fetched:.1%}, more than "
            f"ETL_MAX_REJECTED={limits.max_rejected:g})"
        )
    return Verdict(tuple(broken), "; ".join(clauses), accepted and bool(broken))


def accepted_stores(ids: Sequence[str], stores: Sequence[Store], source: str) -> frozenset[str]:
    """The store ids ``--accept-shrink`` / ``ETL_ACCEPT_SHRINK`` (``source``) name, checked
    against the run's ``stores``: an id that is not one of them is a configuration error --
    accepting a shrink is deliberate, so a typo must not pass silently."""
    if ACCEPT_ALL in ids:
        return frozenset(store.id for store in stores)
    known = [store.id for store in stores]
    unknown = [store_id for store_id in ids if store_id not in known]
    if unknown:
        raise ConfigError(
            f"{source}: {', '.join(unknown)} not among this run's stores ({', '.join(known)})"
        )
    return frozenset(ids)


@dataclass
class SnapshotGuard:
    """The guard of one run: its limits, the stores whose snapshot is accepted anyway, and the
    rows each store served when the run opened (for the worker's early judgement)."""

    limits: Limits
    accepted: Collection[str] = ()
    """Store ids, or ``all``: ``--accept-shrink`` / ``ETL_ACCEPT_SHRINK``."""
    served_at_start: Mapping[str, int] = field(default_factory=dict)
    run_id: str | None = None

    @classmethod
    def for_run(cls, settings: Settings, run_id: str) -> SnapshotGuard:
        limits = Limits(settings.max_shrink, settings.max_rejected)
        return cls(limits, settings.accept_shrink, run_id=run_id)

    def read_served(self, served_rows: Callable[[], Mapping[str, int]]) -> None:
        """Remember what each store serves as the run opens (``Target.served_rows``).

        Only the early judgement uses it, so a failure (the backend holding the file) costs the
        likely causes in this run's messages, not the run: the binding count is the publish's.
        """
        try:
            self.served_at_start = served_rows()
        except FluxionError as exc:
            log.warning(
                "could not count the rows the stores serve; held-back stores will not say why",
                run_id=self.run_id,
                phase="plan",
                error=str(exc),
            )

    def accepts(self, store_id: str) -> bool:
        return ACCEPT_ALL in self.accepted or store_id in self.accepted

    def verdict(self, store_id: str, counters: QualityCounters, served: int) -> Verdict:
        return judge(
            fetched=counters.extracted,
            rejected=counters.rejected,
            loaded=counters.loaded,
            served=served,
            limits=self.limits,
            accepted=self.accepts(store_id),
        )

    def likely_cause(
        self,
        store: Store,
        request: FetchRequest,
        counters: QualityCounters,
        stop: threading.Event,
    ) -> str | None:
        """Why ``store``'s snapshot looks wrong, from its database; None when it looks right
        (judged with the rows served at the run's start), or when the database cannot say.

        Asked in a child process, like a fetch: a driver that hangs or crashes costs this
        question only, and a stop kills it (``Interrupted`` propagates). Costs one connection
        and two small statements (the warehouse list, stock rows per warehouse), only for a
        snapshot that will probably be held back.
        """
        served = self.served_at_start.get(store.id, 0)
        verdict = self.verdict(store.id, counters, served)
        if verdict.publish:
            return None
        try:
            warehouses = run_isolated(
                warehouses_of,
                (
                    request.where,
                    request.connection,
                    request.credentials,
                    request.connect_timeout_seconds,
                ),
                where=request.where,
                credentials=request.credentials,
                stop=stop,
                doing="asking for its warehouses",
                name=f"fluxion-guard-{store.id}",
            )
        except Interrupted:
            raise
        except StoreError as exc:
            log.warning(
                "could not ask the store why its snapshot looks wrong",
                run_id=self.run_id,
                store=store.id,
                phase="guard",
                error=str(exc),
            )
            return None
        return likely_cause(store.warehouse, warehouses, counters.extracted)

    def vet(
        self, store: Store, counters: QualityCounters, cause: str | None
    ) -> Callable[[LedgerEntry, int], LedgerEntry]:
        """The publish's check (called inside its transaction with the rows the store serves
        now): the ledger entry to write -- noting an accepted snapshot -- or SnapshotHeldBack."""

        def check(entry: LedgerEntry, served: int) -> LedgerEntry:
            verdict = self.verdict(store.id, counters, served)
            if not verdict.broken:
                return entry
            numbers = {
                "run_id": self.run_id,
                "store": store.id,
                "phase": "guard",
                "rules": list(verdict.broken),
                "fetched": counters.extracted,
                "rejected": counters.rejected,
                "rows": counters.loaded,
                "served": served,
                "max_shrink": self.limits.max_shrink,
                "max_rejected": self.limits.max_rejected,
                "cause": cause,
            }
            if verdict.accepted:
                log.warning("snapshot accepted despite the guard", **numbers)
                return replace(entry, guard_note=verdict.message)
            log.error("snapshot held back", **numbers)
            kept = f"it keeps serving its previous {served:,} rows" if served else "none yet"
            raise SnapshotHeldBack(
                f"{store.id}: snapshot held back: {verdict.message}"
                + (f"; {cause}" if cause else "")
                + f". Not published ({kept}); to publish it anyway: "
                f"fluxion-etl run --stores {store.id} --accept-shrink {store.id}"
            )

        return check

