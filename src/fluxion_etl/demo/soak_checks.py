"""The invariants the soak checks after every run (DESIGN §1.6), from what the run left behind.

Only the target file, the ledger, the run lock, the staging directory and the exit code are
looked at -- what an operator could look at -- and the oracle is the soak's own record of which
run should hold each store (the ledger's ``exitoso`` rows, written in the same transaction as
the rows they describe) and the generator's quantities for that run.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from fluxion_etl.demo.soak_chain import Chain
from fluxion_etl.publish import is_lock_conflict

INVARIANTS = (
    ("rows", "every store's rows wholly one run's (one batch_id, its values) and exact"),
    ("exit_code", "exit code agrees with the ledger (0 all exitoso, 3 some, 1 none)"),
    ("ledger_open", "no ledger row en_proceso once a later run opened the ledger"),
    ("holds_own_run", "a store exitoso holds that run's rows, a failed one its previous rows"),
    ("run_lock", "no run lock outlives its process (never exit 4)"),
    ("staging", "staging files of killed runs do not pile up"),
)


@dataclass(frozen=True)
class RunOutcome:
    number: int
    exit_code: int
    """Negative: killed by that signal before it could answer."""
    fault: str
    emptied: str | None


@dataclass
class Invariants:
    """The soak's running record: checks made, violations found, who holds each store."""

    chain: Chain
    database: Path
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
        with _read_only(self.database) as con:
            ledger = _ledger(con) if con is not None else []
            rows = _rows(con) if con is not None else {}
        this_run = self._adopt_new_run(ledger, outcome)
        states = {store: state for run_id, store, state, _ in ledger if run_id == this_run}
        self.last_states = states
        tag = f"run {outcome.number} ({outcome.fault})"

        if not killed:
            expected = 1
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
            outcome.exit_code != 4,
            f"{tag}: exit 4, a run lock outlived its process",
        )
        self._check("run_lock", _lock_is_free(self.database), f"{tag}: run lock still held")

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

        entries, size = _staging_use(self.staging)
        self.staging_peak_bytes = max(self.staging_peak_bytes, size)
        self._check(
            "staging",
            entries <= (1 if killed else 0),
            f"{tag}: {entries} staging directories left ({size:,} bytes)",
        )
        self.sizes.append(_file_size(self.database))
        return self.messages[before:]

    def _adopt_new_run(
        self, ledger: list[tuple[str, str, str, dt.datetime]], outcome: RunOutcome
    ) -> str | None:
        new = {run_id for run_id, _, _, _ in ledger if run_id not in self.run_numbers}
        self._check(
            "ledger_open",
            len(new) <= 1,
            f"run {outcome.number}: {len(new)} new run ids in the ledger",
        )
        for run_id in new:
            self.run_numbers[run_id] = outcome.number
        return next(iter(new), None)


@contextmanager
def _read_only(database: Path) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The target read-only, waiting out a lock a lingering holder might still have."""
    if not database.exists():
        yield None
        return
    ends = time.monotonic() + 30
    while True:
        try:
            con = duckdb.connect(str(database), read_only=True)
            break
        except duckdb.Error as exc:
            if not is_lock_conflict(exc) or time.monotonic() > ends:
                raise
            time.sleep(0.05)
    try:
        yield con
    finally:
        con.close()


def _ledger(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, dt.datetime]]:
    try:
        return [
            (str(r[0]), str(r[1]), str(r[2]), r[3])
            for r in con.execute(
                "SELECT run_id, ubicacion_id, estado, fecha_inicio FROM etl_ejecuciones"
            ).fetchall()
        ]
    except duckdb.CatalogException:
        return []


def _rows(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, tuple[Decimal, str]]]:
    found: dict[str, dict[str, tuple[Decimal, str]]] = {}
    try:
        cursor = con.execute(
            "SELECT ubicacion_id, codigo_producto, cantidad_actual, batch_id FROM inventario_raw"
        )
    except duckdb.CatalogException:
        return found
    for store, code, quantity, batch in cursor.fetchall():
        found.setdefault(store, {})[code] = (quantity, batch)
    return found


def _lock_is_free(database: Path) -> bool:
    path = database.with_name(database.name + ".run.lock")
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


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


def _file_size(database: Path) -> int:
    wal = database.with_name(database.name + ".wal")
    return (database.stat().st_size if database.exists() else 0) + (
        wal.stat().st_size if wal.exists() else 0
    )
