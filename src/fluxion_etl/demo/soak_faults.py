"""The soak's faults: one per run, drawn at random, each applied to the real CLI from outside.

Every fault is something production does to a run: a store's VPN down, a link reset or stalled
mid-fetch (the one link proxy, :mod:`fluxion_etl.demo.linkproxy`), the store's server ending the
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxion_etl.demo.linkproxy import FaultyProxy
from fluxion_etl.demo.soak_chain import APPLICATION_NAME, Chain, SoakStore, closed_port

if TYPE_CHECKING:
    from fluxion_etl.demo.soak import RunProcess

FAULTS = (
    "none",
    "store_down",
    "link_reset",
    "link_stall",
    "session_killed",
    "writer_holds",
    "reader_holds",
    "sigterm",
    "sigkill",
    "sigkill_publish",
    "deadline",
    "emptied",
)
"""Every fault kind, by the name ``--faults`` takes. ``none`` is a run without a fault."""

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
    database: Path
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
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOLDER,
                str(self.context.database),
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
    }
    return makers[kind]()
