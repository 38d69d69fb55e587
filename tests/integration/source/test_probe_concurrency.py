"""``check`` and ``stores --warehouses`` ask many stores at once, but no more than a run would
fetch at once: a fleet of thousands must not mean thousands of threads, each holding an ODBC
connection and its driver's buffers."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from fluxion_etl.config import Settings
from fluxion_etl.run.budget import plan_fetches
from fluxion_etl.source.check import check_stores
from fluxion_etl.source.warehouses import store_warehouses
from fluxion_etl.stores import Store, parse_stores
from fluxion_harness.linkproxy import SilentListener

pytestmark = pytest.mark.postgres  # psqlODBC, the driver that waits on the silent server

STORES = 8
WORKERS = 3


def silent_stores(port: int) -> list[Store]:
    """``STORES`` stores whose server accepts the connection and never answers: each probe
    holds its thread for the login timeout (1 s)."""
    text = "".join(
        f"""
[[stores]]
id = "tienda_{n:02d}"
name = "SILENCIO {n}"
type = "tienda"
host = "127.0.0.1"
port = {port}
database = "VAD10"
warehouse = "{n:02d}02"
driver = "PostgreSQL Unicode"
"""
        for n in range(1, STORES + 1)
    )
    return parse_stores(tomllib.loads(text), "stores.toml")


@contextmanager
def peak_threads() -> Iterator[Callable[[], int]]:
    """The most threads this process ran at once while inside, less those before it."""
    baseline = threading.active_count()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], threading.active_count())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: peak[0] - baseline - 1  # the sampler itself
    finally:
        done.set()
        sampler.join()


@pytest.mark.parametrize("probe", ["check", "warehouses"])
def test_probes_run_at_most_the_planned_number_of_stores_at_once(probe: str) -> None:
    settings = Settings.from_env({"ETL_CONNECT_TIMEOUT_SECONDS": "1"})
    with SilentListener() as silent:
        stores = silent_stores(silent.port)
        started = time.monotonic()
        with peak_threads() as peak:
            if probe == "check":
                results = check_stores(stores, settings, None, "SELECT 1", WORKERS)
                assert all(result.tcp and not result.login for result in results)
            else:
                listings = store_warehouses(stores, settings, None, WORKERS)
                assert all(listing.error for listing in listings)
        seconds = time.monotonic() - started
    assert 2 <= peak() <= WORKERS, peak()
    # 8 stores, 3 at a time, ~1 s each: three rounds, not one of eight threads
    assert seconds >= 2.5, seconds


def test_the_probes_plan_is_the_runs_and_bounded_for_thousands_of_stores() -> None:
    settings = Settings.from_env({"ETL_MEMORY_MIB": "4096"})
    plan = plan_fetches(settings, 5000)
    assert 1 <= plan.workers < 100, plan
