"""The snapshot guard's rule, its settings, and what it writes: pure functions, no services."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import pytest

from fluxion_etl.config import Settings
from fluxion_etl.errors import ConfigError, PublishLockTimeout, SnapshotHeldBack
from fluxion_etl.ledger import LedgerEntry, QualityCounters
from fluxion_etl.run.guard import Limits, SnapshotGuard, accepted_stores, judge
from fluxion_etl.stores import Store
from fluxion_etl.targets.duckdb import schema
from fluxion_etl.targets.duckdb.status import store_status

DEFAULT = Limits()


def verdict_rules(
    fetched: int, rejected: int, loaded: int, served: int, limits: Limits = DEFAULT
) -> tuple[str, ...]:
    return judge(
        fetched=fetched,
        rejected=rejected,
        loaded=loaded,
        served=served,
        limits=limits,
        accepted=False,
    ).broken


@pytest.mark.parametrize(
    ("fetched", "rejected", "loaded", "served", "broken"),
    [
        # a snapshot like the one served, or a normal change: published
        (402, 0, 402, 402, ()),
        (500, 0, 480, 402, ()),
        (300, 0, 201, 402, ()),  # 201 >= 0.5 x 402 = 201: the boundary publishes
        (300, 0, 200, 402, ("shrink",)),  # one row under half: held back
        (1, 0, 1, 3, ("shrink",)),
        # empty: held back whether or not the store served rows before
        (0, 0, 0, 402, ("empty",)),
        (0, 0, 0, 0, ("empty",)),
        # all rows rejected: empty, and the rejected rule says why
        (50, 50, 0, 402, ("empty", "rejected")),
        (50, 50, 0, 0, ("empty", "rejected")),
        # rejected rows: more than 5 % of the fetched rows holds back, exactly 5 % does not
        (100, 5, 95, 100, ()),
        (100, 6, 94, 100, ("rejected",)),
        (60, 3, 57, 0, ()),  # 3/60 is exactly 0.05
        # a new store (nothing served) is never judged by the shrink rule
        (10, 0, 10, 0, ()),
        (1000, 100, 900, 0, ("rejected",)),
        # duplicates dropped are not rejections
        (1000, 0, 400, 420, ()),
        # both rules at once: both named
        (200, 100, 100, 402, ("shrink", "rejected")),
    ],
)
def test_each_rule_holds_back_exactly_the_snapshots_it_describes(
    fetched: int, rejected: int, loaded: int, served: int, broken: tuple[str, ...]
) -> None:
    assert verdict_rules(fetched, rejected, loaded, served) == broken


def test_thresholds_move_the_boundaries_and_their_extremes_turn_a_rule_off() -> None:
    assert verdict_rules(100, 0, 89, 100, Limits(max_shrink=0.9)) == ("shrink",)
    assert verdict_rules(100, 0, 90, 100, Limits(max_shrink=0.9)) == ()
    assert verdict_rules(100, 0, 99, 100, Limits(max_shrink=1.0)) == ("shrink",)
    assert verdict_rules(100, 0, 1, 100_000, Limits(max_shrink=0.0)) == ()
    assert verdict_rules(100, 1, 99, 99, Limits(max_rejected=0.0)) == ("rejected",)
    assert verdict_rules(100, 99, 1, 1, Limits(max_rejected=1.0)) == ()
    # an empty snapshot has no threshold: only an explicit acceptance publishes it
    assert verdict_rules(0, 0, 0, 5, Limits(max_shrink=0.0, max_rejected=1.0)) == ("empty",)


def test_the_message_carries_the_numbers_of_every_broken_rule() -> None:
    empty = judge(fetched=0, rejected=0, loaded=0, served=402, limits=DEFAULT, accepted=False)
    assert empty.message == "0 rows where 402 were served"
    new = judge(fetched=0, rejected=0, loaded=0, served=0, limits=DEFAULT, accepted=False)
    assert "0 rows" in new.message and "none published yet" in new.message
    both = judge(fetched=4000, rejected=400, loaded=1500, served=3200, limits=DEFAULT,
                 accepted=False)  # fmt: skip
    assert both.message == (
        "1,500 rows where 3,200 were served (fewer than ETL_MAX_SHRINK=0.5 of them); "
        "400 of 4,000 fetched rows rejected for no product code or no numeric quantity "
        "(10.0%, more than ETL_MAX_REJECTED=0.05)"
    )
    fine = judge(fetched=10, rejected=0, loaded=10, served=10, limits=DEFAULT, accepted=False)
    assert (fine.broken, fine.message, fine.publish, fine.held_back) == ((), "", True, False)


def test_acceptance_publishes_a_broken_snapshot_and_means_nothing_for_a_good_one() -> None:
    held = judge(fetched=0, rejected=0, loaded=0, served=9, limits=DEFAULT, accepted=False)
    assert held.held_back and not held.accepted
    accepted = judge(fetched=0, rejected=0, loaded=0, served=9, limits=DEFAULT, accepted=True)
    assert accepted.publish and accepted.accepted and accepted.broken == ("empty",)
    good = judge(fetched=9, rejected=0, loaded=9, served=9, limits=DEFAULT, accepted=True)
    assert good.publish and not good.accepted


def test_thresholds_and_acceptances_come_from_the_environment() -> None:
    defaults = Settings.from_env({})
    assert (defaults.max_shrink, defaults.max_rejected, defaults.accept_shrink) == (0.5, 0.05, ())
    settings = Settings.from_env(
        {"ETL_MAX_SHRINK": "0.8", "ETL_MAX_REJECTED": "0", "ETL_ACCEPT_SHRINK": "tienda_02, all"}
    )
    assert (settings.max_shrink, settings.max_rejected) == (0.8, 0.0)
    assert settings.accept_shrink == ("tienda_02", "all")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ETL_MAX_SHRINK", "1.5", "ETL_MAX_SHRINK=1.5 must be between 0 and 1"),
        ("ETL_MAX_SHRINK", "-0.1", "ETL_MAX_SHRINK=-0.1 must be between 0 and 1"),
        ("ETL_MAX_SHRINK", "nan", "ETL_MAX_SHRINK=nan must be between 0 and 1"),
        ("ETL_MAX_SHRINK", "half", "ETL_MAX_SHRINK='half' is not a number"),
        ("ETL_MAX_REJECTED", "5%", "ETL_MAX_REJECTED='5%' is not a number"),
        ("ETL_MAX_REJECTED", "5", "ETL_MAX_REJECTED=5 must be between 0 and 1"),
        ("ETL_ACCEPT_SHRINK", "tienda_02,", "ETL_ACCEPT_SHRINK='tienda_02,' has an empty store id"),
    ],
)
def test_a_bad_guard_setting_is_one_clear_configuration_error(
    name: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(says) and "\n" not in str(caught.value)


def store(store_id: str) -> Store:
    return Store(store_id, store_id.upper(), "tienda", "127.0.0.1", 9, "VAD10", "0202")


def test_accepted_ids_must_be_stores_of_the_run() -> None:
    stores = [store("tienda_02"), store("tienda_03")]
    assert accepted_stores(("tienda_03",), stores, "--accept-shrink") == {"tienda_03"}
    assert accepted_stores(("all",), stores, "ETL_ACCEPT_SHRINK") == {"tienda_02", "tienda_03"}
    assert accepted_stores((), stores, "ETL_ACCEPT_SHRINK") == frozenset()
    with pytest.raises(ConfigError) as caught:
        accepted_stores(("tienda_03", "tienda_3"), stores, "--accept-shrink")
    assert str(caught.value) == (
        "--accept-shrink: tienda_3 not among this run's stores (tienda_02, tienda_03)"
    )


COUNTERS = QualityCounters(extracted=0, loaded=0, rejected=0, duplicates=0, negative_stock=0,
                           missing_price=0, missing_description=0, invalid_values=0)  # fmt: skip
NOW = dt.datetime(2026, 12, 1, 12, 0, 0)
ENTRY = LedgerEntry("r1", "tienda_02", "exitoso", NOW, NOW, attempts=1, engine="arrow",
                    counters=COUNTERS)  # fmt: skip


def test_the_publish_check_raises_with_numbers_and_cause_for_a_held_back_snapshot() -> None:
    guard = SnapshotGuard(Limits(), run_id="r1")
    cause = "warehouse '9999' is not in MA_DEPOSITO"
    check = guard.vet(store("tienda_02"), COUNTERS, cause)
    with pytest.raises(SnapshotHeldBack) as caught:
        check(ENTRY, 402)
    message = str(caught.value)
    assert message.startswith(
        "tienda_02: snapshot held back: 0 rows where 402 were served; "
        "warehouse '9999' is not in MA_DEPOSITO."
    )
    assert "Not published (it keeps serving its previous 402 rows)" in message
    assert message.endswith("fluxion-etl run --stores tienda_02 --accept-shrink tienda_02")
    with pytest.raises(SnapshotHeldBack, match=r"Not published \(none yet\)"):
        check(ENTRY, 0)  # a new store: nothing to keep serving
    assert caught.value.error_tipo == "retenido" and not caught.value.transient


def test_the_publish_check_notes_an_accepted_snapshot_and_leaves_a_good_one_alone() -> None:
    accepting = SnapshotGuard(Limits(), accepted=("tienda_02",))
    written = accepting.vet(store("tienda_02"), COUNTERS, None)(ENTRY, 402)
    assert written == replace(ENTRY, guard_note="0 rows where 402 were served")
    everyone = SnapshotGuard(Limits(), accepted=("all",))
    assert everyone.vet(store("tienda_02"), COUNTERS, None)(ENTRY, 7).guard_note is not None
    good = replace(COUNTERS, extracted=400, loaded=400)
    assert SnapshotGuard(Limits()).vet(store("tienda_02"), good, None)(ENTRY, 402) is ENTRY
    other = SnapshotGuard(Limits(), accepted=("tienda_03",))
    with pytest.raises(SnapshotHeldBack):
        other.vet(store("tienda_02"), COUNTERS, None)(ENTRY, 402)


def version_1_file() -> duckdb.DuckDBPyConnection:
    """A target as a release before the guard left it: schema version 1 only."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE fluxion_schema_version (version INTEGER PRIMARY KEY, aplicada TIMESTAMP)"
    )
    con.execute(schema.MIGRATIONS[0][1])
    con.execute("INSERT INTO fluxion_schema_version VALUES (1, now())")
    return con


def test_the_ledger_records_an_accepted_snapshot_after_migrating_an_older_file() -> None:
    con = version_1_file()
    assert schema.migrate(con) == 1
    schema.open_run(con, "r1", ["tienda_02"], "arrow")
    schema.close_entry(con, replace(ENTRY, guard_note="0 rows where 402 were served"))
    assert con.execute("SELECT guardia_aceptada FROM etl_ejecuciones").fetchall() == [
        ("0 rows where 402 were served",)
    ]
    assert schema.last_runs(con)[0]["guardia_aceptada"] == "0 rows where 402 were served"


def test_status_reads_a_file_an_older_release_wrote_before_it_is_migrated() -> None:
    con = version_1_file()
    con.execute(
        "INSERT INTO etl_ejecuciones (run_id, etl_tipo, ubicacion_id, estado, fecha_inicio) "
        "VALUES ('r0', 'inventario', 'tienda_02', 'fallido', now())"
    )
    (row,) = store_status(con)  # not migrated: no guardia_aceptada column, and no error
    assert "guardia_aceptada" not in row
    assert (row["estado"], row["registros_servidos"]) == ("fallido", 0)


def test_a_migration_numbered_below_the_highest_applied_still_runs_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Migrations developed side by side land in either order: a file that has 1 and 3 still
    gets 2 from a release that has all three, and nothing runs twice."""
    first, second, third = (
        (1, "CREATE TABLE a (x INTEGER);"),
        (2, "CREATE TABLE b (x INTEGER);"),
        (3, "CREATE TABLE c (x INTEGER);"),
    )
    con = duckdb.connect()
    monkeypatch.setattr(schema, "MIGRATIONS", (first, third))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    assert schema.migrate(con) == 0
    monkeypatch.setattr(schema, "MIGRATIONS", (first, second, third))
    assert schema.migrate(con) == 3  # CREATE TABLE a/c again would fail: they do not rerun
    assert schema.migrate(con) == 3
    tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    assert {"a", "b", "c"} <= tables
    versions = con.execute("SELECT version FROM fluxion_schema_version ORDER BY 1").fetchall()
    assert versions == [(1,), (2,), (3,)]


def test_a_failed_count_at_the_start_costs_the_causes_not_the_run() -> None:
    def locked() -> dict[str, int]:
        raise PublishLockTimeout("target.duckdb stayed locked by another process")

    guard = SnapshotGuard(Limits(), served_at_start={"tienda_02": 5})
    guard.read_served(locked)
    assert guard.served_at_start == {"tienda_02": 5}
    guard.read_served(lambda: {"tienda_02": 402})
    assert guard.served_at_start == {"tienda_02": 402}
