"""The invariants the soak checks after every run (docs/testing.md), from what the run left behind.

Only the target (through :mod:`~.soak_target`, the same checks on either target, plus the
invariants a target's layout brings: :attr:`~.soak_target.SoakTarget.own_invariants`), the ledger,
the run guard, the staging directory and the exit code are looked at -- what an operator could
look at -- and the oracle is the soak's own record of which
run should hold each store (the ledger's ``exitoso`` rows, written in the same transaction as
the rows they describe) and the generator's quantities for that run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fluxion_harness.soak_chain import Chain
from fluxion_harness.soak_target import LedgerRow, SoakTarget

INVARIANTS = (
    ("rows", "every store's rows wholly one run's (one batch_id, its values) and exact"),
    ("exit_code", "exit code agrees with the ledger (0 all exitoso, 3 some, 1 none)"),
    ("ledger_open", "no ledger row en_proceso once a later run opened the ledger"),
    ("holds_own_run", "a store exitoso holds that run's rows, a failed one its previous rows"),
    ("run_lock", "no run lock outlives its process (exit 4 only if another run holds one)"),
    ("sessions", "no target session outlives its run (PostgreSQL: pg_stat_activity)"),
    ("staging", "staging files of killed runs do not pile up"),
)


@dataclass(frozen=True)
class RunOutcome:
    number: int
    exit_code: int
    """Negative: killed by that signal before it could answer."""
    fault: str
    emptied: str | None
    locked_out: bool = False
    """Another run held one of its stores (the fault did it): exit 4 is the right answer."""


@dataclass
class Invariants:
    """The soak's running record: checks made, violations found, who holds each store."""

    chain: Chain
    target: SoakTarget
    staging: Path
    checks: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    #: store id -> (run_id, run number) whose snapshot the store must hold
    holders: dict[str, tuple[str, int]] = field(default_factory=dict)
    run_numbers: dict[str, int] = field(default_factory=dict)
    emptied_in: dict[int, str] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    staging_peak_bytes: int = 0
    #: staging directories a killed run may leave until a run that gets as far as staging
    #: sweeps them (a run refused at the start -- target down, store locked, ledger held --
    #: never reaches its staging area, so it carries the allowance on)
    staging_allowed: int = 0
    #: ledger rows a run that ended by itself could not close (the file stayed held)
    unclosed: int = 0
    #: states of each run's stores, for the report
    last_states: dict[str, str] = field(default_factory=dict)

    def _check(self, name: str, ok: bool, message: str) -> None:
        self.checks[name] += 1
        if not ok:
            self.violations[name] += 1
            self.messages.append(message)

    def after_run(self, outcome: RunOutcome) -> list[str]:
        """Check everything after run ``outcome``; returns this run's violation messages."""
        before = len(self.messages)
        if outcome.emptied:
            self.emptied_in[outcome.number] = outcome.emptied
        killed = outcome.exit_code < 0
        seen = self.target.read()
        ledger, rows = seen.ledger, seen.rows
        this_run = self._adopt_new_run(ledger, outcome)
        states = {store: state for run_id, store, state, _ in ledger if run_id == this_run}
        self.last_states = states
        tag = f"run {outcome.number} ({outcome.fault})"

        if not killed:
            expected = 4 if outcome.locked_out else 1
            if states and all(s == "exitoso" for s in states.values()):
                expected = 0
            elif any(s == "exitoso" for s in states.values()):
                expected = 3
            self._check(
                "exit_code",
                outcome.exit_code == expected,
                f"{tag}: exit {outcome.exit_code} but the ledger says {expected} ({states})",
            )
        self._check(
            "run_lock",
            (outcome.exit_code == 4) == outcome.locked_out,
            f"{tag}: exit {outcome.exit_code}, "
            + ("yet another run held a store" if outcome.locked_out else "a lock outlived its run"),
        )
        self._check("run_lock", self.target.run_lock_free(), f"{tag}: run lock still held")
        sessions = self.target.leftover_sessions()
        if sessions is not None:
            left = f"{tag}: {sessions} ETL sessions left on the server"
            self._check("sessions", sessions == 0, left)

        newest = max(ledger, key=lambda row: row[3])[0] if ledger else None
        stale = {r for r, _, state, _ in ledger if state == "en_proceso" and r != newest}
        self._check("ledger_open", not stale, f"{tag}: ledger rows left en_proceso: {stale}")
        if not killed and this_run is not None:  # closed by the next run; counted, not a fault
            self.unclosed += sum(
                1 for r, _, state, _ in ledger if r == this_run and state == "en_proceso"
            )

        for store in self.chain.stores:
            state = states.get(store.id)
            if state == "exitoso":
                self.holders[store.id] = (this_run or "?", outcome.number)
            holder = self.holders.get(store.id)
            found = rows.get(store.id, {})
            if holder is None:
                self._check("rows", not found, f"{tag}: {store.id} has rows but never published")
                continue
            run_id, number = holder
            expected_rows = self.chain.expected(
                store, number, self.emptied_in.get(number) == store.id
            )
            batches = {batch for _, batch in found.values()}
            ok = batches <= {run_id} and {c: q for c, (q, _) in found.items()} == expected_rows
            message = (
                f"{tag}: {store.id} ({state or 'not in this run'}) rows are not run {number}'s"
                f" ({run_id}): {len(found)} rows, batches {sorted(batches)[:3]},"
                f" expected {len(expected_rows)}"
            )
            self._check("rows", ok, message)
            if state is not None:  # in this run: exitoso -> its own rows, else the previous ones
                self._check("holds_own_run", ok, message)

        for key, ok, message in self.target.check_after_run(states):  # the target's own
            self._check(key, ok, f"{tag}: {message}")

        entries, size = _staging_use(self.staging)
        self.staging_peak_bytes = max(self.staging_peak_bytes, size)
        allowed = 1 if killed else 0
        if this_run is None and not killed:
            allowed = self.staging_allowed
        self.staging_allowed = allowed
        self._check(
            "staging",
            entries <= allowed,
            f"{tag}: {entries} staging directories left ({size:,} bytes)",
        )
        self.sizes.append(self.target.size_bytes())
        return self.messages[before:]

    def _adopt_new_run(self, ledger: list[LedgerRow], outcome: RunOutcome) -> str | None:
        new = {run_id for run_id, _, _, _ in ledger if run_id not in self.run_numbers}
        self._check(
            "ledger_open",
            len(new) <= 1,
            f"run {outcome.number}: {len(new)} new run ids in the ledger",
        )
        for run_id in new:
            self.run_numbers[run_id] = outcome.number
        return next(iter(new), None)


def _staging_use(root: Path) -> tuple[int, int]:
    if not root.exists():
        return 0, 0
    entries = list(root.iterdir())
    size = 0
    for path in root.rglob("*"):
        try:
            size += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:  # an orphaned fetch of a killed run finishing
            continue
    return len(entries), size
