"""The soak's faults: one per run, drawn at random, each applied to the real CLI from outside.

Every fault is something production does to a run: a store's VPN down, a link reset or stalled
mid-fetch (the one link proxy, :mod:`fluxion_harness.linkproxy`), the store's server ending the
session (``pg_terminate_backend``; on SQL Server ``KILL``, a restart or a failover), the web
backend holding the DuckDB file read-write or read-only, Fargate's SIGTERM, a SIGKILL at any
moment or inside a publish, the run's deadline, a store's stock table emptied. An
:class:`Injection` changes what the run is started with (:meth:`Injection.plan`), acts while it
runs (:meth:`Injection.during`, on a thread of the soak) and cleans up (:meth:`Injection.close`).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_harness.linkproxy import FaultyProxy
from fluxion_harness.run_process import RunProcess
from fluxion_harness.soak_chain import APPLICATION_NAME, Chain, SoakStore, closed_port
from fluxion_harness.soak_target import (
    DUCKDB_FAULTS,
    ETL_APPLICATION_NAME,
    POSTGRES_FAULTS,
    DuckDBSoakTarget,
    PostgresSoakTarget,
    SoakTarget,
)

FAULTS = tuple(dict.fromkeys((*DUCKDB_FAULTS, *POSTGRES_FAULTS)))
"""Every fault kind, by the name ``--faults`` takes (each target has its own subset:
``SoakTarget.faults``). ``none`` is a run without a fault."""

#: holds the DuckDB file (argv[1]) read-write or read-only (argv[3] = "ro") for argv[2] seconds
HOLDER = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == 'ro')\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


@dataclass
class SoakContext:
    """What the faults need to know about the soak."""

    chain: Chain
    target: SoakTarget
    lock_wait_seconds: float
    #: a fault-free run's duration, measured on the soak's first run
    typical_seconds: float
    rng: random.Random


@dataclass
class Plan:
    """How a fault changes the run before it starts."""

    overrides: dict[str, tuple[str, int]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    emptied: str | None = None
    locked_out: bool = False
    """The fault makes another run hold a store: the run must exit 4."""


class Injection:
    """One fault applied to one run (the base class is the run without a fault)."""

    name = "none"

    def __init__(self, context: SoakContext) -> None:
        self.context = context
        self.rng = context.rng
        self.description = "no fault"
        self.victim: SoakStore | None = None

    def _pick_victim(self) -> SoakStore:
        self.victim = self.rng.choice(self.context.chain.stores)
        return self.victim

    def plan(self) -> Plan:
        return Plan()

    def arm(self) -> None:
        """Set up, once the stores' stock is written, what must be in place before the start."""

    def during(self, run: RunProcess) -> None:
        """Act on the running CLI; returns when done (or when the run has ended)."""

    def close(self) -> None:
        """Undo whatever the fault set up (also after a failed run)."""


class StoreDown(Injection):
    name = "store_down"

    def plan(self) -> Plan:
        victim = self._pick_victim()
        port = closed_port()
        self.description = f"{victim.id} down (closed port 127.0.0.1:{port})"
        return Plan(overrides={victim.id: ("127.0.0.1", port)})


class LinkFault(Injection):
    """A reset (both ends cut) or a stall (half-open, only the deadline ends it) mid-fetch."""

    def __init__(self, context: SoakContext, fault: str) -> None:
        super().__init__(context)
        self.fault = fault
        self.name = f"link_{fault}"
        self.proxy: FaultyProxy | None = None

    def plan(self) -> Plan:
        victim = self._pick_victim()
        server = self.context.chain.server
        # mid-fetch: a published row costs ~250 bytes on the wire with psqlODBC
        after = self.rng.randint(2_000, max(3_000, 200 * len(victim.base)))
        self.proxy = FaultyProxy(
            (server.host, server.port),
            "reset" if self.fault == "reset" else "stall",
            after_bytes=after,
            spoil=1,
        ).__enter__()
        self.description = f"{victim.id} link {self.fault} after {after:,} bytes"
        return Plan(overrides={victim.id: ("127.0.0.1", self.proxy.port)})

    def close(self) -> None:
        if self.proxy is not None:
            self.description += f" (server sent {self.proxy.server_bytes:,} bytes)"
            self.proxy.__exit__()
            self.proxy = None


class SessionKilled(Injection):
    """The store's server ends the ETL's session while its inventory query runs.

    The soak holds ``ACCESS EXCLUSIVE`` on the store's stock table so the query is certainly
    running (blocked in the server) when its session is terminated; then lets go.
    """

    name = "session_killed"

    def __init__(self, context: SoakContext) -> None:
        super().__init__(context)
        self.blocker: Any = None

    def plan(self) -> Plan:
        victim = self._pick_victim()
        self.description = f"{victim.id} session terminated by the server mid-query"
        return Plan()

    def arm(self) -> None:
        assert self.victim is not None
        self.blocker = self.context.chain.server.connect(
            self.victim.database, application_name=APPLICATION_NAME
        )
        with self.blocker.cursor() as cur:
            cur.execute("LOCK TABLE ma_depoprod IN ACCESS EXCLUSIVE MODE")

    def during(self, run: RunProcess) -> None:
        assert self.victim is not None
        ends = time.monotonic() + 3 * self.context.typical_seconds + 30
        killer = self.context.chain.server.connect(
            self.victim.database, application_name=APPLICATION_NAME
        )
        killer.autocommit = True
        try:
            with killer.cursor() as cur:
                while run.running and time.monotonic() < ends:
                    cur.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND application_name <> %s AND wait_event_type = 'Lock'",
                        (APPLICATION_NAME,),
                    )
                    if cur.fetchall():
                        return
                    time.sleep(0.05)
                self.description += " (not applied: the query never reached the server)"
        finally:
            killer.close()
            self._release()

    def _release(self) -> None:
        if self.blocker is not None:
            self.blocker.rollback()
            self.blocker.close()
            self.blocker = None

    def close(self) -> None:
        self._release()


class Holder(Injection):
    """Another process (the backend) holds the DuckDB file for a while, from a random moment."""

    def __init__(self, context: SoakContext, read_only: bool) -> None:
        super().__init__(context)
        self.read_only = read_only
        self.name = "reader_holds" if read_only else "writer_holds"
        self.process: subprocess.Popen[str] | None = None

    def during(self, run: RunProcess) -> None:
        start = self.rng.uniform(0, self.context.typical_seconds)
        hold = self.rng.uniform(0.3, 1.6) * self.context.lock_wait_seconds
        mode = "read-only" if self.read_only else "read-write"
        self.description = f"file held {mode} for {hold:.1f} s from {start:.1f} s"
        if not run.sleep(start):
            self.description += " (run over first)"
            return
        target = self.context.target
        assert isinstance(target, DuckDBSoakTarget), "a file-holding fault on a file target only"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOLDER,
                str(target.path),
                str(hold),
                "ro" if self.read_only else "rw",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.process.wait()

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class Kill(Injection):
    """SIGTERM or SIGKILL at a random moment of the run."""

    def __init__(self, context: SoakContext, sig: signal.Signals) -> None:
        super().__init__(context)
        self.sig = sig
        self.name = sig.name.lower()

    def during(self, run: RunProcess) -> None:
        moment = self.rng.uniform(0, 1.1 * self.context.typical_seconds)
        self.description = f"{self.sig.name} at {moment:.2f} s"
        if run.sleep(moment):
            run.signal(self.sig)
        else:
            self.description += " (run over first)"


class KillInPublish(Injection):
    """SIGKILL in the publish window: just after a random store was transformed (its publish
    starts within the main loop's poll interval and lasts tens of milliseconds)."""

    name = "sigkill_publish"

    def during(self, run: RunProcess) -> None:
        nth = self.rng.randint(1, len(self.context.chain.stores))
        delay = self.rng.uniform(0.0, 0.25)
        self.description = f"SIGKILL {delay * 1000:.0f} ms after the store #{nth} was transformed"
        if run.wait_for_events("transformed", nth) and run.sleep(delay):
            run.signal(signal.SIGKILL)
        else:
            self.description += " (run over first)"


class Deadline(Injection):
    name = "deadline"

    def plan(self) -> Plan:
        seconds = self.rng.uniform(1.0, max(1.5, self.context.typical_seconds))
        self.description = f"ETL_TIMEOUT_SECONDS={seconds:.1f}"
        return Plan(env={"ETL_TIMEOUT_SECONDS": f"{seconds:.1f}"})


class Emptied(Injection):
    name = "emptied"

    def plan(self) -> Plan:
        victim = self._pick_victim()
        self.description = f"{victim.id} stock table emptied"
        return Plan(emptied=victim.id)


def _pg_target(context: SoakContext) -> PostgresSoakTarget:
    target = context.target
    assert isinstance(target, PostgresSoakTarget), "a PostgreSQL fault on a PostgreSQL target only"
    return target


class TargetSessionKilled(Injection):
    """The target server ends the ETL's publishing session (an RDS fail-over, a DBA's
    ``pg_terminate_backend``) in the middle of a store's publish transaction.

    To be certainly mid-publish, the soak holds the victim's ledger row of this run
    (``SELECT ... FOR UPDATE``): the publish deletes and COPYs the store's rows and then waits on
    that row, its transaction open; the waiting session is terminated, then the row let go. The
    store must fail (``conexion``) with its previous snapshot intact, and the run go on.
    """

    name = "target_session_killed"

    def plan(self) -> Plan:
        victim = self._pick_victim()
        self.description = f"{victim.id}: target session terminated mid-publish"
        return Plan()

    def during(self, run: RunProcess) -> None:
        assert self.victim is not None
        target = _pg_target(self.context)
        ends = time.monotonic() + 3 * self.context.typical_seconds + 30
        holder = target.connect()
        holder.autocommit = False
        try:
            held = False
            while run.running and time.monotonic() < ends and not held:
                if run.run_id is not None:
                    held = bool(
                        holder.execute(
                            "SELECT 1 FROM etl_ejecuciones WHERE run_id = %s AND ubicacion_id = %s"
                            " AND estado = 'en_proceso' FOR UPDATE",
                            [run.run_id, self.victim.id],
                        ).fetchall()
                    )
                    if not held:
                        holder.rollback()
                if not held:
                    time.sleep(0.02)
            while held and run.running and time.monotonic() < ends:
                with target.connect() as killer:
                    terminated = killer.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND application_name = %s"
                        " AND wait_event_type = 'Lock'",
                        [ETL_APPLICATION_NAME],
                    ).fetchall()
                if terminated:
                    return
                time.sleep(0.02)
            self.description += " (not applied: the store's publish never came)"
        finally:
            holder.rollback()
            holder.close()


class TargetLockHeld(Injection):
    """Another session holds ``SHARE`` on the published table (``inventario_raw``, or
    ``inventario_actual`` in that layout) for a while, from a random moment
    (as a non-concurrent ``CREATE INDEX`` would): it conflicts with a publish's ``DELETE`` and
    ``COPY`` but not with a reader's ``SELECT``. Publishes wait up to ``lock_timeout``
    (``ETL_LOCK_WAIT_SECONDS``), then fail ``bloqueo`` with the previous snapshot intact."""

    name = "target_lock_held"

    def during(self, run: RunProcess) -> None:
        start = self.rng.uniform(0, self.context.typical_seconds)
        hold = self.rng.uniform(0.3, 1.6) * self.context.lock_wait_seconds
        target = _pg_target(self.context)
        table = target.published_table
        self.description = f"{table} locked SHARE for {hold:.1f} s from {start:.1f} s"
        if not run.sleep(start):
            self.description += " (run over first)"
            return
        with target.connect() as con, con.transaction():
            lock = sql.SQL("LOCK TABLE {} IN SHARE MODE")
            con.execute(lock.format(sql.Identifier(target.schema, table)))
            run.sleep(hold)


class TargetStoreLocked(Injection):
    """Another run (the real run guard, taken by the soak) holds one of the stores: the run
    must refuse to start, exit 4, and write nothing."""

    name = "target_store_locked"

    def __init__(self, context: SoakContext) -> None:
        super().__init__(context)
        self.guard: AbstractContextManager[object] | None = None

    def plan(self) -> Plan:
        victim = self._pick_victim()
        self.description = f"another run holds {victim.id} (advisory lock)"
        return Plan(locked_out=True)

    def arm(self) -> None:
        assert self.victim is not None
        target = _pg_target(self.context)
        other = PostgresTarget(target.login, target.schema, self.context.lock_wait_seconds)
        self.guard = other.guard("soak-other-run", [self.victim.id])
        self.guard.__enter__()

    def close(self) -> None:
        if self.guard is not None:
            self.guard.__exit__(None, None, None)
            self.guard = None


class TargetDown(Injection):
    """The target server unreachable for the whole run (a closed port on 127.0.0.1): the run
    fails in one line, exit 1, and nothing changes on the real target."""

    name = "target_down"

    def plan(self) -> Plan:
        target = _pg_target(self.context)
        port = closed_port()
        user = target.login.params.get("user", "fluxion")
        self.description = f"target unreachable (closed port 127.0.0.1:{port})"
        return Plan(
            env={"DATABASE_URL": f"postgresql://{user}@127.0.0.1:{port}/nowhere?sslmode=disable"}
        )


def injection(kind: str, context: SoakContext) -> Injection:
    """The fault ``kind`` (one of :data:`FAULTS`) for one run."""
    makers: dict[str, Callable[[], Injection]] = {
        "none": lambda: Injection(context),
        "store_down": lambda: StoreDown(context),
        "link_reset": lambda: LinkFault(context, "reset"),
        "link_stall": lambda: LinkFault(context, "stall"),
        "session_killed": lambda: SessionKilled(context),
        "writer_holds": lambda: Holder(context, read_only=False),
        "reader_holds": lambda: Holder(context, read_only=True),
        "sigterm": lambda: Kill(context, signal.SIGTERM),
        "sigkill": lambda: Kill(context, signal.SIGKILL),
        "sigkill_publish": lambda: KillInPublish(context),
        "deadline": lambda: Deadline(context),
        "emptied": lambda: Emptied(context),
        "target_session_killed": lambda: TargetSessionKilled(context),
        "target_lock_held": lambda: TargetLockHeld(context),
        "target_store_locked": lambda: TargetStoreLocked(context),
        "target_down": lambda: TargetDown(context),
    }
    return makers[kind]()
