"""What fluxion says about a store's warehouses: which code is wrong and why (pure functions)."""

from __future__ import annotations

from fluxion_etl.source.warehouses import (
    SUGGESTED_CODES,
    StoreWarehouses,
    Warehouse,
    likely_cause,
    warehouse_problem,
)
from fluxion_etl.stores import Store

FOUND = [
    Warehouse("0102", "DEPOSITO PERIFERICO", True, 2900),
    Warehouse("0202", "DEPOSITO AV. BOLIVAR", True, 3100),
    Warehouse("0203", "DEPOSITO DAÑADOS", True, 0),
    Warehouse("0777", None, False, 12),
]


def test_a_code_the_database_does_not_know_names_the_codes_that_have_stock() -> None:
    assert warehouse_problem("9999", FOUND) == (
        "warehouse '9999' is not in MA_DEPOSITO and has no stock rows in MA_DEPOPROD "
        "(codes with stock here: 0102, 0202, 0777; `fluxion-etl stores --warehouses` lists them)"
    )


def test_a_long_list_of_codes_is_cut_short() -> None:
    many = [Warehouse(f"{n:04d}", None, True, 1) for n in range(SUGGESTED_CODES + 3)]
    problem = warehouse_problem("9999", many)
    assert problem is not None and "0007, ...;" in problem and "0008" not in problem


def test_a_known_code_without_stock_or_outside_ma_deposito_is_a_problem() -> None:
    assert warehouse_problem("0203", FOUND) == (
        "warehouse '0203' (DEPOSITO DAÑADOS) has no stock rows in MA_DEPOPROD"
    )
    assert warehouse_problem("0777", FOUND) == (
        "warehouse '0777' has 12 stock rows in MA_DEPOPROD but is not in MA_DEPOSITO"
    )


def test_a_good_code_is_no_problem_even_padded_as_sql_server_char_columns_are() -> None:
    assert warehouse_problem("0202", FOUND) is None
    assert warehouse_problem("0202  ", FOUND) is None


def test_the_likely_cause_of_a_small_snapshot_from_a_good_code_gives_both_counts() -> None:
    assert likely_cause("0202", FOUND, 0) == (
        "warehouse '0202' (DEPOSITO AV. BOLIVAR) has 3,100 stock rows in MA_DEPOPROD and the "
        "inventory query selected none of them"
    )
    assert likely_cause("0202", FOUND, 1200).endswith("the inventory query selected 1,200")
    assert likely_cause("9999", FOUND, 0).startswith("warehouse '9999' is not in MA_DEPOSITO")


def test_the_warehouse_listing_marks_the_configured_code_and_adds_it_when_missing() -> None:
    def listing(code: str) -> list[tuple[str, bool]]:
        store = Store("tienda_02", "AV. BOLIVAR", "tienda", "h", 1, "VAD10", code)
        return [(w.code, mark) for w, mark in StoreWarehouses(store, tuple(FOUND)).rows()]

    assert listing("0202") == [("0102", False), ("0202", True), ("0203", False), ("0777", False)]
    assert listing("9999")[-1] == ("9999", True)
    assert [mark for _, mark in listing("9999")].count(True) == 1
