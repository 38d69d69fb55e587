"""CLI behaviour that needs no store server, over SQLite demo stores: run guard, terminal view."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from fluxion_etl.demo.runner import build_demo_stores


def write_stores_file(tmp_path: Path) -> Path:
    stores = build_demo_stores(tmp_path / "stores", count=2, products=200)
    blocks = [
        f'[[stores]]\nid = "{s.id}"\nname = "{s.name}"\ntype = "{s.type}"\n'
        f'database = "{s.database}"\nwarehouse = "{s.warehouse}"\ndriver = "{s.driver}"\n'
        for s in stores
    ]
    path = tmp_path / "stores.toml"
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def run(
    tmp_path: Path, db: Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))},
        "ETL_STORES_FILE": str(write_stores_file(tmp_path)),
        "DATABASE_PATH": str(db),
        **(extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "fluxion_etl", "run"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_second_run_on_the_same_target_exits_4_and_touches_nothing(tmp_path: Path) -> None:
    db = tmp_path / "target.duckdb"
    first = run(tmp_path, db)
    assert first.returncode == 0, first.stdout[-2000:]
    before = db.stat().st_mtime_ns
    with open(db.with_name(db.name + ".run.lock"), "a+") as guard:  # a run in progress
        fcntl.flock(guard.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = run(tmp_path, db)
    assert second.returncode == 4
    assert "another run holds" in second.stderr
    assert db.stat().st_mtime_ns == before
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT run_id) FROM etl_ejecuciones").fetchone() == (1,)
    assert run(tmp_path, db).returncode == 0  # released guard: the next run goes ahead


def test_the_first_log_line_says_how_many_workers_with_what_buffers_and_why(
    tmp_path: Path,
) -> None:
    ran = run(tmp_path, tmp_path / "target.duckdb", {"ETL_MEMORY_MIB": "4096"})
    assert ran.returncode == 0, ran.stdout[-2000:]
    first = json.loads(ran.stdout.splitlines()[0])
    assert first["event"] == "ETL started"
    assert (first["workers"], first["fetch_buffer_mib"]) == (2, 32.0)  # 64 MiB shared by 2
    assert first["workers_reason"].startswith("every selected store at once; 4,096 MiB budget")
    assert first["fetch_mib"] == 240.0  # what each fetch holds: 2 x 32 MiB + 176 (issue 25)
    assert "each fetch holds up to 240 MiB" in first["workers_reason"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ETL_WORKERS", "0", "ETL_WORKERS=0 must be at least 1"),
        ("ETL_MEMORY_MIB", "512", "memory budget 512 MiB is too small for one fetch"),
    ],
)
def test_bad_concurrency_settings_are_one_line_configuration_errors(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    db = tmp_path / "target.duckdb"
    ran = run(tmp_path, db, {variable: value})
    assert ran.returncode == 2
    assert ran.stderr.count("\n") == 1 and message in ran.stderr
    assert ran.stdout == "" and not db.exists()


def in_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its stdin/stdout/stderr: (exit code, screen bytes)."""
    import pty

    primary, secondary = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "fluxion_etl", *args],
        env=env, stdin=secondary, stdout=secondary, stderr=secondary,
    )  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    return child.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_in_a_terminal_the_run_shows_a_live_table_instead_of_json(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))},
        "ETL_STORES_FILE": str(write_stores_file(tmp_path)),
        "DATABASE_PATH": str(tmp_path / "tty.duckdb"),
        "COLUMNS": "120",
    }
    code, screen = in_a_terminal(["run"], env)
    assert code == 0, screen[-2000:]
    assert "tienda_01" in screen and "published" in screen
    assert "fetched" in screen and "seconds" in screen  # the columns say what they count
    assert "ETL completed successfully" in screen
    assert '{"' not in screen  # no JSON lines on a terminal


def test_in_a_terminal_the_demo_shows_its_stores_being_built(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))},
           "COLUMNS": "120"}  # fmt: skip
    db = tmp_path / "fluxion-demo" / "fluxion.duckdb"
    code, screen = in_a_terminal(["demo", "--stores", "2", "--rows", "300", "--db", str(db)], env)
    assert code == 0, screen[-2000:]
    assert "building 2 demo stores (300 products each)" in screen
    assert "-m fluxion_etl check" in screen  # the hint runs as printed (python -m here)
