"""The run's child processes: no secret in their environment, and none outlives the run.

Issue 23, items 6 and 8, with the real run and its real children (the fork server, the
resource tracker, the fetch processes), read through /proc: every child inherited
``SQL_PASS``/``PGPASSWORD`` though none needs it there (the fetch gets its login as an argument
through the fork server's socket); and after a SIGKILL of the run, its fetches kept fetching
and writing staged files.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etl_cli import write_stores
from running import BackgroundRun, event, table_locked

from fluxion_harness.postgres_source import PgServer, PgStore


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (from /proc's parent links)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_no_child_process_has_a_secret_in_its_environment(
    pg_target_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    store: PgStore = make_pg_store(300, seed=232)
    write_stores(pg_target_env, ([store], pg_server))
    env = {k: v for k, v in pg_target_env.items() if k != "FLUXION_TEST_PG_PASSWORD"}
    env.update(SQL_PASS=pg_server.password, PGPASSWORD=pg_server.password)
    with table_locked(pg_server, store.database):
        run = BackgroundRun(["run"], env)
        run.wait_for(event("extract started", store=store.id))
        assert wait_until(lambda: len(descendants(run.process.pid)) >= 3)
        children = descendants(run.process.pid)  # fork server, resource tracker, the fetch
        environments = {pid: Path(f"/proc/{pid}/environ").read_bytes() for pid in children}
    code, _, stderr = run.finish(timeout=120)
    assert code == 0, run.text[-3000:] + stderr
    assert len(environments) >= 3
    for pid, environ in environments.items():
        names = {item.split(b"=", 1)[0] for item in environ.split(b"\0") if item}
        assert not names & {b"SQL_PASS", b"PGPASSWORD"}, (pid, sorted(names))
        assert pg_server.password.encode() not in environ, pid
        assert b"ETL_STORES_FILE" in names  # the rest of the environment is still there


def test_fetch_processes_die_with_a_killed_run(
    etl_env: dict[str, str], pg_server: PgServer, make_pg_store: Any
) -> None:
    store: PgStore = make_pg_store(300, seed=233)
    write_stores(etl_env, ([store], pg_server))
    staging = Path(etl_env["ETL_STAGING_DIR"])
    with table_locked(pg_server, store.database):
        run = BackgroundRun(["run"], etl_env)
        run.wait_for(event("extract started", store=store.id))
        assert wait_until(lambda: len(descendants(run.process.pid)) >= 3)
        children = descendants(run.process.pid)
        run.process.send_signal(signal.SIGKILL)
        run.process.wait(timeout=30)
        gone = wait_until(lambda: not any(alive(pid) for pid in children), timeout=10)
        survivors = [pid for pid in children if alive(pid)]
        for pid in survivors:  # do not leave them behind for the next test
            os.kill(pid, signal.SIGKILL)
    assert gone, f"still running after the run was killed: {survivors}"
    time.sleep(1)  # the lock is gone: a surviving fetch would write its file now
    assert not list(staging.rglob("*.parquet"))
