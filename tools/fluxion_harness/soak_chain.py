"""The soak's chain: K stores on the PostgreSQL stand-in whose stock changes before every run.

Each store's stock rows are kept in a base table (``soak_base``); before run ``n`` the live
``ma_depoprod`` is rewritten from it with every non-zero quantity moved away from zero by
``n / 1000`` (``12.000`` becomes ``12.007`` in run 7, ``-3.000`` becomes ``-3.007``). So each
run's snapshot is recognisable row by row, signs (negative stock) stay as generated, and the
oracle is the generator's expected rows with the same shift -- not a re-run of the ETL's rules.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fluxion_etl.demo.stellar import CHAIN_LOCATIONS, generate_store
from fluxion_harness.postgres_source import (
    PgServer,
    create_store_database,
    drop_database,
    new_database_name,
)

#: the soak's own sessions, so a "session killed" fault never terminates them
APPLICATION_NAME = "fluxion-soak"
PG_DRIVER = "PostgreSQL Unicode"


@dataclass(frozen=True)
class SoakStore:
    id: str
    name: str
    warehouse: str
    database: str
    base: dict[str, Decimal]
    """codigo_producto -> the published quantity before any shift."""


def shifted(quantity: Decimal, run: int) -> Decimal:
    """The quantity run ``run`` publishes for a product whose base quantity is ``quantity``."""
    if quantity == 0:
        return quantity
    step = Decimal(run % 1000).scaleb(-3)
    return quantity + step if quantity > 0 else quantity - step


class Chain:
    """The soak's store databases on ``server`` (dropped by :meth:`drop`)."""

    def __init__(self, server: PgServer, stores: Sequence[SoakStore]) -> None:
        self.server = server
        self.stores = list(stores)

    @classmethod
    def create(cls, server: PgServer, count: int, products: int, seed: int) -> Chain:
        """``count`` of the chain's locations, ``products`` products each, all traps on."""
        chain = cls(server, [])
        stores = chain.stores
        try:
            for index, location in enumerate(CHAIN_LOCATIONS[:count]):
                data = generate_store(location.warehouse, products, seed=seed + index)
                database = new_database_name("fluxion_soak_")
                create_store_database(server, database, data)
                stores.append(
                    SoakStore(
                        id=location.id,
                        name=location.name,
                        warehouse=location.warehouse,
                        database=database,
                        base={code: row.cantidad_actual for code, row in data.expected.items()},
                    )
                )
                conn = server.connect(database, application_name=APPLICATION_NAME)
                try:
                    with conn.cursor() as cur:
                        cur.execute("CREATE TABLE soak_base AS SELECT * FROM ma_depoprod")
                    conn.commit()
                finally:
                    conn.close()
        except BaseException:
            chain.drop()
            raise
        return chain

    def expected(self, store: SoakStore, run: int, emptied: bool) -> dict[str, Decimal]:
        """What a correct publish of ``store`` in run ``run`` holds: code -> quantity."""
        if emptied:
            return {}
        return {code: shifted(quantity, run) for code, quantity in store.base.items()}

    def prepare(self, run: int, emptied: str | None = None) -> None:
        """Rewrite every store's stock for run ``run``; the ``emptied`` store gets none."""
        step = Decimal(run % 1000).scaleb(-3)
        for store in self.stores:
            conn = self.server.connect(store.database, application_name=APPLICATION_NAME)
            try:
                with conn.cursor() as cur:
                    cur.execute("DELETE FROM ma_depoprod")
                    if store.id != emptied:
                        cur.execute(
                            "INSERT INTO ma_depoprod SELECT id, c_coddeposito, c_codarticulo,"
                            " CASE WHEN n_cantidad > 0 THEN n_cantidad + %s"
                            " WHEN n_cantidad < 0 THEN n_cantidad - %s ELSE n_cantidad END"
                            " FROM soak_base",
                            (step, step),
                        )
                conn.commit()
            finally:
                conn.close()

    def stores_toml(self, overrides: dict[str, tuple[str, int]] | None = None) -> str:
        """The run's stores file; ``overrides`` sends a store to another (host, port)."""
        overrides = overrides or {}
        blocks = []
        for store in self.stores:
            host, port = overrides.get(store.id, (self.server.host, self.server.port))
            kind = "cedi" if store.id.startswith("cedi") else "tienda"
            blocks.append(
                f'[[stores]]\nid = "{store.id}"\nname = "{store.name}"\ntype = "{kind}"\n'
                f'host = "{host}"\nport = {port}\ndatabase = "{store.database}"\n'
                f'warehouse = "{store.warehouse}"\ndriver = "{PG_DRIVER}"\n'
            )
        return "\n".join(blocks)

    def write_stores(self, path: Path, overrides: dict[str, tuple[str, int]] | None = None) -> None:
        path.write_text(self.stores_toml(overrides), encoding="utf-8")

    def drop(self) -> None:
        for store in self.stores:
            drop_database(self.server, store.database)


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released): a store whose VPN is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
