"""A `fluxion-etl run` in the background, read line by line while it runs, and things that
block a store at the server: what the deadline, signal and lock tests need to act mid-run."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from target_db import TargetReader

from fluxion_harness.postgres_source import PgServer

#: holds the DuckDB file open read-write (as the web backend might) for argv[2] seconds
HOLDER = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


class BackgroundRun:
    """The CLI in a child process; its stdout lines (JSON parsed when they are JSON) collected."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fluxion_etl", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._stderr: list[str] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self._stderr.extend(self.process.stderr)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"text": raw.rstrip("\n")}
            self.lines.append(line)
            self._queue.put(line)

    def wait_for(self, matches: Callable[[dict[str, Any]], bool], timeout: float = 60) -> None:
        """Block until a log line ``matches`` (AssertionError after ``timeout``)."""
        ends = time.monotonic() + timeout
        while (left := ends - time.monotonic()) > 0:
            try:
                if matches(self._queue.get(timeout=left)):
                    return
            except queue.Empty:
                break
        raise AssertionError(f"no matching log line within {timeout} s: {self.lines[-5:]}")

    def finish(self, timeout: float = 60) -> tuple[int, float, str]:
        """(exit code, seconds since start, stderr); fails the test if the run does not end."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the run did not end within {timeout} s") from None
        seconds = time.monotonic() - self.started
        for reader in self._readers:  # the pipes close with the process: drain the last lines
            reader.join(timeout=10)
        return code, seconds, "".join(self._stderr)

    @property
    def text(self) -> str:
        return "\n".join(json.dumps(line) for line in self.lines)


def event(name: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    """Matcher for a log line with ``event`` == ``name`` and the given fields."""

    def matches(line: dict[str, Any]) -> bool:
        return line.get("event") == name and all(line.get(k) == v for k, v in fields.items())

    return matches


@contextmanager
def table_locked(server: PgServer, database: str, table: str = "ma_depoprod") -> Iterator[None]:
    """An open transaction holding ACCESS EXCLUSIVE on ``table``: the inventory query blocks in
    the server until the block exits (a store server busy or hung, seen from the ETL)."""
    conn = server.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        conn.rollback()
        conn.close()


@contextmanager
def duckdb_held(db: Path, seconds: float = 120) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``db`` open read-write until the block exits."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held", "the holder could not open the file"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@contextmanager
def target_held(env: dict[str, str], server: PgServer, seconds: float = 120) -> Iterator[None]:
    """Another process keeps the run's target from being written until the block exits.

    DuckDB: the file open read-write (the backend as a writer). PostgreSQL: a session holding
    ``SHARE`` on ``inventario_raw`` and ``etl_ejecuciones`` (as a non-concurrent ``CREATE
    INDEX`` or a careless migration would): the run's writes wait, bounded by ``lock_timeout``,
    while readers' ``SELECT`` still pass. The PostgreSQL tables must exist (a run before).
    """
    if not env.get("DATABASE_URL"):
        with duckdb_held(Path(env["DATABASE_PATH"]), seconds):
            yield
        return
    con = TargetReader(env, server).connect_pg()
    try:
        con.autocommit = False
        con.execute("LOCK TABLE inventario_raw, etl_ejecuciones IN SHARE MODE")
        yield
    finally:
        con.rollback()
        con.close()
