"""Per-store EMF documents and snapshot freshness, on a real (in-memory and file) DuckDB ledger."""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fluxion_etl.config import Settings
from fluxion_etl.errors import ConfigError
from fluxion_etl.freshness import format_age
from fluxion_etl.ledger import LedgerEntry, QualityCounters, utcnow
from fluxion_etl.metrics import RUN_METRICS, STORE_METRICS, emf_line, store_emf_line
from fluxion_etl.run_metrics import stale_values, store_lines, store_values
from fluxion_etl.targets.duckdb.freshness import from_ledger, read_freshness
from fluxion_etl.targets.duckdb.schema import close_entry, migrate, open_run

NOW = dt.datetime(2026, 12, 1, 12, 0, 0)


def entry(store_id: str, state: str, finished: dt.datetime, loaded: int = 0) -> LedgerEntry:
    counters = QualityCounters(loaded, loaded, 0, 0, 0, 0, 0, 0) if state == "exitoso" else None
    return LedgerEntry(
        "r1", store_id, state, finished - dt.timedelta(seconds=42), finished, attempts=1,
        engine="arrow", counters=counters, error_tipo=None if counters else "conexion",
    )  # fmt: skip


def ledger_with(*entries: LedgerEntry) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate(con)
    for e in entries:
        open_run(con, e.run_id, [e.store_id], "arrow")
        close_entry(con, e)
    return con


def document(line: str) -> dict[str, Any]:
    return dict(json.loads(line))


def test_a_store_document_has_the_store_as_its_second_dimension() -> None:
    doc = document(store_emf_line({"StoreRowsPublished": 7, "StoreFailed": 0}, "prod", "t_02", "r"))
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["Environment", "Store"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "StoreRowsPublished": "Count",
        "StoreFailed": "Count",
    }
    assert (doc["Environment"], doc["Store"], doc["run_id"]) == ("prod", "t_02", "r")
    assert (doc["StoreRowsPublished"], doc["StoreFailed"]) == (7, 0)


def test_run_and_store_metric_names_do_not_mix() -> None:
    assert not set(RUN_METRICS) & set(STORE_METRICS)
    with pytest.raises(ValueError, match="unknown metric"):
        store_emf_line({"RowsPublished": 1}, "prod", "t_02", "r")
    with pytest.raises(ValueError, match="unknown metric"):
        emf_line({"StoreFailed": 1}, "prod", "r")


def test_ages_come_from_the_last_successful_snapshot_not_the_last_run() -> None:
    con = ledger_with(
        entry("tienda_02", "exitoso", NOW - dt.timedelta(hours=1), loaded=5),
        # tienda_03 published 20 h ago and failed since: it still serves the 20 h old snapshot
        LedgerEntry("old", "tienda_03", "exitoso", NOW - dt.timedelta(hours=21),
                    NOW - dt.timedelta(hours=20), 1, "arrow", QualityCounters(*[1] * 8)),
        entry("tienda_03", "fallido", NOW - dt.timedelta(minutes=5)),
        entry("tienda_04", "fallido", NOW - dt.timedelta(minutes=5)),
    )  # fmt: skip
    freshness = from_ledger(con, ["tienda_02", "tienda_03", "tienda_04"], 12 * 3600, now=NOW)
    assert freshness.ages == {"tienda_02": 3600.0, "tienda_03": 20 * 3600.0, "tienda_04": None}
    assert freshness.stale == ("tienda_03", "tienda_04")  # too old, and never published
    assert stale_values(freshness) == {"StoresStale": 2}
    assert stale_values(None) == {}


def test_a_target_without_a_ledger_means_every_store_was_never_published(tmp_path: Path) -> None:
    freshness = read_freshness(tmp_path / "absent.duckdb", ["tienda_02"], 60)
    assert freshness is not None and freshness.stale == ("tienda_02",)
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    freshness = read_freshness(tmp_path / "empty.duckdb", ["tienda_02"], 60)
    assert freshness is not None and freshness.ages == {"tienda_02": None}


def test_freshness_is_read_back_from_a_target_file(tmp_path: Path) -> None:
    path = tmp_path / "target.duckdb"
    with duckdb.connect(str(path)) as con:
        migrate(con)
        open_run(con, "r1", ["tienda_02"], "arrow")
        close_entry(con, entry("tienda_02", "exitoso", utcnow() - dt.timedelta(minutes=10), 3))
    freshness = read_freshness(path, ["tienda_02"], 3600)
    assert freshness is not None
    age = freshness.ages["tienda_02"]
    assert age is not None and 600 <= age < 660
    assert freshness.stale == ()


def test_store_values_of_a_published_a_failed_and_an_unreached_store() -> None:
    published = entry("tienda_02", "exitoso", NOW, loaded=1234)
    assert store_values(published, 30.0) == {
        "StoreRowsPublished": 1234,
        "StoreFailed": 0,
        "StoreDurationSeconds": 42.0,
        "StoreSnapshotAgeSeconds": 30.0,
    }
    failed = entry("tienda_03", "fallido", NOW)
    assert store_values(failed, 7200.0) == {
        "StoreRowsPublished": 0,
        "StoreFailed": 1,
        "StoreDurationSeconds": 42.0,
        "StoreSnapshotAgeSeconds": 7200.0,
    }
    # The run failed before or outside the stores: not a store failure; only the age is known.
    assert store_values(None, 7200.0) == {"StoreSnapshotAgeSeconds": 7200.0}
    assert store_values(None, None) == {}


def test_store_lines_give_one_document_per_store_of_the_run_in_order() -> None:
    con = ledger_with(entry("tienda_02", "exitoso", NOW - dt.timedelta(hours=1), loaded=5))
    freshness = from_ledger(con, ["tienda_05", "tienda_02"], 3600 * 12, now=NOW)
    outcomes = [entry("tienda_02", "exitoso", NOW, 5), entry("tienda_05", "fallido", NOW)]
    docs = [
        document(line)
        for line in store_lines(["tienda_05", "tienda_02"], outcomes, freshness, "prod", "r")
    ]
    assert [d["Store"] for d in docs] == ["tienda_05", "tienda_02"]
    assert (docs[0]["StoreFailed"], "StoreSnapshotAgeSeconds" in docs[0]) == (1, False)
    assert (docs[1]["StoreRowsPublished"], docs[1]["StoreSnapshotAgeSeconds"]) == (5, 3600.0)
    # A run that failed outright: only stores with a known age have a document.
    (aged,) = store_lines(["tienda_05", "tienda_02"], [], freshness, "prod", "r")
    assert document(aged)["Store"] == "tienda_02" and "StoreFailed" not in document(aged)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "never"), (59.9, "0m 59s"), (3725, "1h 2m"), (2 * 86400 + 3 * 3600 + 5, "2d 3h")],
)
def test_ages_read_as_days_hours_minutes(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


def test_the_stale_threshold_defaults_to_two_schedule_periods_and_is_validated() -> None:
    assert Settings.from_env({}).stale_after_seconds == 2 * 21600
    assert Settings.from_env({"ETL_STALE_AFTER_SECONDS": "3600"}).stale_after_seconds == 3600
    with pytest.raises(ConfigError, match="ETL_STALE_AFTER_SECONDS='soon' is not a number"):
        Settings.from_env({"ETL_STALE_AFTER_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="ETL_STALE_AFTER_SECONDS=10 must be at least 60"):
        Settings.from_env({"ETL_STALE_AFTER_SECONDS": "10"})
