"""Rows fetched so far cross from the fetch process to the run while the fetch is under way:
a real store behind a link that goes silent mid-transfer (psqlODBC fetches in cursor blocks, so
the blocks before the stall do arrive), through the real fetch process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from fluxion_etl.config import Settings
from fluxion_etl.credentials import Credentials
from fluxion_etl.errors import Interrupted
from fluxion_etl.run.fetch import fetch_to_staging
from fluxion_etl.source.engines.base import FetchRequest
from fluxion_etl.source.query import load_query
from fluxion_etl.stores import Store
from fluxion_harness.linkproxy import FaultyProxy
from fluxion_harness.postgres_source import PgServer

pytestmark = pytest.mark.postgres

#: more than one of psqlODBC's cursor blocks (Fetch=10000 rows, see connection.py); the link
#: stalls after 3 MB, past the first block (~240 bytes a row) and before the end (~4.7 MB).
PRODUCTS = 25_000


def test_rows_fetched_so_far_reach_the_run_while_the_fetch_is_stalled(
    pg_server: PgServer, make_pg_store: Any, tmp_path: Path
) -> None:
    made = make_pg_store(PRODUCTS, seed=61)
    seen: list[int] = []
    stop = threading.Event()
    upstream = (pg_server.host, pg_server.port)
    with FaultyProxy(upstream, "stall", after_bytes=3_000_000, spoil=None) as proxy:
        store = Store(id=made.id, name=made.name, type="tienda", host="127.0.0.1",
                      port=proxy.port, database=made.database, warehouse=made.warehouse,
                      driver="PostgreSQL Unicode")  # fmt: skip
        request = FetchRequest.for_store(
            store,
            Settings(batch_size=100),
            Credentials(pg_server.user, pg_server.password),
            load_query(None),
        )
        timer = threading.Timer(4.0, stop.set)
        timer.start()
        with pytest.raises(Interrupted):
            fetch_to_staging("arrow", request, tmp_path / "staged.parquet", stop, seen.append)
        timer.cancel()
    assert seen == sorted(seen)  # a running count, polled
    assert 0 < seen[-1] < PRODUCTS  # part of the store, seen before the fetch ended
    assert not (tmp_path / "staged.parquet").exists()
