"""The ``fluxion-etl`` command: the only place that turns exceptions into exit codes.

Exit codes (docs/cli.md): 0 every selected store published; 3 partial; 1 the run failed;
2 configuration or usage error (before any connection); 4 another run holds the lock.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from fluxion_etl import __version__
from fluxion_etl.config import Settings, parse_id_list
from fluxion_etl.credentials import (
    Credentials,
    load_credentials,
    redact,
    withhold_secret_environment,
)
from fluxion_etl.errors import ConfigError, FluxionError, RunLockedError
from fluxion_etl.freshness import add_freshness, format_age
from fluxion_etl.logs import configure_logging
from fluxion_etl.run.budget import plan_fetches
from fluxion_etl.run.guard import accepted_stores
from fluxion_etl.run.pipeline import RunControl, RunResult, new_run_id, run_pipeline
from fluxion_etl.run.staging_area import check_staging_dir
from fluxion_etl.run_metrics import metric_lines
from fluxion_etl.sentry import SentryMonitor
from fluxion_etl.source.check import check_stores
from fluxion_etl.source.connection import check_connection_values, driver_family
from fluxion_etl.source.drivers import require_drivers
from fluxion_etl.source.query import load_query
from fluxion_etl.source.warehouses import store_warehouses
from fluxion_etl.stores import Store, example_text, load_stores, select_stores
from fluxion_etl.targets import open_target
from fluxion_etl.targets.base import Target
from fluxion_etl.targets.duckdb.path import apply_file_mode

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_PARTIAL, EXIT_LOCKED = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # the shell's convention for a command ended by SIGINT
EXIT_BROKEN_PIPE = 141  # ... and by SIGPIPE, what `head` closing the pipe does to other tools
log = structlog.get_logger("fluxion_etl.cli")


def main(argv: Sequence[str] | None = None) -> int:
    withhold_secret_environment()  # no child process inherits SQL_PASS / PGPASSWORD
    args = _parser().parse_args(argv)  # usage errors: argparse exits 2
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a reader that left is met here, not in Python's flush at exit
        return code
    except ConfigError as exc:
        print(f"fluxion-etl: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except RunLockedError as exc:
        print(f"fluxion-etl: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except KeyboardInterrupt:  # Ctrl-C outside a run (a run stops itself cleanly): one line
        print("fluxion-etl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader left (`fluxion-etl status | head -4`): nothing to add
        # Python flushes stdout once more at exit; point it at /dev/null so that flush cannot
        # fail again with a second traceback (the recipe of Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxion-etl",
        description="Per-store inventory snapshots from Stellar POS databases into DuckDB.",
    )
    parser.add_argument("--version", action="version", version=f"fluxion-etl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the ETL (the scheduled job)")
    run.add_argument(
        "--stores", help="comma list of store ids (default: ETL_TIENDAS, else all active)"
    )
    run.add_argument("--db", type=Path, help="target DuckDB file (default: DATABASE_PATH)")
    run.add_argument(
        "--accept-shrink",
        metavar="IDS",
        help="comma list of store ids (or 'all') whose snapshot the guard would hold back, to "
        "publish anyway in this run (default: ETL_ACCEPT_SHRINK)",
    )
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser(
        "check", help="per store: TCP, login, warehouse has stock, the query returns rows"
    )
    check.add_argument("--stores", help="comma list of store ids")
    check.set_defaults(handler=cmd_check)

    stores = commands.add_parser("stores", help="list the configured stores")
    stores.add_argument("--example", action="store_true", help="print a commented example file")
    stores.add_argument(
        "--warehouses",
        action="store_true",
        help="connect to each store and list its warehouses (code, description, stock rows)",
    )
    stores.add_argument("--stores", help="comma list of store ids (default: all active)")
    stores.set_defaults(handler=cmd_stores)

    status = commands.add_parser("status", help="last run per store, from the ledger")
    status.add_argument("--db", type=Path, help="target DuckDB file (default: DATABASE_PATH)")
    status.add_argument("--json", action="store_true", help="JSON instead of a table")
    status.set_defaults(handler=cmd_status)

    demo = commands.add_parser("demo", help="build local demo stores and run the real pipeline")
    demo.add_argument("--stores", type=int, default=5, help="number of demo stores (default 5)")
    demo.add_argument("--rows", type=int, default=3000, help="products per store (default 3000)")
    demo.add_argument(
        "--db",
        type=Path,
        default=Path("fluxion-demo/fluxion.duckdb"),
        help="demo target file (with DATABASE_URL: only its directory, for the demo stores)",
    )
    demo.set_defaults(handler=cmd_demo)
    return parser


# --- commands -------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    open_target(settings).preflight()
    check_staging_dir(settings.staging_dir)
    stores = _selected_stores(settings)
    source = "--accept-shrink" if args.accept_shrink else "ETL_ACCEPT_SHRINK"
    accepted_stores(settings.accept_shrink, stores, source)  # a typo must not pass silently
    credentials = _credentials_for(stores, settings)
    load_query(settings.query_file)  # a broken query file is a configuration error: fail now
    require_drivers(stores, settings.odbc_driver, settings.allow_driver_paths)
    plan_fetches(settings, len(stores))  # so is a memory budget too small for one fetch
    result = _execute(settings, stores, credentials)
    return result.exit_code if result else EXIT_FAILED


def cmd_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    stores = _selected_stores(settings)
    credentials = _credentials_for(stores, settings)
    require_drivers(stores, settings.odbc_driver, settings.allow_driver_paths)
    query = load_query(settings.query_file)
    # The target first, as run opens it: what run would refuse (not DuckDB, a foreign table,
    # objects another role controls) is exit 2 in one line before any store is asked; what it
    # could not write is FAIL below.
    target_ok, target_detail = _check_target(settings, stores)
    # as many stores at once as a run would fetch (same budget), never one thread per store
    workers = plan_fetches(settings, len(stores)).workers
    results = check_stores(stores, settings, credentials, query, workers)
    table = _table(
        "store", "address", "tcp", "login", "warehouse", "query", "rows", "seconds", "detail"
    )
    mark = {True: "ok", False: "FAIL", None: "-"}
    for r in results:
        table.add_row(
            r.store.id,
            r.store.address,
            mark[r.tcp],
            mark[r.login],
            mark[r.warehouse],
            mark[r.query],
            "" if r.rows is None else f"{r.rows:,}",
            f"{r.seconds:.1f}",
            r.detail,
        )
    _print(table)
    print(f"target: {'ok' if target_ok else 'FAIL'}: {target_detail}")
    _print_storage(open_target(settings))
    return EXIT_OK if target_ok and all(r.ok for r in results) else EXIT_FAILED


def _check_target(settings: Settings, stores: Sequence[Store] = ()) -> tuple[bool, str]:
    """Whether a run could publish: the target's own check (targets/), one line either way; a
    target the run would refuse as configuration raises (ConfigError, exit 2)."""
    try:
        return True, open_target(settings, stores=stores).check()
    except ConfigError:  # what run refuses as a configuration error: exit 2 as run would
        raise
    except FluxionError as exc:
        return False, str(exc)


def cmd_stores(args: argparse.Namespace) -> int:
    if args.example:
        sys.stdout.write(example_text())
        return EXIT_OK
    if args.warehouses:
        return _list_warehouses(args)
    settings = _settings(args)
    stores = load_stores(_require_stores_file(settings))
    if settings.selected_stores:
        stores = select_stores(stores, settings.selected_stores)
    table = _table("id", "name", "type", "address", "database", "warehouse", "active", "driver")
    for s in stores:
        table.add_row(
            s.id,
            s.name,
            s.type,
            s.address,
            s.database,
            s.warehouse,
            "yes" if s.active else "no",
            s.odbc_driver(settings.odbc_driver),
        )
    _print(table)
    return EXIT_OK


def _list_warehouses(args: argparse.Namespace) -> int:
    """``stores --warehouses``: what each store's database holds, so a wrong code is seen
    before the first run. Exit 1 when a store could not be asked."""
    settings = _settings(args)
    stores = _selected_stores(settings)
    credentials = _credentials_for(stores, settings)
    require_drivers(stores, settings.odbc_driver, settings.allow_driver_paths)
    listings = store_warehouses(
        stores, settings, credentials, plan_fetches(settings, len(stores)).workers
    )
    table = _table("store", "warehouse", "description", "stock rows", "configured")
    for listing in listings:
        if listing.error is not None:
            table.add_row(listing.store.id, "", f"FAIL: {listing.error}", "", "")
            continue
        for warehouse, configured in listing.rows():
            unlisted = "" if warehouse.listed else "(not in MA_DEPOSITO)"
            description = warehouse.description or unlisted
            table.add_row(
                listing.store.id,
                warehouse.code,
                description,
                f"{warehouse.stock_rows:,}",
                "<- configured" if configured else "",
            )
    _print(table)
    return EXIT_FAILED if any(listing.error for listing in listings) else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    target = open_target(settings)
    try:
        found = target.store_status(
            lambda waiting: print(f"fluxion-etl: {waiting}", file=sys.stderr)
        )
    except ConfigError:  # not a DuckDB file: exit 2, as run would refuse it
        raise
    except FluxionError as exc:
        print(f"fluxion-etl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if found is None:
        print(
            f"fluxion-etl: no database at {target.describe()} (no run has published yet)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    rows: list[dict[str, Any]] = found
    add_freshness(rows, settings.stale_after_seconds)
    if args.json:
        version = target.storage_version()  # per row: the output stays a list of stores
        rows = [{**row, "storage_version": version} for row in rows]
        print(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return EXIT_OK
    # "rows": what the last run published; "serving"/"published": the snapshot the target
    # holds now, which a failed run leaves in place (see status.py)
    table = _table(
        "store", "state", "started (UTC)", "rows", "serving", "published (UTC)", "age", "error"
    )
    for row in rows:
        error = f"{row['error_tipo']}: {row['error_mensaje']}" if row["error_tipo"] else ""
        loaded = row["registros_cargados"] if row["estado"] == "exitoso" else None
        if row.get("guardia_aceptada"):  # published, though the guard would have held it back
            error = f"accepted: {row['guardia_aceptada']}"
        age = format_age(row["snapshot_age_seconds"])
        table.add_row(
            str(row["ubicacion_id"]),
            str(row["estado"]),
            _when(row["fecha_inicio"]),
            "" if loaded is None else f"{loaded:,}",
            f"{row['registros_servidos']:,}",
            _when(row["fecha_publicacion"]),
            f"{age} STALE" if row["stale"] else age,
            error,
        )
    _print(table)
    _print_storage(target)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    # the demo's generator is imported by the demo alone: every run paid ~50 ms of CPU for it
    from fluxion_etl.demo.runner import (
        STORES_FILE,
        check_demo_arguments,
        claim_directory,
        demo_settings,
        write_stores_file,
    )

    check_demo_arguments(args.stores, args.rows)  # before any file is touched
    settings = demo_settings(Settings.from_env(), args.db)
    check_staging_dir(settings.staging_dir)
    claim_directory(args.db)  # refuses a directory holding files the demo did not write
    stores_file = args.db.parent / STORES_FILE
    stores_file.unlink(missing_ok=True)  # written again only once every store is complete
    stores = _build_demo_stores(args)
    require_drivers(stores, settings.odbc_driver, settings.allow_driver_paths)
    write_stores_file(stores, stores_file)
    result = _execute(settings, stores, None)
    if result is None:
        return EXIT_FAILED
    table = _table("store", "name", "state", "rows extracted", "rows published", "seconds", "error")
    names = {store.id: store.name for store in stores}
    for entry in result.entries:
        c = entry.counters
        table.add_row(
            entry.store_id,
            names[entry.store_id],
            entry.state,
            f"{c.extracted:,}" if c else "",
            f"{c.loaded:,}" if c else "",
            f"{entry.seconds:.2f}",
            entry.error_message or "",
        )
    _print(table)
    program = _this_program()
    if settings.database_url:  # the PostgreSQL target: DATABASE_URL is in the caller's env
        env = f"ETL_STORES_FILE={shlex.quote(str(stores_file.absolute()))}"
        print(f"demo target: {open_target(settings).describe()}; demo stores file: {stores_file}")
        print(f"next, try:  {env} {program} check")
        print(f"       or:  {env} {program} run   (then: {program} status)")
        return result.exit_code
    db = shlex.quote(str(args.db.absolute()))
    env = f"ETL_STORES_FILE={shlex.quote(str(stores_file.absolute()))} DATABASE_PATH={db}"
    print(f"demo database: {args.db}; demo stores file: {stores_file}")
    print(f"next, try:  {env} {program} check")
    print(f"       or:  {env} {program} run   (then: {program} status --db {db})")
    return result.exit_code


def _this_program() -> str:
    """How to run this command again from any directory: ``fluxion-etl`` when that is what PATH
    finds, else the script's absolute path (``./scripts/demo.sh`` runs ``.venv/bin/fluxion-etl``,
    which is not on PATH), else ``python -m fluxion_etl`` with this interpreter."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "fluxion-etl" and script.is_file():
        found = shutil.which("fluxion-etl")
        if found and Path(found).resolve() == script.resolve():
            return "fluxion-etl"
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m fluxion_etl"


def _build_demo_stores(args: argparse.Namespace) -> list[Store]:
    """Build the demo's SQLite stores, showing progress: a bar in a terminal, else one line per
    store on stderr (stdout carries the run's JSON lines)."""
    from fluxion_etl.demo.runner import STORES_DIRECTORY, build_demo_stores

    directory = args.db.parent / STORES_DIRECTORY
    if not sys.stdout.isatty():

        def report(done: int, total: int, store: Store) -> None:
            print(f"demo: built store {done}/{total}: {store.id}", file=sys.stderr, flush=True)

        return build_demo_stores(directory, args.stores, args.rows, report)
    with Progress(transient=True) as progress:
        task = progress.add_task(
            f"building {args.stores} demo stores ({args.rows:,} products each)", total=args.stores
        )
        return build_demo_stores(
            directory,
            args.stores,
            args.rows,
            lambda done, _, __: progress.update(task, completed=done),
        )


# --- helpers --------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    apply_file_mode(settings.file_mode)  # before any target, lock or staging file is created
    if getattr(args, "stores", None) is not None:  # given, even empty: an empty one is an error
        settings = replace(settings, selected_stores=parse_id_list(args.stores, "--stores"))
    if getattr(args, "db", None):
        if settings.database_url:
            raise ConfigError(
                "--db names a DuckDB file but DATABASE_URL selects PostgreSQL: use one of them"
            )
        settings = replace(settings, database_path=args.db, database_source="--db")
    if getattr(args, "accept_shrink", None):
        accept = parse_id_list(args.accept_shrink, "--accept-shrink")
        settings = replace(settings, accept_shrink=accept)
    return settings


def _require_stores_file(settings: Settings) -> Path:
    if settings.stores_file is None:
        raise ConfigError(
            "ETL_STORES_FILE is not set (`fluxion-etl stores --example` prints a template)"
        )
    return settings.stores_file


def _selected_stores(settings: Settings) -> list[Store]:
    stores = load_stores(_require_stores_file(settings))
    selected = select_stores(stores, settings.selected_stores)
    for store in selected:  # a store's own thresholds against the settings': exit 2 now
        store.thresholds(settings.stock_thresholds)
    return selected


def _credentials_for(stores: Sequence[Store], settings: Settings) -> Credentials | None:
    """Credentials, required as soon as one selected store's driver needs a login."""
    try:
        families = {driver_family(s.odbc_driver(settings.odbc_driver)) for s in stores}
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    credentials = load_credentials()
    if credentials is None and any(family.needs_credentials for family in families):
        raise ConfigError(
            "no SQL credentials: set SQL_USER and SQL_PASS, or SQL_CREDENTIALS_SECRET_ID"
        )
    check_connection_values(stores, settings, credentials)  # before any driver is loaded
    return credentials


class _Signals:
    """SIGTERM / SIGINT for the time of a run.

    During the run's work a signal stops it cleanly (:class:`RunControl`). Once the outcome is
    recorded (the ledger written, the exit code decided) a signal only cuts the tail short: the
    metrics not printed yet and the Sentry calls are skipped, the ``done`` line is still printed,
    last, and the exit code stays the work's. On ECS a SIGTERM then (a deploy, a scale-in) must
    not turn a good run into a failed task. The first signal in the tail gives the handlers back,
    so a second one acts as it would without fluxion (an impatient Ctrl-C still ends it).
    """

    def __init__(self, control: RunControl) -> None:
        self.control = control
        self.in_tail = False
        #: the signal that cut the tail short, if one did; ``tail_stop`` cuts a wait in it
        self.cut: str | None = None
        self.tail_stop = threading.Event()
        self.previous = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)
        }

    def _handle(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if not self.in_tail:
            self.control.stop(name)
            return
        self.cut = self.cut or name
        self.tail_stop.set()
        self.restore()

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


def _execute(
    settings: Settings, stores: Sequence[Store], credentials: Credentials | None
) -> RunResult | None:
    """Run the pipeline with logging, signals and metrics; None when the run failed outright."""
    interactive = sys.stdout.isatty()
    display = configure_logging(settings.log_level, interactive=interactive)
    control = RunControl()
    signals = _Signals(control)
    monitor = SentryMonitor.from_env(credentials)
    run_id = new_run_id()
    if monitor:
        monitor.run_started(run_id)
    result: RunResult | None = None
    try:
        with display if display is not None else nullcontext():
            result = run_pipeline(settings, stores, credentials, run_id=run_id, control=control)
    except (RunLockedError, ConfigError):  # e.g. a target table it cannot adopt: exit 2
        signals.restore()
        raise
    except FluxionError as exc:
        log.error("ETL failed", run_id=run_id, phase="run", error=redact(str(exc), credentials))
    except Exception as exc:  # last resort: one line, a traceback in the log, exit 1
        error = redact(f"{type(exc).__name__}: {exc}", credentials)
        log.exception("ETL failed", phase="run", error=error)
        if monitor:
            monitor.run_crashed(exc)
    except BaseException:
        signals.restore()
        raise
    signals.in_tail = True  # the outcome is recorded: from here a signal only cuts the tail
    try:
        if not interactive:
            _print_metrics(result, stores, settings, run_id, signals)
        _log_outcome(result, signals.cut)
        if monitor and not signals.cut:
            monitor.stores_failed(result.failed if result else [])
        if monitor and not signals.cut:
            monitor.run_finished(bool(result and result.ran), result.seconds if result else None)
    finally:
        signals.restore()
    return result


def _print_metrics(
    result: RunResult | None,
    stores: Sequence[Store],
    settings: Settings,
    run_id: str,
    signals: _Signals,
) -> None:
    """The run's EMF lines, unless a signal cuts the tail short. A run that never reached a
    store (``result`` None) reports RunFailed alone (no ``StoresStale``: see metric_lines)."""
    ids, entries = [store.id for store in stores], result.entries if result else []
    reached = result is not None
    lines = metric_lines(
        _metrics(result), ids, entries, settings, run_id,
        reached_stores=reached, stop=signals.tail_stop,
    )  # fmt: skip
    for line in lines:
        if signals.cut:
            return
        print(line, flush=True)


def _metrics(result: RunResult | None) -> dict[str, float]:
    if result is None:  # failed before or outside the stores: none of them counts as failed
        return {"RunSucceeded": 0, "RunFailed": 1}
    return {
        "RunSucceeded": int(result.ran),
        "RunFailed": int(not result.ran),
        "StoresFailed": len(result.failed),
        "StoresHeldBack": len(result.held_back),
        "RowsPublished": result.rows_published,
        "DurationSeconds": round(result.seconds, 3),
        "LockHeldSeconds": round(result.lock_held_seconds, 3),
    }


def _log_outcome(result: RunResult | None, cut_by: str | None = None) -> None:
    """The run's last line (``"phase": "done"``); ``cut_by``: a signal that arrived after the
    work and cut the metrics short (the exit code is still the work's)."""
    if result is None:
        return
    fields: dict[str, Any] = {
        "run_id": result.run_id,
        "phase": "done",
        "stores_published": len(result.published),
        "stores_failed": [entry.store_id for entry in result.failed],
        "stores_held_back": [entry.store_id for entry in result.held_back],
        "rows": result.rows_published,
        "seconds": round(result.seconds, 3),
        "lock_held_seconds": round(result.lock_held_seconds, 3),
        "exit_code": result.exit_code,
    }
    if cut_by:
        fields["signal_after_the_work"] = cut_by
    if result.exit_code == EXIT_OK:
        log.info("ETL completed successfully", **fields)
    elif result.exit_code == EXIT_PARTIAL:
        log.warning("ETL completed with failed stores", **fields)
    else:
        log.error("ETL failed: no store published", **fields)


def _table(*columns: str) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    return table


class _Console(Console):
    """rich's console, leaving a closed pipe to :func:`main` (one exit code for it, 141)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def _print(table: Table) -> None:
    _Console(width=200 if not sys.stdout.isatty() else None).print(table)


def _print_storage(target: Target) -> None:
    """The target's storage format (a DuckDB file's storage version: the backend's DuckDB must
    be able to read it)."""
    print(target.storage_line())


def _when(value: object) -> str:
    return "" if value is None else str(value)[:19]
