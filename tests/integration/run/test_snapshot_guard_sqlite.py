"""The snapshot guard over SQLite demo stores (the SQLite3 ODBC driver, no server): the same
ANSI counts as on PostgreSQL, and the guard's settings refused before anything is touched."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
from pathlib import Path

from etl_cli import json_lines, ledger_rows, published_rows, run_cli

from fluxion_etl.config import Settings
from fluxion_etl.demo.runner import build_demo_stores
from fluxion_etl.ledger import QualityCounters
from fluxion_etl.run.guard import Limits, SnapshotGuard
from fluxion_etl.source.engines.base import FetchRequest
from fluxion_etl.source.query import default_query
from fluxion_etl.stores import Store


def stores_file(path: Path, stores: list[Store], warehouses: dict[str, str] | None = None) -> Path:
    warehouses = warehouses or {}
    path.write_text(
        "\n".join(
            f'[[stores]]\nid = "{s.id}"\nname = "{s.name}"\ntype = "{s.type}"\n'
            f'database = "{s.database}"\nwarehouse = "{warehouses.get(s.id, s.warehouse)}"\n'
            f'driver = "{s.driver}"\n'
            for s in stores
        ),
        encoding="utf-8",
    )
    return path


def environment(tmp_path: Path, stores: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))},
        "ETL_STORES_FILE": str(stores),
        "DATABASE_PATH": str(tmp_path / "target.duckdb"),
        "ETL_STAGING_DIR": str(tmp_path / "staging"),
    }


def test_a_sqlite_store_with_a_mistyped_warehouse_is_held_back_and_check_shows_why(
    tmp_path: Path,
) -> None:
    stores = build_demo_stores(tmp_path / "stores", count=2, products=200)
    first, second = stores
    env = environment(tmp_path, stores_file(tmp_path / "stores.toml", stores))
    db = Path(env["DATABASE_PATH"])
    assert run_cli(["run"], env).returncode == 0
    served = len(published_rows(db, first.id))
    stores_file(tmp_path / "stores.toml", stores, {first.id: "0120"})

    result = run_cli(["run"], env)
    checked = run_cli(["check"], env)
    listed = run_cli(["stores", "--warehouses"], env)

    assert result.returncode == 3, result.stdout[-3000:]
    assert len(published_rows(db, first.id)) == served
    entry = ledger_rows(db)[first.id]
    assert entry["error_tipo"] == "retenido"
    assert entry["error_mensaje"].startswith(
        f"{first.id}: snapshot held back: 0 rows where {served:,} were served; warehouse '0120' "
        f"is not in MA_DEPOSITO and has no stock rows in MA_DEPOPROD (codes with stock here: "
    )
    assert first.warehouse in entry["error_mensaje"]  # the right code is among those named
    (run,) = [d for d in json_lines(result.stdout) if "_aws" in d and "Store" not in d]
    assert run["StoresHeldBack"] == 1
    assert checked.returncode == 1
    assert "FAIL" in checked.stdout and "is not in MA_DEPOSITO" in checked.stdout
    assert listed.returncode == 0, listed.stderr
    configured = [line for line in listed.stdout.splitlines() if "<- configured" in line]
    assert len(configured) == 2
    assert "0120" in configured[0] and "(not in MA_DEPOSITO)" in configured[0]
    assert second.warehouse in configured[1] and "DEPOSITO" in configured[1]


def test_an_emptied_sqlite_stock_table_is_held_back_until_accepted(tmp_path: Path) -> None:
    (store,) = build_demo_stores(tmp_path / "stores", count=1, products=150)
    env = environment(tmp_path, stores_file(tmp_path / "stores.toml", [store]))
    db = Path(env["DATABASE_PATH"])
    assert run_cli(["run"], env).returncode == 0
    served = len(published_rows(db, store.id))
    with sqlite3.connect(store.database) as conn:
        conn.execute("DELETE FROM MA_DEPOPROD WHERE c_coddeposito = ?", [store.warehouse])

    held = run_cli(["run"], env)
    accepted = run_cli(["run"], {**env, "ETL_ACCEPT_SHRINK": store.id})

    assert held.returncode == 1
    held_entry = ledger_rows(db, json_lines(held.stdout)[-1]["run_id"])[store.id]
    assert "has no stock rows in MA_DEPOPROD" in held_entry["error_mensaje"]
    assert accepted.returncode == 0, accepted.stdout[-3000:]
    assert published_rows(db, store.id) == {}
    status = json.loads(run_cli(["status", "--json"], env).stdout)
    assert status[0]["guardia_aceptada"] == f"0 rows where {served:,} were served"
    assert status[0]["registros_servidos"] == 0


def test_bad_guard_settings_exit_2_with_one_line_before_touching_the_target(
    tmp_path: Path,
) -> None:
    stores = build_demo_stores(tmp_path / "stores", count=2, products=50)
    env = environment(tmp_path, stores_file(tmp_path / "stores.toml", stores))
    cases = [
        (["run"], {"ETL_MAX_SHRINK": "2"}, "ETL_MAX_SHRINK=2 must be between 0 and 1"),
        (["run"], {"ETL_MAX_REJECTED": "-1"}, "ETL_MAX_REJECTED=-1 must be between 0 and 1"),
        (["run", "--accept-shrink", "tienda_1"], {},
         "--accept-shrink: tienda_1 not among this run's stores (tienda_01, tienda_02)"),
        (["run", "--stores", "tienda_02"], {"ETL_ACCEPT_SHRINK": "tienda_01"},
         "ETL_ACCEPT_SHRINK: tienda_01 not among this run's stores (tienda_02)"),
        (["run", "--accept-shrink", "tienda_01,"], {}, "--accept-shrink='tienda_01,' has an empty"),
    ]  # fmt: skip
    for args, overrides, says in cases:
        result = run_cli(args, {**env, **overrides})
        assert result.returncode == 2, (args, overrides, result.stderr)
        assert result.stderr.startswith(f"fluxion-etl: configuration error: {says}"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not Path(env["DATABASE_PATH"]).exists()


def test_the_guard_asks_the_store_why_only_for_a_suspicious_snapshot(tmp_path: Path) -> None:
    """In a child process, like a fetch; a store that cannot answer costs only the cause."""
    (store,) = build_demo_stores(tmp_path / "stores", count=1, products=50)
    guard = SnapshotGuard(Limits(), served_at_start={store.id: 40})
    settings = Settings()
    empty = QualityCounters(0, 0, 0, 0, 0, 0, 0, 0)
    good = dataclasses.replace(empty, extracted=40, loaded=40)
    stop = threading.Event()

    def cause(target: Store, counters: QualityCounters) -> str | None:
        request = FetchRequest.for_store(target, settings, None, default_query())
        return guard.likely_cause(target, request, counters, stop)

    wrong = dataclasses.replace(store, warehouse="0120")
    assert cause(wrong, empty) is not None
    assert str(cause(wrong, empty)).startswith("warehouse '0120' is not in MA_DEPOSITO")
    assert cause(store, empty) == (
        f"warehouse '{store.warehouse}' (DEPOSITO {store.name}) has "
        f"{_stock_rows(store):,} stock rows in MA_DEPOPROD and the inventory query selected "
        "none of them"
    )
    broken = dataclasses.replace(store, database=str(tmp_path / "nothing.sqlite"))
    (tmp_path / "nothing.sqlite").write_bytes(b"")
    assert cause(broken, empty) is None  # no Stellar tables: the store cannot say why
    assert cause(broken, good) is None  # a good snapshot: the store is not even asked


def _stock_rows(store: Store) -> int:
    with sqlite3.connect(store.database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM MA_DEPOPROD WHERE c_coddeposito = ?", [store.warehouse]
        ).fetchone()
    return int(row[0])
