"""What follows a run's work: the exit code is the work's whatever signal arrives in the tail, the
``done`` line is last, a failed run says so once, and a reader closing the pipe is no traceback.
Over SQLite demo stores: no store server needed."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from etl_cli import ledger_rows

from fluxion_etl.demo.runner import build_demo_stores, write_stores_file

#: ``fluxion-etl run`` with a hook in its tail: the process sends itself argv[1] (a signal) from
#: inside cli.<argv[2]>, before calling it (metric_lines: the metrics are not printed yet) or
#: after it (_log_outcome: the done line is printed). Deterministic: no sleeping, no race.
HOOKED_RUN = """
import os, signal, sys
import fluxion_etl.cli as cli
sig, where = getattr(signal, sys.argv[1]), sys.argv[2]
original = getattr(cli, where)
def hooked(*args, **kwargs):
    if where == "metric_lines":
        os.kill(os.getpid(), sig)
        return original(*args, **kwargs)
    outcome = original(*args, **kwargs)
    os.kill(os.getpid(), sig)
    return outcome
setattr(cli, where, hooked)
if __name__ == "__main__":
    sys.exit(cli.main(["run"]))
"""


#: As HOOKED_RUN, and before the metrics read the snapshot ages, another process takes the
#: target file (as the backend writing would), then the signal comes: the read must not wait.
HELD_TAIL = """
import os, signal, subprocess, sys
import fluxion_etl.cli as cli
original = cli.metric_lines
holder = ("import duckdb, sys\\ncon = duckdb.connect(sys.argv[1])\\nprint('held', flush=True)\\n"
          "sys.stdin.read()\\n")
def hooked(*args, **kwargs):
    held = subprocess.Popen([sys.executable, "-c", holder, os.environ["DATABASE_PATH"]],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert held.stdout.readline().strip() == "held"
    os.kill(os.getpid(), signal.SIGTERM)
    try:
        return original(*args, **kwargs)
    finally:
        held.stdin.close()
        held.wait()
cli.metric_lines = hooked
if __name__ == "__main__":
    sys.exit(cli.main(["run"]))
"""


@pytest.fixture(scope="module")
def stores_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("run_tail")
    path = directory / "stores.toml"
    write_stores_file(build_demo_stores(directory / "stores", count=2, products=150), path)
    return path


def environment(stores_file: Path, db: Path | str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_", "DATABASE"))}
    return {**clean, "ETL_STORES_FILE": str(stores_file), "DATABASE_PATH": str(db)}


def lines_of(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("where", ["metric_lines", "_log_outcome"])
def test_a_signal_after_the_work_cuts_the_tail_but_not_the_exit_code(
    stores_file: Path, tmp_path: Path, sig: str, where: str
) -> None:
    db = tmp_path / "fluxion.duckdb"
    result = subprocess.run(
        [sys.executable, "-c", HOOKED_RUN, sig, where],
        env=environment(stores_file, db), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, (result.returncode, result.stdout[-3000:], result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = lines_of(result.stdout)
    done = lines[-1]
    assert (done["event"], done["phase"]) == ("ETL completed successfully", "done")
    assert done["exit_code"] == 0
    if where == "metric_lines":  # the metrics were cut short; the done line says by what
        assert done["signal_after_the_work"] == sig
        assert not [line for line in lines if "_aws" in line]
    assert {row["estado"] for row in ledger_rows(db).values()} == {"exitoso"}


def test_a_signal_in_the_tail_cuts_its_wait_for_the_target_short(
    stores_file: Path, tmp_path: Path
) -> None:
    """The snapshot ages are read after the run, waiting up to 30 s for a file another process
    holds; a SIGTERM then ends that wait at once, and no warning precedes the done line."""
    db = tmp_path / "fluxion.duckdb"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", HELD_TAIL],
        env=environment(stores_file, db), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert result.returncode == 0, (result.returncode, result.stdout[-3000:], result.stderr)
    lines = lines_of(result.stdout)
    assert lines[-1]["phase"] == "done" and lines[-1]["signal_after_the_work"] == "SIGTERM"
    assert not [line for line in lines if line.get("level") == "warning"]
    assert seconds < 25  # the read would have waited 30 s for the file


def test_a_run_that_never_reached_a_store_says_so_once(stores_file: Path) -> None:
    """/sys refuses new files even to root: the target cannot be opened. One ``ETL failed``
    line, no warning repeating it, and RunFailed alone: no StoresStale for stores the run never
    got to."""
    result = subprocess.run(
        [sys.executable, "-m", "fluxion_etl", "run"],
        env=environment(stores_file, "/sys/fluxion.duckdb"),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    lines = lines_of(result.stdout)
    failed = [line for line in lines if str(line.get("event", "")).startswith("ETL failed")]
    assert len(failed) == 1
    after = lines[lines.index(failed[0]) + 1 :]
    assert [sorted(line) for line in after] == [sorted(after[0])] and "_aws" in after[0]
    assert (after[0]["RunFailed"], after[0]["RunSucceeded"]) == (1, 0)
    assert "StoresStale" not in after[0] and "Store" not in after[0]
    assert not [line for line in lines if line.get("level") == "warning"]


@pytest.mark.parametrize("closed", ["after four lines", "before any output"])
def test_a_reader_closing_the_pipe_is_no_traceback(
    stores_file: Path, tmp_path: Path, closed: str
) -> None:
    """`fluxion-etl status | head -4`: head leaves after four lines while status still writes
    (the storage line follows the table, after a read of the file). And a reader gone before
    anything is written (the pipe's read end closed first)."""
    db = tmp_path / "fluxion.duckdb"
    env = environment(stores_file, db)
    first = subprocess.run(
        [sys.executable, "-m", "fluxion_etl", "run"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    status = f"{shlex.quote(sys.executable)} -m fluxion_etl status"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            ["bash", "-c", f"{status} | head -4 >/dev/null; exit ${{PIPESTATUS[0]}}"]
            if closed == "after four lines"
            else ["bash", "-c", f"exec {status}"],
            env=env, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
            check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 128 + signal.SIGPIPE
