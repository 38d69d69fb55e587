"""The stores file: which locations exist, where their databases are, which ones to run.

The file is validated as a whole before anything connects, and every problem names the file,
the entry and the field, because the person fixing it is usually reading a log at 3 a.m.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from fluxion_etl.contract import THRESHOLD_KEYS, StockThresholds, parse_threshold
from fluxion_etl.errors import ConfigError

STORE_ID = re.compile(r"^[a-z0-9_]+$")
STORE_TYPES = ("tienda", "cedi")
#: a Stellar warehouse code (c_codigo of MA_DEPOSITO): letters, digits, inner ``_ . -``
WAREHOUSE_CODE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,30}[A-Za-z0-9])?$")
_FIELDS = {
    "id",
    "name",
    "type",
    "host",
    "port",
    "database",
    "warehouse",
    "active",
    "driver",
    "almacen_codigo",
    *THRESHOLD_KEYS,
}
#: ``almacenes.codigo`` is VARCHAR(50) in the chain's backend.
ALMACEN_CODIGO_MAX = 50


def default_almacen_codigo(store_id: str) -> str:
    """The chain's convention for a location's warehouse code: ``cedi_seco`` -> ``CEDI-SECO``."""
    return store_id.upper().replace("_", "-")


@dataclass(frozen=True)
class Store:
    """One location and how to reach its Stellar database."""

    id: str
    name: str
    type: str
    host: str
    port: int
    database: str
    warehouse: str
    active: bool = True
    driver: str | None = None
    #: the warehouse code it publishes under in the ``inventario_actual`` layout
    #: (``almacenes.codigo``); None: derived from the id (:func:`default_almacen_codigo`)
    almacen: str | None = None
    #: the location's own stock thresholds (stock_minimo, stock_maximo, punto_reorden), if any
    stock: dict[str, Decimal] = field(default_factory=dict, compare=False)

    def thresholds(self, default: StockThresholds) -> StockThresholds:
        """The location's estado_stock thresholds: its own keys over ``default`` (the settings).

        ConfigError if the merged bands make no sense (checked before the run starts).
        """
        return default.merged(self.stock).checked(f"store {self.id}")

    @property
    def almacen_codigo(self) -> str:
        """The location's warehouse code in the chain's tables (``almacen_codigo``)."""
        return self.almacen or default_almacen_codigo(self.id)

    def odbc_driver(self, default: str) -> str:
        """The store's own driver override, else ``default`` (SQL_ODBC_DRIVER)."""
        return self.driver or default

    @property
    def address(self) -> str:
        """Where the store's database is, for messages (never contains credentials)."""
        return self.database if _is_file_source(self) else f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """``tienda_02 (192.168.2.10:14348)``: how messages name the store."""
        return f"{self.id} ({self.address})"


def example_text() -> str:
    """The commented example stores file (the chain's 22 locations, three of them active on
    Stellar; placeholder addresses)."""
    return (resources.files("fluxion_etl") / "data" / "stores.example.toml").read_text("utf-8")


def load_stores(path: Path) -> list[Store]:
    """Read and validate the stores file at ``path``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"stores file {path} does not exist (set ETL_STORES_FILE; "
            "`fluxion-etl stores --example` prints a template)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"stores file {path} cannot be read: {exc.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"stores file {path} is not valid TOML: {exc}") from None
    return parse_stores(document, source=str(path))


def parse_stores(document: dict[str, Any], source: str = "stores file") -> list[Store]:
    """Validate an already-parsed stores document (``{"stores": [ {...}, ... ]}``)."""
    entries = document.get("stores")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: no [[stores]] entries")
    stores = [_parse_entry(entry, index, source) for index, entry in enumerate(entries, 1)]
    seen: set[str] = set()
    for store in stores:
        if store.id in seen:
            raise ConfigError(f"{source}: store id {store.id!r} appears more than once")
        seen.add(store.id)
    owners: dict[str, str] = {}
    for store in stores:
        other = owners.setdefault(store.almacen_codigo, store.id)
        if other != store.id:
            raise ConfigError(
                f"{source}: stores {other!r} and {store.id!r} share the warehouse code "
                f"almacen_codigo={store.almacen_codigo!r}: each location needs its own "
                "(its rows would be published under the other's warehouse)"
            )
    return stores


def select_stores(stores: Sequence[Store], wanted: Iterable[str]) -> list[Store]:
    """The stores a run covers: the ``wanted`` ids (any, even inactive), else all active ones.

    Asking for an id that is not configured is a configuration error, never a silent skip.
    """
    wanted = tuple(wanted)
    if not wanted:
        selected = [store for store in stores if store.active]
        if not selected:
            raise ConfigError("no active store in the stores file")
        return selected
    by_id = {store.id: store for store in stores}
    unknown = [store_id for store_id in wanted if store_id not in by_id]
    if unknown:
        raise ConfigError(
            f"unknown store id(s): {', '.join(unknown)} (configured: {', '.join(by_id)})"
        )
    selected = [by_id[store_id] for store_id in wanted]
    for store in selected:
        if not store.host and not _is_file_source(store):
            raise ConfigError(f"store {store.id} has no host configured yet")
    return selected


def _is_file_source(store: Store) -> bool:
    return "sqlite" in (store.driver or "").lower()


def _parse_entry(entry: object, index: int, source: str) -> Store:
    where = f"{source}: stores entry #{index}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is not a table")
    extra = sorted(set(entry) - _FIELDS)
    if extra:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(extra)}")
    store_id = _required_str(entry, "id", where)
    where = f"{source}: store {store_id!r}"
    if not STORE_ID.match(store_id):
        raise ConfigError(f"{where}: id must match [a-z0-9_]+")
    store_type = _required_str(entry, "type", where)
    if store_type not in STORE_TYPES:
        raise ConfigError(f"{where}: type must be one of {', '.join(STORE_TYPES)}")
    port = entry.get("port", 1433)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ConfigError(f"{where}: port must be a whole number between 1 and 65535")
    active = entry.get("active", True)
    if not isinstance(active, bool):
        raise ConfigError(f"{where}: active must be true or false")
    driver = entry.get("driver")
    if driver is not None and (not isinstance(driver, str) or not driver.strip()):
        raise ConfigError(f"{where}: driver must be a non-empty string when given")
    host = entry.get("host", "")
    if not isinstance(host, str):
        raise ConfigError(f"{where}: host must be a string")
    almacen = entry.get("almacen_codigo")
    if almacen is not None and (
        not isinstance(almacen, str)
        or not almacen.strip()
        or len(almacen.strip()) > ALMACEN_CODIGO_MAX
    ):
        raise ConfigError(
            f"{where}: almacen_codigo must be a non-empty string of at most "
            f"{ALMACEN_CODIGO_MAX} characters when given"
        )
    store = Store(
        id=store_id,
        name=_required_str(entry, "name", where),
        type=store_type,
        host=host.strip(),
        port=port,
        database=_required_str(entry, "database", where),
        warehouse=_required_str(entry, "warehouse", where),
        active=active,
        driver=driver.strip() if driver else None,
        almacen=almacen.strip() if almacen else None,
        stock={
            key: parse_threshold(entry[key], f"{where}: {key}")
            for key in THRESHOLD_KEYS
            if key in entry
        },
    )
    if not WAREHOUSE_CODE.match(store.warehouse):
        raise ConfigError(
            f"{where}: field 'warehouse' must be a warehouse code (letters, digits, inner _ . -),"
            f" not {store.warehouse!r}"
        )
    if store.active and not store.host and not _is_file_source(store):
        raise ConfigError(
            f"{where}: active store without a host (set active = false until it has one)"
        )
    return store


def _required_str(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: field {key!r} is required and must be a non-empty string")
    return value.strip()
