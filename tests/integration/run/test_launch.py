"""``fluxion-etl run`` starts its fork server before it imports the CLI (issue 25, item 2).

The fork server imports pyarrow, DuckDB and the engines in an interpreter of its own (~0.7 s of
CPU). Started by the run after the CLI's own imports and the configuration's vetting, the first
fetch waited for those imports; started first, they run beside the CLI's on the second core.
Real processes: the command's entry in a child interpreter, its fork server read through /proc.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

#: the entry's first step, then what the process has imported and its fork server's pid
PROBE = """
import sys
from multiprocessing import forkserver
from fluxion_etl import launch
launch.start_early()
print(forkserver._forkserver._forkserver_pid, "fluxion_etl.cli" in sys.modules,
      "pyarrow" in sys.modules, "duckdb" in sys.modules, flush=True)
sys.stdin.readline()  # the fork server lives as long as this process
"""


def test_a_run_starts_its_fork_server_before_the_cli_and_without_the_secrets() -> None:
    env = {**os.environ, "SQL_PASS": "launch-probe-secret", "PGPASSWORD": "launch-probe-secret"}
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert probe.stdin is not None and probe.stdout is not None
    try:
        pid, cli, pyarrow, duckdb = probe.stdout.readline().split()
        command = _exec_command(int(pid))
        environ = Path(f"/proc/{pid}/environ").read_bytes()  # the server's own, once it exec'd
    finally:
        probe.stdin.close()
        probe.wait(timeout=30)
    assert b"forkserver" in command  # the server is running, with its own interpreter
    assert (cli, pyarrow, duckdb) == ("False", "False", "False")  # before the big imports
    assert b"launch-probe-secret" not in environ


def _exec_command(pid: int, timeout: float = 30.0) -> bytes:
    """The fork server's command line once it has exec'd its own interpreter.

    ``ensure_running`` returns the server's pid right after the fork: until the exec, /proc
    shows the forked copy of the probe (its command line, and its environment as the probe
    started, secrets included), and during the exec an empty command line, which a loaded
    machine once read here (2026-12-07) and failed the test.
    """
    deadline = time.monotonic() + timeout
    while True:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"forkserver" in command or time.monotonic() > deadline:
            return command
        time.sleep(0.01)


def test_only_run_starts_a_fork_server() -> None:
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom multiprocessing import forkserver\nfrom fluxion_etl import launch\n"
            "try:\n    launch.main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(forkserver._forkserver._forkserver_pid)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert shown.stdout.strip().splitlines()[-1] == "None"


def test_the_cli_imports_neither_the_postgresql_client_nor_the_demo() -> None:
    # a DuckDB run paid psycopg's import (via config's URL check) and the demo's generator for
    # nothing, in the run's process before its first fetch
    assert _imported_by_the_cli("psycopg", "fluxion_etl.demo.stellar") == []


def test_the_cli_imports_none_of_the_fetch_libraries() -> None:
    # the run's own process never fetches (its fetch processes start from the fork server, which
    # has them preloaded), yet it imported pyarrow, arrow-odbc and the clean-up through the
    # staging and engine modules: ~0.2 s before any command could start (issue 25, item 2)
    fetch_side = ("pyarrow", "arrow_odbc", "fluxion_etl.run.clean", "fluxion_etl.run.stage")
    assert _imported_by_the_cli(*fetch_side) == []


def _imported_by_the_cli(*modules: str) -> list[str]:
    """Which of ``modules`` a fresh interpreter has loaded once it imported the CLI."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fluxion_etl.cli\n"
            f"print(' '.join(m for m in {modules!r} if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return loaded.stdout.split()
