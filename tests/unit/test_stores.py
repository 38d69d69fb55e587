"""The stores file: the packaged example, validation, and selection."""

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from fluxion_etl.contract import StockThresholds
from fluxion_etl.errors import ConfigError
from fluxion_etl.stores import example_text, load_stores, parse_stores, select_stores

VALID = """
[[stores]]
id = "tienda_02"
name = "AV. BOLIVAR"
type = "tienda"
host = "192.168.2.10"
port = 14348
database = "VAD10"
warehouse = "0202"

[[stores]]
id = "cedi_seco"
name = "CEDI SECO"
type = "cedi"
host = "192.168.90.10"
port = 1433
database = "VAD20"
warehouse = "0001"
active = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stores.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_file_is_the_chains_layout() -> None:
    stores = parse_stores(tomllib.loads(example_text()))
    assert len(stores) == 22
    # only three CEDIs are still on Stellar; the stores and cedi_caracas moved to KLK
    assert {s.id: s.warehouse for s in stores if s.active} == {
        "cedi_seco": "1413",
        "cedi_frio": "1710",
        "cedi_verde": "1801",
    }
    assert {s.id for s in stores if s.type == "cedi"} == {
        "cedi_seco",
        "cedi_frio",
        "cedi_verde",
        "cedi_frutas",
        "cedi_caracas",
    }
    assert sum(s.type == "tienda" and not s.active for s in stores) == 17
    assert {s.almacen_codigo for s in stores if s.active} == {
        "CEDI-SECO",
        "CEDI-FRIO",
        "CEDI-VERDE",
    }
    by_id = {store.id: store for store in stores}
    assert by_id["tienda_02"].warehouse == "0202" and by_id["tienda_03"].name == "MAÑONGO"
    assert {store.port for store in stores} == {1433, 14348}
    assert "VAD20" in {store.database for store in stores}
    assert all(s.host.startswith("192.168.") for s in stores if s.host)
    assert "password" not in example_text().lower().replace("sql_pass", "")


def test_valid_file_loads(tmp_path: Path) -> None:
    stores = load_stores(write(tmp_path, VALID))
    assert [s.id for s in stores] == ["tienda_02", "cedi_seco"]
    assert stores[0].port == 14348 and stores[0].active and not stores[1].active
    assert stores[0].address == "192.168.2.10:14348"


def test_selection_defaults_to_active_and_rejects_unknown_ids(tmp_path: Path) -> None:
    stores = load_stores(write(tmp_path, VALID))
    assert [s.id for s in select_stores(stores, ())] == ["tienda_02"]
    assert [s.id for s in select_stores(stores, ("cedi_seco",))] == ["cedi_seco"]
    with pytest.raises(ConfigError, match="unknown store id.*tienda_99"):
        select_stores(stores, ("tienda_02", "tienda_99"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[stores]\nid=", "not valid TOML"),
        ("title = 'x'", "no \\[\\[stores\\]\\] entries"),
        (VALID.replace('id = "cedi_seco"', 'id = "tienda_02"'), "appears more than once"),
        (VALID.replace('id = "cedi_seco"', 'id = "CEDI-SECO"'), "must match"),
        (VALID.replace("port = 14348", 'port = "14348"'), "port must be a whole number"),
        (VALID.replace("port = 14348", "port = 70000"), "port must be a whole number"),
        (VALID.replace('type = "cedi"', 'type = "almacen"'), "type must be one of"),
        (VALID.replace('warehouse = "0202"', "warehouse = 202"), "'warehouse' is required"),
        (VALID.replace('host = "192.168.2.10"', 'host = ""'), "active store without a host"),
        (VALID.replace("port = 1433\n", "port = 1433\nuser = 'sa'\n"), "unknown field"),
        (VALID.replace("port = 1433\n", "port = 1433\nstock_minimo = -5\n"), "stock_minimo="),
        (VALID.replace("port = 1433\n", "port = 1433\npunto_reorden = 'x'\n"), "not a number"),
        (VALID.replace("port = 1433\n", "port = 1433\nstock_maximo = true\n"), "a number"),
        (VALID.replace("port = 1433\n", "port = 1433\nalmacen_codigo = ''\n"), "almacen_codigo"),
        (VALID.replace("port = 1433\n", f"port = 1433\nalmacen_codigo = '{'X' * 51}'\n"), "50"),
        (
            VALID.replace("port = 1433\n", "port = 1433\nalmacen_codigo = 'TIENDA-02'\n"),
            "stores 'tienda_02' and 'cedi_seco' share the warehouse code "
            "almacen_codigo='TIENDA-02'",
        ),
    ],
)
def test_broken_files_are_configuration_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_stores(write(tmp_path, text))


def test_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist.*stores --example"):
        load_stores(tmp_path / "nope.toml")


def test_a_stores_own_thresholds_override_the_settings_one_by_one(tmp_path: Path) -> None:
    text = VALID.replace("port = 1433\n", "port = 1433\nstock_minimo = 50\nstock_maximo = 900.5\n")
    tienda, cedi = load_stores(write(tmp_path, text))
    settings = StockThresholds(Decimal(10), Decimal(100), Decimal(20))
    assert tienda.thresholds(settings) == settings
    # the CEDI's minimum above the settings' reorder point: its bands make no sense
    with pytest.raises(ConfigError, match="store cedi_seco: stock thresholds must satisfy"):
        cedi.thresholds(settings)
    wider = StockThresholds(Decimal(10), Decimal(100), Decimal(60))
    assert cedi.thresholds(wider) == StockThresholds(Decimal(50), Decimal("900.5"), Decimal(60))


def test_the_warehouse_code_defaults_to_the_chains_convention(tmp_path: Path) -> None:
    stores = load_stores(write(tmp_path, VALID))
    assert [s.almacen_codigo for s in stores] == ["TIENDA-02", "CEDI-SECO"]
    given = load_stores(
        write(tmp_path, VALID.replace("port = 1433\n", "port = 1433\nalmacen_codigo = ' 1413 '\n"))
    )
    assert given[1].almacen_codigo == "1413"
