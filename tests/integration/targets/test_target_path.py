"""The target path and the store selection, checked before a run can publish in the wrong place:
a missing directory (the EFS volume not mounted) is a configuration error that creates nothing,
an unwritable target is one line naming the path and the OS's reason, and an empty selection is
a usage error. Over SQLite demo stores: no store server needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fluxion_etl.demo.runner import build_demo_stores, write_stores_file


@pytest.fixture(scope="module")
def stores_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("target_path")
    path = directory / "stores.toml"
    write_stores_file(build_demo_stores(directory / "stores", count=2, products=100), path)
    return path


def run(args: list[str], stores_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_", "DATABASE"))}
    return subprocess.run(
        [sys.executable, "-m", "fluxion_etl", *args],
        env={**clean, "ETL_STORES_FILE": str(stores_file), **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("flag", [False, True])
def test_a_target_whose_directory_is_missing_exits_2_and_creates_nothing(
    stores_file: Path, tmp_path: Path, flag: bool
) -> None:
    db = tmp_path / "efs-not-mounted" / "fluxion.duckdb"
    result = (
        run(["run", "--db", str(db)], stores_file)
        if flag
        else run(["run"], stores_file, DATABASE_PATH=str(db))
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    assert result.stderr.count("\n") == 1
    assert "does not exist" in result.stderr and str(db.parent) in result.stderr
    assert ("--db" if flag else "DATABASE_PATH") in result.stderr
    assert not db.parent.exists()
    assert result.stdout == ""


def test_a_file_where_the_targets_directory_should_be_exits_2(
    stores_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "data").write_text("not a directory")
    result = run(["run"], stores_file, DATABASE_PATH=str(tmp_path / "data" / "fluxion.duckdb"))
    assert result.returncode == 2, result.stderr
    assert "is not a directory" in result.stderr


@pytest.mark.parametrize(
    ("db", "reason"),
    [("/sys/fluxion.duckdb", "Permission denied"), ("/proc/fluxion.duckdb", "No such file")],
)
def test_an_unwritable_target_fails_in_one_line_and_counts_no_store_as_failed(
    stores_file: Path, db: str, reason: str
) -> None:
    """/sys refuses new files even to root (the tests' user), as a read-only mount or a wrong
    owner would; /proc refuses them with ENOENT. Nothing was attempted, so no store failed."""
    result = run(["run"], stores_file, DATABASE_PATH=db)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = json_lines(result.stdout)
    (failed,) = [line for line in lines if line.get("event") == "ETL failed"]
    assert db in failed["error"] and reason in failed["error"]
    assert "\n" not in failed["error"] and "exception" not in failed
    assert failed["run_id"]
    assert not [line for line in lines if line.get("event") == "store failed"]
    (metrics,) = [line for line in lines if "_aws" in line and "Store" not in line]
    assert (metrics["RunFailed"], metrics["RunSucceeded"]) == (1, 0)
    assert "StoresFailed" not in metrics


@pytest.mark.parametrize(
    ("args", "env"), [(["run", "--stores", ""], {}), (["run"], {"ETL_TIENDAS": ""})]
)
def test_an_empty_store_selection_is_a_usage_error_not_the_whole_chain(
    stores_file: Path, tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    db = tmp_path / "fluxion.duckdb"
    result = run(args, stores_file, DATABASE_PATH=str(db), **env)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    assert "is empty" in result.stderr
    assert not db.exists()
