"""The store's server ends the session while its rows are streaming: a lost connection, retried.

On SQL Server a ``KILL <spid>``, a service restart or a failover does this; on the PostgreSQL
stand-in ``pg_terminate_backend`` does, from a second connection, once the inventory cursor is
being fetched (psqlODBC fetches through a server-side cursor, so the server shows ``fetch ...``).
Both engines must record it as ``conexion``, fetch the store again from scratch, and publish
exactly the store's rows once -- into either target (``target_env``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from etl_cli import json_lines, run_cli, write_stores
from target_db import TargetReader

from fluxion_etl.source.query import load_query
from fluxion_harness.postgres_source import PgServer, PgStore

pytestmark = pytest.mark.postgres

#: a session of the store's database busy with the inventory query, in the server's own view
#: (psqlODBC declares a cursor for it; the session stays active while its rows are produced)
_STREAMING = (
    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
    "AND query ILIKE '%%ma_depoprod%%' AND pid <> pg_backend_pid()"
)


def slowed_query(
    pg_server: PgServer, store: PgStore, tmp_path: Path, seconds_per_row: float
) -> Path:
    """A query file whose rows trickle out of the server (``seconds_per_row`` each), so the
    fetch is still streaming when the test ends the session."""
    conn = pg_server.connect(store.database)
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION fluxion_trickle() RETURNS integer LANGUAGE plpgsql VOLATILE AS "
            f"$$ BEGIN PERFORM pg_sleep({seconds_per_row}); RETURN 1; END $$"
        )
    conn.close()
    query = tmp_path / "trickle.sql"
    query.write_text(load_query(None) + "\n  AND fluxion_trickle() = 1\n", encoding="utf-8")
    return query


@contextmanager
def session_killer(pg_server: PgServer, database: str) -> Iterator[list[int]]:
    """Terminates the first session found fetching from ``database`` (once, from a second
    connection, as a DBA's KILL would); yields the pids it terminated."""
    killed: list[int] = []
    done = threading.Event()

    def watch() -> None:
        conn = pg_server.connect("postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not done.is_set() and not killed:
                    cur.execute(_STREAMING, [database])
                    row = cur.fetchone()
                    if row is None:
                        time.sleep(0.02)
                        continue
                    cur.execute("SELECT pg_terminate_backend(%s)", [row[0]])
                    terminated = cur.fetchone()
                    if terminated and terminated[0]:
                        killed.append(row[0])
        finally:
            conn.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield killed
    finally:
        done.set()
        watcher.join(timeout=10)


@pytest.mark.parametrize("engine", ["arrow", "pyodbc"])
def test_a_session_ended_by_the_server_mid_fetch_is_retried_from_scratch(
    target_env: dict[str, str],
    pg_server: PgServer,
    make_pg_store: Any,
    tmp_path: Path,
    engine: str,
) -> None:
    store = make_pg_store(1200, seed=41, id="tienda_02", warehouse="0202")
    query = slowed_query(pg_server, store, tmp_path, seconds_per_row=0.002)
    write_stores(target_env, ([store], pg_server))
    env = {**target_env, "ETL_ENGINE": engine, "ETL_QUERY_FILE": str(query), "ETL_MAX_RETRIES": "3"}
    with session_killer(pg_server, store.database) as killed:
        result = run_cli(["run"], env, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert len(killed) == 1, "the fetch was never caught streaming"
    retried = [
        line
        for line in json_lines(result.stdout)
        if line.get("event") == "transient error; retrying the store from scratch"
    ]
    assert len(retried) == 1
    assert "connection lost" in retried[0]["error"]
    db = TargetReader(env, pg_server)
    entry = db.ledger()[store.id]
    assert (entry["estado"], entry["intentos"]) == ("exitoso", 2)
    assert entry["registros_cargados"] == len(store.data.expected)
    rows = db.rows(store.id)
    assert set(rows) == set(store.data.expected)
    assert len({row["batch_id"] for row in rows.values()}) == 1
