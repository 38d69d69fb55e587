"""The Stellar data generator: deterministic, every trap switchable, and an oracle that agrees
with an independent plain-Python reading of the business rules over the generated tables."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from fluxion_etl.demo.stellar import (
    CHAIN_LOCATIONS,
    DEFAULT_TRAPS,
    PROCURA_DEPARTMENT,
    SCHEMA,
    ExpectedRow,
    StellarStore,
    Traps,
    generate_store,
)

Row = dict[str, object]
TEXT_COLUMNS = {
    "MA_PRODUCTOS": ("c_Descri", "c_Marca", "Text2", "c_Presenta"),
    "MA_DEPARTAMENTOS": ("C_DESCRIPCIO",),
    "MA_GRUPOS": ("C_DESCRIPCIO",),
    "MA_SUBGRUPOS": ("C_DESCRIPCIO",),
}
SPECIAL_CHARACTERS = set("/%&()")


def rows(store: StellarStore, table: str) -> list[Row]:
    columns, values = store.tables[table]
    return [dict(zip(columns, row, strict=True)) for row in values]


def clean(text: object) -> str | None:
    """The publishing rule for texts: trim, collapse whitespace runs, NFC; blank -> None."""
    if text is None:
        return None
    assert isinstance(text, str)
    collapsed = " ".join(unicodedata.normalize("NFC", text).split())
    return collapsed or None


def is_barcode(code: Row) -> bool:
    return code["c_Descripcion"] == "BARRA" and code["nu_Intercambio"] == 1


def texts(store: StellarStore) -> list[str]:
    return [
        value
        for table, columns in TEXT_COLUMNS.items()
        for row in rows(store, table)
        for column in columns
        if isinstance(value := row[column], str)
    ]


def stock_here(store: StellarStore) -> list[Row]:
    return [s for s in rows(store, "MA_DEPOPROD") if s["c_coddeposito"] == store.warehouse]


def publish(store: StellarStore) -> tuple[int, dict[str, ExpectedRow]]:
    """The business rules applied to the tables in plain Python, independently of the generator:
    (rows selected before de-duplication, the published rows by code)."""
    products = {p["c_Codigo"]: p for p in rows(store, "MA_PRODUCTOS")}
    barcodes: dict[object, list[str]] = defaultdict(list)
    for code in rows(store, "MA_CODIGOS"):
        if is_barcode(code):
            barcodes[code["c_CodNasa"]].append(str(code["c_Codigo"]))
    departments = {d["C_CODIGO"]: d["C_DESCRIPCIO"] for d in rows(store, "MA_DEPARTAMENTOS")}
    groups = {
        (g["c_departamento"], g["c_CODIGO"]): g["C_DESCRIPCIO"] for g in rows(store, "MA_GRUPOS")
    }
    subgroups = {
        (s["c_in_departamento"], s["c_in_grupo"], s["c_CODIGO"]): s["C_DESCRIPCIO"]
        for s in rows(store, "MA_SUBGRUPOS")
    }
    selected: list[tuple[int, ExpectedRow]] = []
    for stock in stock_here(store):
        p = products.get(stock["c_codarticulo"])
        if (
            p is None
            or p["n_Activo"] != 1
            or p["n_TipoPeso"] != 0
            or p["c_Departamento"] == PROCURA_DEPARTMENT
            or not barcodes.get(p["c_Codigo"])
        ):
            continue
        dep, group = p["c_Departamento"], p["c_Grupo"]
        row = ExpectedRow(
            codigo_producto=str(p["c_Codigo"]).strip().upper(),
            codigo_barras=min(barcodes[p["c_Codigo"]]),
            descripcion_producto=clean(p["c_Descri"]),
            categoria=clean(departments.get(dep)),
            grupo=clean(groups.get((dep, group))),
            subgrupo=clean(subgroups.get((dep, group, p["c_Subgrupo"]))),
            marca=clean(p["c_Marca"]),
            presentacion=clean(p["c_Presenta"]),
            cuadrante=clean(p["Text2"]),
            cantidad_actual=stock["n_cantidad"],  # type: ignore[arg-type]
            costo_unitario_actual=p["n_CostoAct"],  # type: ignore[arg-type]
            precio_venta_actual=p["n_Precio1"],  # type: ignore[arg-type]
            impuesto_porcentaje=p["n_Impuesto1"],  # type: ignore[arg-type]
            peso_producto=p["n_Peso"],  # type: ignore[arg-type]
            volumen_producto=p["n_Volumen"],  # type: ignore[arg-type]
            cantidad_bultos=p["n_CantiBul"],  # type: ignore[arg-type]
        )
        selected.append((int(stock["id"]), row))  # type: ignore[call-overload]
    published: dict[str, ExpectedRow] = {}
    for _, row in sorted(selected, key=lambda pair: pair[0]):  # lowest stock row id wins
        published.setdefault(row.codigo_producto, row)
    return len(selected), published


def only(trap: str) -> Traps:
    """Every trap off except `trap`, at its default rate."""
    return dataclasses.replace(Traps.disabled(), **{trap: getattr(DEFAULT_TRAPS, trap)})


def all_but(trap: str) -> Traps:
    """Every trap at its default rate except `trap`, which is off."""
    return dataclasses.replace(DEFAULT_TRAPS, **{trap: getattr(Traps.disabled(), trap)})


def _multi_barcode(s: StellarStore) -> bool:
    counts = Counter(c["c_CodNasa"] for c in rows(s, "MA_CODIGOS") if is_barcode(c))
    return any(n >= 2 for n in counts.values())


def _no_barcode(s: StellarStore) -> bool:
    with_barcode = {c["c_CodNasa"] for c in rows(s, "MA_CODIGOS") if is_barcode(c)}
    return any(p["c_Codigo"] not in with_barcode for p in rows(s, "MA_PRODUCTOS"))


def _shared_group_codes(s: StellarStore) -> bool:
    departments_by_code: dict[object, set[object]] = defaultdict(set)
    for g in rows(s, "MA_GRUPOS"):
        departments_by_code[g["c_CODIGO"]].add(g["c_departamento"])
    return any(len(deps) > 1 for deps in departments_by_code.values())


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _not_stocked(s: StellarStore) -> bool:
    stocked = {row["c_codarticulo"] for row in stock_here(s)}
    return any(p["c_Codigo"] not in stocked for p in rows(s, "MA_PRODUCTOS"))


DETECTORS: dict[str, Callable[[StellarStore], bool]] = {
    "multi_barcode": _multi_barcode,
    "non_barcode_codes": lambda s: any(not is_barcode(c) for c in rows(s, "MA_CODIGOS")),
    "no_barcode": _no_barcode,
    "shared_group_codes": _shared_group_codes,
    "negative_stock": lambda s: any(r["n_cantidad"] < 0 for r in stock_here(s)),  # type: ignore[operator]
    "zero_stock": lambda s: any(r["n_cantidad"] == 0 for r in stock_here(s)),
    "null_cost": lambda s: any(p["n_CostoAct"] is None for p in rows(s, "MA_PRODUCTOS")),
    "null_price": lambda s: any(p["n_Precio1"] is None for p in rows(s, "MA_PRODUCTOS")),
    "null_description": lambda s: any(
        _blank(p[c]) for p in rows(s, "MA_PRODUCTOS") for c in TEXT_COLUMNS["MA_PRODUCTOS"]
    ),
    "long_description": lambda s: any(
        len(str(p["c_Descri"])) >= 300 for p in rows(s, "MA_PRODUCTOS")
    ),
    "dirty_text": lambda s: any(t.strip() and clean(t) != t for t in texts(s)),
    "special_text": lambda s: any(not t.isascii() or SPECIAL_CHARACTERS & set(t) for t in texts(s)),
    "lowercase_code": lambda s: any(
        p["c_Codigo"] != str(p["c_Codigo"]).strip().upper() for p in rows(s, "MA_PRODUCTOS")
    ),
    "inactive": lambda s: any(p["n_Activo"] == 0 for p in rows(s, "MA_PRODUCTOS")),
    "weighed": lambda s: any(p["n_TipoPeso"] != 0 for p in rows(s, "MA_PRODUCTOS")),
    "procura": lambda s: any(
        p["c_Departamento"] == PROCURA_DEPARTMENT for p in rows(s, "MA_PRODUCTOS")
    ),
    "duplicate_stock_rows": lambda s: any(
        n > 1 for n in Counter(r["c_codarticulo"] for r in stock_here(s)).values()
    ),
    "other_warehouses": lambda s: any(
        r["c_coddeposito"] != s.warehouse for r in rows(s, "MA_DEPOPROD")
    ),
    "not_stocked": _not_stocked,
}


def test_every_trap_has_a_detector() -> None:
    assert set(DETECTORS) == {f.name for f in dataclasses.fields(Traps)}


@pytest.fixture(scope="module")
def store() -> StellarStore:
    return generate_store("0202", 3000, seed=11)


def test_same_seed_gives_the_same_store() -> None:
    assert generate_store("0202", 800, seed=5) == generate_store("0202", 800, seed=5)


def test_different_seed_or_warehouse_gives_different_data() -> None:
    base = generate_store("0202", 800, seed=5)
    assert generate_store("0202", 800, seed=6).tables != base.tables
    assert generate_store("0302", 800, seed=5).tables["MA_PRODUCTOS"] != base.tables["MA_PRODUCTOS"]


DIGEST = (
    "import hashlib; from fluxion_etl.demo.stellar import generate_store;"
    "tables = generate_store('0202', 300, seed=4).tables;"
    "print(hashlib.sha256(repr(sorted(tables.items())).encode()).hexdigest())"
)


def test_generation_does_not_depend_on_the_hash_seed(repo_root: Path) -> None:
    digests = {
        subprocess.run(
            [sys.executable, "-c", DIGEST],
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(repo_root / "src")},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    tables = generate_store("0202", 300, seed=4).tables
    assert digests == {hashlib.sha256(repr(sorted(tables.items())).encode()).hexdigest()}


@pytest.mark.parametrize("trap", sorted(DETECTORS))
def test_trap_occurs_when_enabled_alone(trap: str) -> None:
    assert DETECTORS[trap](generate_store("0202", 2000, seed=3, traps=only(trap)))


@pytest.mark.parametrize("trap", sorted(DETECTORS))
def test_trap_does_not_occur_when_disabled(trap: str) -> None:
    assert not DETECTORS[trap](generate_store("0202", 2000, seed=3, traps=all_but(trap)))


def test_all_traps_occur_with_the_defaults(store: StellarStore) -> None:
    assert [t for t, found in DETECTORS.items() if not found(store)] == []


def test_without_traps_every_product_is_published_as_stored() -> None:
    clean_store = generate_store("0202", 500, seed=1, traps=Traps.disabled())
    assert len(clean_store.expected) == clean_store.products == 500
    assert clean_store.expected_duplicates_dropped == clean_store.excluded_products == 0
    assert clean_store.row_counts["MA_DEPOPROD"] == 500
    assert clean_store.row_counts["MA_CODIGOS"] == 500


def test_expected_rows_match_an_independent_reading_of_the_rules(store: StellarStore) -> None:
    selected, published = publish(store)
    assert selected == store.source_rows_selected
    assert published.keys() == store.expected.keys()
    different = [code for code, row in published.items() if row != store.expected[code]]
    assert different == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_expected_rows_match_the_rules_with_heavy_traps(seed: int) -> None:
    heavy = dataclasses.replace(
        DEFAULT_TRAPS,
        lowercase_code=0.3,
        duplicate_stock_rows=0.2,
        multi_barcode=0.5,
        non_barcode_codes=0.5,
        dirty_text=0.6,
        special_text=0.6,
        null_description=0.1,
    )
    store = generate_store("1710", 1500, seed=seed, traps=heavy)
    selected, published = publish(store)
    assert selected == store.source_rows_selected
    assert published == store.expected


def test_codes_differing_only_by_case_or_spaces_collide(store: StellarStore) -> None:
    stored_by_code: dict[str, set[object]] = defaultdict(set)
    for p in rows(store, "MA_PRODUCTOS"):
        stored_by_code[str(p["c_Codigo"]).strip().upper()].add(p["c_Codigo"])
    assert any(len(stored) > 1 for stored in stored_by_code.values())
    assert store.expected_duplicates_dropped > 0


def test_counters_agree_with_the_expected_rows(store: StellarStore) -> None:
    values = list(store.expected.values())
    assert store.expected_negative == sum(e.cantidad_actual < 0 for e in values) > 0
    assert store.expected_zero == sum(e.cantidad_actual == 0 for e in values) > 0
    assert store.expected_null_cost == sum(e.costo_unitario_actual is None for e in values) > 0
    assert store.expected_null_price == sum(e.precio_venta_actual is None for e in values) > 0
    assert (
        store.expected_null_description == sum(e.descripcion_producto is None for e in values) > 0
    )
    assert store.expected_duplicates_dropped == store.source_rows_selected - len(values)
    duplicate_rows = sum(
        n - 1 for n in Counter(r["c_codarticulo"] for r in stock_here(store)).values()
    )
    selected_products = store.source_rows_selected - duplicate_rows
    assert selected_products > 0
    assert store.products >= selected_products + store.excluded_products + store.unstocked_products
    assert store.row_counts["MA_PRODUCTOS"] == store.products


def test_clean_texts_carry_the_special_characters(store: StellarStore) -> None:
    published = "".join(
        t or ""
        for e in store.expected.values()
        for t in (e.descripcion_producto, e.marca, e.presentacion, e.cuadrante, e.categoria)
    )
    for character in "/%&Ñ()":
        assert character in published
    assert set(published) & set("ÁÉÍÓÚ")
    assert all(unicodedata.is_normalized("NFC", t) for t in texts(store) if t == clean(t))


def test_dirty_texts_include_nfd_accents_tabs_and_padding(store: StellarStore) -> None:
    dirty = [t for t in texts(store) if t.strip() and clean(t) != t]
    assert any(not unicodedata.is_normalized("NFC", t) for t in dirty)
    assert any("\t" in t for t in dirty)
    assert any(t != t.strip() for t in dirty)
    assert any("  " in t.strip() for t in dirty)


def test_texts_hold_no_control_character_but_tab(store: StellarStore) -> None:
    for _, values in store.tables.values():
        for row in values:
            for v in row:
                if isinstance(v, str):
                    assert all(ch == "\t" or unicodedata.category(ch)[0] != "C" for ch in v), v


def test_published_texts_are_upper_case_and_clean(store: StellarStore) -> None:
    for e in store.expected.values():
        for t in (e.descripcion_producto, e.categoria, e.grupo, e.subgrupo, e.marca):
            if t is not None:
                assert t == clean(t) and t == t.upper()
        assert e.codigo_producto == e.codigo_producto.strip().upper()
        assert e.codigo_barras.isdigit()


def test_rows_fit_the_schema(store: StellarStore) -> None:
    for table in SCHEMA:
        columns, values = store.tables[table.name]
        assert columns == table.column_names
        key = [columns.index(k) for k in table.primary_key]
        if key:
            keys = [tuple(row[k] for k in key) for row in values]
            assert len(set(keys)) == len(keys), f"{table.name}: duplicate primary key"
        for row in values:
            assert len(row) == len(columns)
            for column, value in zip(table.columns, row, strict=True):
                if value is None:
                    continue
                if column.kind == "int":
                    assert type(value) is int
                elif column.kind == "varchar":
                    assert isinstance(value, str) and len(value) <= column.size, (column, value)
                else:
                    assert isinstance(value, Decimal)
                    assert value.as_tuple().exponent == -column.scale, (column, value)
                    assert len(value.as_tuple().digits) <= column.size


def test_numbers_are_realistic(store: StellarStore) -> None:
    quantities = [r["n_cantidad"] for r in stock_here(store)]
    assert min(quantities) < 0 and max(quantities) <= 500  # type: ignore[type-var,operator]
    priced = [
        e
        for e in store.expected.values()
        if e.costo_unitario_actual is not None and e.precio_venta_actual is not None
    ]
    above_cost = sum(e.precio_venta_actual > e.costo_unitario_actual for e in priced)  # type: ignore[operator]
    assert 0.9 < above_cost / len(priced) < 1
    taxes = {e.impuesto_porcentaje for e in store.expected.values()}
    assert taxes == {Decimal("16.00"), Decimal("8.00"), Decimal("0.00")}
    decimals = {len(str(e.costo_unitario_actual).rstrip("0").partition(".")[2]) for e in priced}
    assert {2, 3, 4} <= decimals


@pytest.mark.parametrize(("products", "low", "high"), [(2500, 1850, 2100), (5000, 3700, 4000)])
def test_store_size_is_like_the_chains(products: int, low: int, high: int) -> None:
    assert low <= len(generate_store("0302", products, seed=7).expected) <= high


def test_long_descriptions_are_300_to_1000_characters(store: StellarStore) -> None:
    long = [
        e.descripcion_producto
        for e in store.expected.values()
        if e.descripcion_producto and len(e.descripcion_producto) > 120
    ]
    assert long and all(300 <= len(d) <= 1000 for d in long)


def test_other_warehouses_come_from_the_chain(store: StellarStore) -> None:
    chain = {loc.warehouse for loc in CHAIN_LOCATIONS}
    assert len(store.other_warehouses) == DEFAULT_TRAPS.other_warehouses
    assert set(store.other_warehouses) <= chain - {store.warehouse}
    deposits = {d["c_coddeposito"] for d in rows(store, "MA_DEPOSITO")}
    assert deposits == {store.warehouse, *store.other_warehouses}


def test_invalid_knobs_are_refused() -> None:
    with pytest.raises(ValueError, match="multi_barcode"):
        Traps(multi_barcode=1.5)
    with pytest.raises(ValueError, match="products"):
        generate_store("0202", -1)
