"""The soak command's input: bad input is one line and exit 2, before anything is created."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fluxion_harness.soak import main, parse_args
from fluxion_harness.soak_chain import shifted
from fluxion_harness.soak_target import DUCKDB_FAULTS, POSTGRES_FAULTS


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--faults", "store_down,meteor"], "unknown fault 'meteor'"),
        (["--runs", "0"], "--runs must be at least 1"),
        (["--runs", "-3"], "--runs must be at least 1"),
        (["--runs", "many"], "invalid int value"),
        (["--stores", "23"], "--stores must be 1..22"),  # the example's 22 locations
        (["--target", "oracle"], "invalid choice: 'oracle'"),
        (["--faults", "target_down"], "'target_down' does not apply to --target duckdb"),
        (["--target", "postgres", "--faults", "reader_holds"], "does not apply to --target"),
        (["--layout", "inventario_actual"], "is a PostgreSQL layout: add --target postgres"),
        (["--target", "postgres", "--layout", "ventas"], "invalid choice: 'ventas'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


def test_a_soak_without_the_postgresql_stand_in_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FLUXION_TEST_PG_HOST", raising=False)
    assert main(["--runs", "1"]) == 2
    assert "FLUXION_TEST_PG_HOST" in capsys.readouterr().err


def test_faults_default_to_every_kind_of_the_target_and_a_printed_random_seed() -> None:
    args = parse_args([])
    assert args.target == "duckdb" and args.faults == list(DUCKDB_FAULTS)
    assert args.runs == 50 and isinstance(args.seed, int)
    assert parse_args(["--target", "postgres"]).faults == list(POSTGRES_FAULTS)
    assert "writer_holds" not in POSTGRES_FAULTS and "target_down" not in DUCKDB_FAULTS
    assert parse_args(["--faults", "sigkill, sigkill", "--seed", "7"]).faults == ["sigkill"]
    assert args.layout == "inventario_raw"  # ETL_TARGET_LAYOUT's default
    assert parse_args(["--target", "postgres", "--layout", "inventario_actual"]).layout == (
        "inventario_actual"
    )


def test_each_run_shifts_every_nonzero_quantity_away_from_zero_so_its_rows_are_recognisable() -> (
    None
):
    assert shifted(Decimal("12.000"), 7) == Decimal("12.007")
    assert shifted(Decimal("-3.000"), 7) == Decimal("-3.007")
    assert shifted(Decimal("0.000"), 7) == Decimal("0.000")
    assert shifted(Decimal("5.000"), 1007) == shifted(Decimal("5.000"), 7)
