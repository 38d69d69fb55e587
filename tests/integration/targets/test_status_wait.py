"""``fluxion-etl status`` while another process writes the file (a publish): it waits, bounded
and said once on stderr, as the backend is told to, instead of failing at once; it creates
nothing beside the file. Over SQLite demo stores: no store server needed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fluxion_etl.demo.runner import build_demo_stores, write_stores_file

#: holds the DuckDB file open read-write (as a publish does) until its stdin closes
HOLDER = (
    "import duckdb, sys\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    directory = tmp_path_factory.mktemp("status_wait")
    stores_file = directory / "stores.toml"
    write_stores_file(build_demo_stores(directory / "stores", count=2, products=100), stores_file)
    db = directory / "target" / "fluxion.duckdb"
    db.parent.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_", "DATABASE"))},
        "ETL_STORES_FILE": str(stores_file),
        "DATABASE_PATH": str(db),
    }
    run = subprocess.run(
        [sys.executable, "-m", "fluxion_etl", "run"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    return db, env


def hold(db: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


def test_status_waits_out_a_publish_and_says_so(published: tuple[Path, dict[str, str]]) -> None:
    db, env = published
    before = sorted(p.name for p in db.parent.iterdir())
    holder = hold(db)
    try:
        status = subprocess.Popen(
            [sys.executable, "-m", "fluxion_etl", "status"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert status.stderr is not None
        waiting = status.stderr.readline()  # status is now waiting for the file
    finally:
        release(holder)
    stdout, stderr = status.communicate(timeout=60)
    assert status.returncode == 0, stdout + waiting + stderr
    assert "is being written by another process" in waiting and "up to 5 s" in waiting
    assert stderr == ""
    assert "tienda_01" in stdout and "exitoso" in stdout
    assert "unknown" not in stdout  # the storage version was read too
    assert sorted(p.name for p in db.parent.iterdir()) == before


def test_status_gives_up_after_its_bound_in_one_line(
    published: tuple[Path, dict[str, str]],
) -> None:
    db, env = published
    holder = hold(db)
    try:
        started = time.monotonic()
        status = subprocess.run(
            [sys.executable, "-m", "fluxion_etl", "status"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - started
    finally:
        release(holder)
    assert status.returncode == 1, status.stdout + status.stderr
    lines = status.stderr.splitlines()
    assert len(lines) == 2 and "waiting up to 5 s" in lines[0]
    assert "still written by another process after 5 s" in lines[1]
    assert 5 <= seconds < 30
