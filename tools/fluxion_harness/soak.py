"""The chaos soak: N consecutive real runs, one random fault each, invariants checked after each.

    python -m fluxion_harness.soak [--target duckdb|postgres] [--runs 50] [--seed S]
                                    [--layout inventario_raw|inventario_actual]
                                    [--stores 21] [--products 3000] [--faults a,b] [--workdir DIR]
                                    [--source postgres|tsql]

K stores of the chain on the PostgreSQL stand-in (``FLUXION_TEST_PG_*``), their quantities
changed before every run (:mod:`fluxion_harness.soak_chain`). Run 0 has no fault and measures
a normal run's duration; runs 1..N each get one fault from :data:`~.soak_faults.FAULTS`, drawn
from shuffled decks of the chosen kinds (so every kind comes up about N / kinds times) and
printed with the seed, so ``--seed`` replays the same sequence. Each run is the real CLI
(``python -m fluxion_etl run``) in a child process. A reader behaving like the web backend
(:mod:`fluxion_harness.backend_reader`) loops over the target the whole time. The target is a
DuckDB file in the work directory (default) or PostgreSQL (``--target postgres``: ``DATABASE_URL``
+ ``PGPASSWORD`` as for the CLI, into a fresh schema; else a database of its own on the stand-in
server); what is read of it goes through :mod:`fluxion_harness.soak_target`, and each target has
its own fault list. ``--layout inventario_actual`` (PostgreSQL only; ``ETL_TARGET_LAYOUT``)
publishes into the chain backend's tables instead, beside another feed's locations, with the
invariants of that layout (:mod:`fluxion_harness.soak_actual`). ``--source tsql`` puts the stores
on the T-SQL server instead (Babelfish,
``FLUXION_TEST_TSQL_*``: :mod:`fluxion_harness.soak_tsql`), read through Microsoft's ODBC Driver
18 (``SOAK_TSQL_DRIVER=FreeTDS`` for FreeTDS). Prints a table of the invariants
(:mod:`fluxion_harness.soak_checks`), the faults, the target's size and the reader's figures;
exits 1 on any violation, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from fluxion_etl.demo.stellar import CHAIN_LOCATIONS
from fluxion_etl.targets.postgres.layout_names import DEFAULT_LAYOUT, LAYOUTS
from fluxion_harness.postgres_source import PgServer
from fluxion_harness.run_process import RunProcess
from fluxion_harness.soak_chain import Chain
from fluxion_harness.soak_checks import INVARIANTS, Invariants, RunOutcome
from fluxion_harness.soak_faults import FAULTS, Injection, SoakContext, injection
from fluxion_harness.soak_target import DUCKDB_FAULTS, POSTGRES_FAULTS, TARGETS, soak_target
from fluxion_harness.soak_tsql import (
    DEFAULT_TSQL_DRIVER,
    BabelfishPg,
    TsqlChain,
    tsql_server_from_env,
)

PG_VARIABLES = (
    "FLUXION_TEST_PG_HOST",
    "FLUXION_TEST_PG_PORT",
    "FLUXION_TEST_PG_USER",
    "FLUXION_TEST_PG_PASSWORD",
)
#: the run's ETL_LOCK_WAIT_SECONDS: short, so a held file really makes publishes give up
LOCK_WAIT_SECONDS = 4.0
#: the runs' ETL_TIMEOUT_SECONDS is twice a fault-free run, at least this: a stalled link is
#: ended by it, and a loaded machine must not make ordinary runs miss it
MIN_DEADLINE_SECONDS = 12.0
#: the first, fault-free run measures a normal run: it must not be cut short
FIRST_RUN_DEADLINE_SECONDS = 600.0


class UsageError(Exception):
    """Bad input: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m fluxion_harness.soak", description=__doc__)
    parser.add_argument(
        "--target", choices=TARGETS, default="duckdb", help="where runs publish (duckdb)"
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=DEFAULT_LAYOUT,
        help=f"PostgreSQL table layout, as ETL_TARGET_LAYOUT ({DEFAULT_LAYOUT})",
    )
    parser.add_argument("--runs", type=int, default=50, help="runs with a fault (default 50)")
    parser.add_argument("--seed", type=int, default=None, help="replay a soak (default: random)")
    parser.add_argument(
        "--stores", type=int, default=len(CHAIN_LOCATIONS), help="stores of the chain (21)"
    )
    parser.add_argument("--products", type=int, default=3000, help="products per store (3000)")
    parser.add_argument(
        "--faults",
        default=None,
        help=f"comma list (default: all of the target's): duckdb {', '.join(DUCKDB_FAULTS)};"
        f" postgres {', '.join(POSTGRES_FAULTS)}",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here")
    parser.add_argument(
        "--source",
        choices=("postgres", "tsql"),
        default="postgres",
        help="where the stores live: the PostgreSQL stand-in, or Babelfish over TDS (postgres)",
    )
    args = parser.parse_args(argv)
    if args.layout != DEFAULT_LAYOUT and args.target != "postgres":
        raise UsageError(f"--layout {args.layout} is a PostgreSQL layout: add --target postgres")
    if args.runs <= 0:
        raise UsageError(f"--runs must be at least 1, got {args.runs}")
    if not 1 <= args.stores <= len(CHAIN_LOCATIONS):
        raise UsageError(f"--stores must be 1..{len(CHAIN_LOCATIONS)}, got {args.stores}")
    if args.products < 1:
        raise UsageError(f"--products must be at least 1, got {args.products}")
    available = DUCKDB_FAULTS if args.target == "duckdb" else POSTGRES_FAULTS
    given = ",".join(available) if args.faults is None else args.faults
    kinds = [kind.strip() for kind in given.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in FAULTS]
    if unknown or not kinds:
        raise UsageError(
            f"unknown fault {', '.join(repr(k) for k in unknown) or '(none given)'};"
            f" choose from: {', '.join(available)}"
        )
    elsewhere = [kind for kind in kinds if kind not in available]
    if elsewhere:
        raise UsageError(
            f"fault {', '.join(repr(k) for k in elsewhere)} does not apply to --target"
            f" {args.target}; choose from: {', '.join(available)}"
        )
    args.faults = list(dict.fromkeys(kinds))
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    return args


def pg_server_from_env() -> PgServer:
    missing = [name for name in PG_VARIABLES if not os.environ.get(name)]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} not set: the soak needs the PostgreSQL stand-in"
            " (source /tmp/fluxion-pg.env or scripts/postgres-login.sh)"
        )
    host, port, user, password = (os.environ[name] for name in PG_VARIABLES)
    if not port.isdigit():
        raise UsageError(f"FLUXION_TEST_PG_PORT={port!r} is not a port number")
    return PgServer(host=host, port=int(port), user=user, password=password)


class Soak:
    def __init__(
        self,
        args: argparse.Namespace,
        server: PgServer | None,
        workdir: Path,
        tsql: BabelfishPg | None = None,
    ) -> None:
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.staging = workdir / "staging"
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.stores_file = workdir / "stores.toml"
        self.odbc_env: dict[str, str] = {}
        if tsql is not None:
            driver = os.environ.get("SOAK_TSQL_DRIVER", DEFAULT_TSQL_DRIVER)
            chain = TsqlChain.create_tsql(tsql, args.stores, args.products, args.seed, driver)
            self.odbc_env["ODBCSYSINI"] = str(chain.odbcsysini(workdir / "odbc"))
            self.login = (tsql.user, tsql.password)
            self.chain: Chain = chain
        else:
            assert server is not None
            self.login = (server.user, server.password)
            self.chain = Chain.create(server, args.stores, args.products, args.seed)
        try:
            self.target = soak_target(
                args.target,
                workdir,
                server,  # type: ignore[arg-type]
                os.environ,
                args.layout,
            )
        except BaseException:
            self.chain.drop()
            raise
        self.invariants = Invariants(self.chain, self.target, self.staging)
        self.deadline = MIN_DEADLINE_SECONDS
        self.context = SoakContext(self.chain, self.target, LOCK_WAIT_SECONDS, 5.0, self.rng)
        self.fault_outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        self.deck: list[str] = []
        self.reader: subprocess.Popen[str] | None = None
        #: SIGINT/SIGTERM: finish the current run, then report what was done
        self.stopping = threading.Event()

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SQL_", "ETL_", "DATABASE_", "PG", "TARGET_CREDENTIALS"))
        }
        env.update(self.target.env())
        env.update(
            ETL_STORES_FILE=str(self.stores_file),
            ETL_STAGING_DIR=str(self.staging),
            ETL_LOCK_WAIT_SECONDS=f"{LOCK_WAIT_SECONDS:g}",
            ETL_TIMEOUT_SECONDS=f"{self.deadline:g}",
            SQL_USER=self.login[0],
            SQL_PASS=self.login[1],
            ENVIRONMENT="soak",
            LOG_LEVEL="INFO",
        )
        env.update(self.odbc_env)
        env.update(extra)
        return env

    def draw(self) -> str:
        if not self.deck:
            self.deck = list(self.args.faults)
            self.rng.shuffle(self.deck)
        return self.deck.pop()

    def run_once(self, number: int, fault: Injection) -> list[str]:
        plan = fault.plan()
        try:
            self.chain.prepare(number, plan.emptied)
            self.target.before_run(number)
            self.chain.write_stores(self.stores_file, plan.overrides)
            fault.arm()
            run = RunProcess(self.env(plan.env), self.logs / f"run-{number:04d}.log")
            actor = threading.Thread(target=fault.during, args=(run,), daemon=True)
            actor.start()
            code, seconds = run.finish(timeout=self.deadline + 180)
        finally:
            fault.close()
        actor.join(timeout=30)
        outcome = RunOutcome(number, code, fault.name, plan.emptied, plan.locked_out)
        violations = self.invariants.after_run(outcome)
        states = Counter(self.invariants.last_states.values())
        victim = fault.victim.id if fault.victim else None
        victim_state = self.invariants.last_states.get(victim, "-") if victim else ""
        self.fault_outcomes[fault.name][f"exit {code}"] += 1
        if victim:
            self.fault_outcomes[fault.name][f"victim {victim_state}"] += 1
        size = self.invariants.sizes[-1]
        print(
            f"run {number:4d}  {fault.name:<21} {fault.description:<60} exit {code:>3}"
            f"  {seconds:5.1f} s  ok {states.get('exitoso', 0):2d}/{len(self.chain.stores)}"
            f"{f'  {victim}={victim_state}' if victim else ''}"
            f"  size {size / 1e6:6.2f} MB  {'VIOLATION' if violations else 'ok'}",
            flush=True,
        )
        for message in violations:
            print(f"     ! {message}", flush=True)
        if number == 0:
            self.context.typical_seconds = seconds
        return violations

    def every_store_published(self) -> bool:
        """The backend reader starts once every store has a snapshot (before, a missing
        store is not a fault)."""
        return all(store.id in self.invariants.holders for store in self.chain.stores)

    def start_reader(self) -> None:
        expected = {store.id: len(store.base) for store in self.chain.stores}
        expected.update(self.target.other_locations())
        (self.workdir / "expected.json").write_text(json.dumps(expected), encoding="utf-8")
        self.reader = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fluxion_harness.backend_reader",
                self.target.reader_target(),
                str(self.workdir / "expected.json"),
                str(self.workdir / "reader.json"),
            ],
            env=self.env({}),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.reader.stdout is not None
        self.reader.stdout.readline()

    def stop_reader(self) -> dict[str, Any]:
        if self.reader is None:
            return {}
        self.reader.send_signal(signal.SIGTERM)
        self.reader.wait(timeout=60)
        path = self.workdir / "reader.json"
        figures: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return figures

    def execute(self) -> int:
        print(
            f"soak: source {self.args.source}, target {self.args.target},"
            f" layout {self.args.layout},"
            f" seed {self.args.seed}, {self.args.runs} runs,"
            f" {len(self.chain.stores)} stores"
            f" x {self.args.products} products, faults {','.join(self.args.faults)};"
            f" files in {self.workdir}",
            flush=True,
        )
        self.deadline = FIRST_RUN_DEADLINE_SECONDS
        violations = self.run_once(0, injection("none", self.context))
        self.deadline = max(MIN_DEADLINE_SECONDS, 2 * self.context.typical_seconds)
        try:
            for number in range(1, self.args.runs + 1):
                if self.stopping.is_set():
                    print(f"soak: stopped (SIGINT/SIGTERM) before run {number}", flush=True)
                    break
                if self.reader is None and self.every_store_published():
                    self.start_reader()
                violations += self.run_once(number, injection(self.draw(), self.context))
        finally:
            reader = self.stop_reader()
        reader_violations = self.reader_violations(reader)
        self.report(reader, reader_violations)
        return 1 if violations or reader_violations else 0

    def reader_violations(self, reader: dict[str, Any]) -> int:
        return reader_violations(reader, bool(self.fault_outcomes["emptied"]["victim exitoso"]))

    def report(self, reader: dict[str, Any], reader_violations: int) -> None:
        inv = self.invariants
        print(f"\nsoak: seed {self.args.seed}; reproduce with --seed {self.args.seed}")
        print(f"\n{'invariant':<72} {'checks':>7} {'violations':>10}")
        for key, text in (*INVARIANTS, *self.target.own_invariants):
            if key == "sessions" and not inv.checks[key]:
                continue  # a file target has no server sessions to outlive a run
            print(f"{text:<72} {inv.checks[key]:>7} {inv.violations[key]:>10}")
        print(
            f"{'backend reader never sees an error, a store half-published or missing':<72}"
            f" {reader.get('requests', 0):>7} {reader_violations:>10}"
        )
        print(f"\n{'fault':<22} {'drawn':>5}  outcomes")
        for name in FAULTS:
            outcomes = self.fault_outcomes.get(name)
            if outcomes:
                drawn = sum(v for k, v in outcomes.items() if k.startswith("exit"))
                detail = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
                print(f"{name:<22} {drawn:>5}  {detail}")
        sizes = inv.sizes
        if sizes:
            curve = ", ".join(f"{i}: {sizes[i] / 1e6:.2f}" for i in range(0, len(sizes), 25))
            print(
                f"\n{self.target.size_label} (MB): first {sizes[0] / 1e6:.2f},"
                f" max {max(sizes) / 1e6:.2f}"
                f" ({max(sizes) / sizes[0]:.2f}x), last {sizes[-1] / 1e6:.2f}"
                f" ({sizes[-1] / sizes[0]:.2f}x); after run {curve}"
            )
        print(f"staging directory peak: {inv.staging_peak_bytes / 1e6:.2f} MB")
        print(
            f"ledger rows a run ending by itself could not close (target held; the next run"
            f" closed them): {inv.unclosed}"
        )
        if reader:
            print(
                f"backend reader: {reader['requests']} requests, {reader['failed_opens']} failed"
                f" opens (lock), {reader['waited_requests']} requests waited, longest wait"
                f" {reader['longest_wait_seconds']:.3f} s, p99 wait"
                f" {reader['p99_wait_seconds']:.3f} s, gave up {reader['gave_up']},"
                f" errors {reader.get('errors', 0)},"
                f" longest request {reader['longest_request_seconds']:.3f} s;"
                f" request p50 {reader['p50_request_seconds'] * 1000:.1f} ms,"
                f" p99 {reader['p99_request_seconds'] * 1000:.1f} ms"
            )
            for sample in reader.get("anomaly_samples", [])[: 10 if reader_violations else 0]:
                print(f"     ! reader saw {sample}")
        total = sum(inv.violations.values()) + reader_violations
        print(f"\nsoak: {'no violations' if not total else f'{total} VIOLATIONS'}")


def reader_violations(reader: dict[str, Any], empty_published: bool) -> int:
    """What the backend saw that it must not: an error page, a store half-published (always), a
    store missing (unless an emptied stock table was published as empty: no snapshot guard); no
    figures at all (the reader died) is one."""
    if not reader:
        return 1
    missing = 0 if empty_published else int(reader["missing"])
    return int(reader.get("errors", 0)) + int(reader["half_published"]) + missing


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        needs_pg = args.source == "postgres" or args.target == "postgres"
        server = pg_server_from_env() if needs_pg else None
        tsql = tsql_server_from_env() if args.source == "tsql" else None
    except (UsageError, ValueError) as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fluxion-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    soak = Soak(args, server, workdir, tsql)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: soak.stopping.set())
    try:
        return soak.execute()
    finally:
        soak.chain.drop()
        soak.target.drop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
