"""The soak's chain on the T-SQL server (``--source tsql``): Babelfish for PostgreSQL, started by
scripts/tsql-server.sh (``FLUXION_TEST_TSQL_*``), read through SQL Server's drivers.

The store databases are written by the T-SQL writer the tests share (:mod:`.tsql_source`: SQL
Server's types, one database per store). Before each run the stock is rewritten in T-SQL from a copy
(``soak_base``), shifted as :mod:`fluxion_harness.soak_chain` describes (``n_cantidad`` is a
``float`` here: the shift is exact once the pipeline casts it to ``DECIMAL(18,3)``). The faults
that need the server's own view (a session terminated while it waits on a lock) reach
Babelfish's PostgreSQL side, where every store database is a schema ``<database>_dbo`` of
``babelfish_db``: :class:`BabelfishPg` connects there with that schema first in the search path.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from fluxion_etl.demo.stellar import CHAIN_LOCATIONS, generate_store
from fluxion_harness import tsql_source
from fluxion_harness.soak_chain import APPLICATION_NAME, Chain, SoakStore

TSQL_VARIABLES = (
    "FLUXION_TEST_TSQL_HOST",
    "FLUXION_TEST_TSQL_PORT",
    "FLUXION_TEST_TSQL_USER",
    "FLUXION_TEST_TSQL_PASSWORD",
)
#: the driver the soak's stores name (production's); FreeTDS with SOAK_TSQL_DRIVER=FreeTDS
DEFAULT_TSQL_DRIVER = "ODBC Driver 18 for SQL Server"


@dataclass(frozen=True)
class BabelfishPg:
    """The T-SQL server as the soak's faults see a store server: ``host``/``port`` are the TDS
    listener (what a link proxy forwards to), ``connect(database)`` a psycopg2 session on
    Babelfish's PostgreSQL side with the store's schema first in the search path."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    pg_port: int = 15433

    def connect(self, database: str, **options: Any) -> Any:
        import psycopg2

        application = options.pop("application_name", APPLICATION_NAME)
        return psycopg2.connect(
            host=self.host,
            port=self.pg_port,
            user=self.user,
            password=self.password,
            dbname="babelfish_db",
            application_name=application,
            options=f"-c search_path={database}_dbo",
            connect_timeout=10,
            **options,
        )


def tsql_server_from_env() -> BabelfishPg:
    missing = [name for name in TSQL_VARIABLES if not os.environ.get(name)]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} not set: --source tsql needs Babelfish"
            ' (eval "$(scripts/tsql-server.sh start)")'
        )
    host, port, user, password = (os.environ[name] for name in TSQL_VARIABLES)
    pg_port = os.environ.get("FLUXION_TEST_TSQL_PG_PORT", "15433")
    if not (port.isdigit() and pg_port.isdigit()):
        raise ValueError("FLUXION_TEST_TSQL_PORT/_PG_PORT must be port numbers")
    return BabelfishPg(host, int(port), user, password, int(pg_port))


class TsqlChain(Chain):
    """The soak's store databases on the T-SQL server (dropped by :meth:`drop`)."""

    def __init__(self, server: BabelfishPg, stores: list[SoakStore], driver: str) -> None:
        super().__init__(server, stores)  # type: ignore[arg-type]
        self.driver = driver
        self.writer = tsql_source
        self.tds = self.writer.TsqlServer(
            server.host, server.port, server.user, server.password, server.pg_port
        )

    @classmethod
    def create_tsql(
        cls, server: BabelfishPg, count: int, products: int, seed: int, driver: str
    ) -> TsqlChain:
        chain = cls(server, [], driver)
        writer = chain.writer
        try:
            for index, location in enumerate(CHAIN_LOCATIONS[:count]):
                data = generate_store(location.warehouse, products, seed=seed + index)
                database = writer.new_database_name("fluxion_soak_")
                writer.create_store_database(chain.tds, database, data)
                chain.stores.append(
                    SoakStore(
                        id=location.id,
                        name=location.name,
                        warehouse=location.warehouse,
                        database=database,
                        base={code: row.cantidad_actual for code, row in data.expected.items()},
                    )
                )
                with contextlib.closing(chain.tds.connect(database)) as conn:
                    conn.cursor().execute("SELECT * INTO dbo.soak_base FROM dbo.MA_DEPOPROD")
        except BaseException:
            chain.drop()
            raise
        return chain

    def odbcsysini(self, directory: Path) -> Path:
        """An odbcinst.ini registering Driver 18 (the wheel's) and FreeTDS, in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        self.writer.odbcinst_ini(directory)
        return directory

    def prepare(self, run: int, emptied: str | None = None) -> None:
        step = Decimal(run % 1000).scaleb(-3)
        for store in self.stores:
            with contextlib.closing(self.tds.connect(store.database)) as conn:
                cursor = conn.cursor()
                cursor.execute("DELETE FROM dbo.MA_DEPOPROD")
                if store.id != emptied:
                    cursor.execute(
                        "INSERT INTO dbo.MA_DEPOPROD (id, c_coddeposito, c_codarticulo, n_cantidad)"
                        " SELECT id, c_coddeposito, c_codarticulo,"
                        f" CASE WHEN n_cantidad > 0 THEN n_cantidad + {step}"
                        f" WHEN n_cantidad < 0 THEN n_cantidad - {step} ELSE n_cantidad END"
                        " FROM dbo.soak_base"
                    )

    def stores_toml(self, overrides: dict[str, tuple[str, int]] | None = None) -> str:
        text = super().stores_toml(overrides)
        return text.replace('driver = "PostgreSQL Unicode"', f'driver = "{self.driver}"')

    def drop(self) -> None:
        for store in self.stores:
            self.writer.drop_database(self.tds, store.database)
