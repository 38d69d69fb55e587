"""The machine's own disk (ETL_STAGING_DIR): a bad directory is exit 2 before anything starts, a
failure after the ledger is open closes the run's rows with the true cause, and a full disk is
recorded as the machine's problem (``disco``), not the store's data. Over SQLite demo stores."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import duckdb
import pytest
from etl_cli import ledger_rows

from fluxion_etl.config import Settings
from fluxion_etl.demo.runner import build_demo_stores, write_stores_file
from fluxion_etl.errors import LocalDiskError
from fluxion_etl.run.pipeline import run_pipeline
from fluxion_etl.stores import Store, load_stores


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Store]]:
    directory = tmp_path_factory.mktemp("local_disk")
    path = directory / "stores.toml"
    write_stores_file(build_demo_stores(directory / "stores", count=2, products=200), path)
    return path, load_stores(path)


def environment(stores_file: Path, db: Path, staging: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_", "DATABASE"))}
    return {
        **clean,
        "ETL_STORES_FILE": str(stores_file),
        "DATABASE_PATH": str(db),
        "ETL_STAGING_DIR": staging,
    }


def run(env: dict[str, str], prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "fluxion_etl", "run"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["a file", "read-only", "cannot be created"])
def test_a_bad_staging_directory_is_exit_2_before_anything_starts(
    stores: tuple[Path, list[Store]], tmp_path: Path, kind: str
) -> None:
    """/sys refuses new files even to root (the tests' user), as a read-only mount would."""
    staging = {
        "a file": str(tmp_path / "staging"),
        "read-only": "/sys",
        "cannot be created": "/sys/fluxion-staging",
    }[kind]
    (tmp_path / "staging").write_text("not a directory")
    db = tmp_path / "fluxion.duckdb"
    result = run(environment(stores[0], db, staging))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    assert result.stderr.count("\n") == 1 and f"ETL_STAGING_DIR={staging}" in result.stderr
    assert result.stdout == ""
    assert not db.exists()


def test_a_run_failing_after_the_ledger_is_open_closes_every_row_with_the_cause(
    stores: tuple[Path, list[Store]], tmp_path: Path
) -> None:
    """The staging directory is refused once the ledger rows are open (past the CLI's check,
    as a disk filling up between the two would): no row is left ``en_proceso``."""
    (tmp_path / "staging").write_text("not a directory")
    db = tmp_path / "fluxion.duckdb"
    settings = Settings.from_env(environment(stores[0], db, str(tmp_path / "staging")))
    with pytest.raises(LocalDiskError) as raised:
        run_pipeline(settings, stores[1], None, run_id="20261207T000000Z-abcdef")
    assert "cannot write the staging files on this machine" in str(raised.value)
    rows = ledger_rows(db, "20261207T000000Z-abcdef")
    assert sorted(rows) == sorted(store.id for store in stores[1])
    for store_id, row in rows.items():
        assert (row["estado"], row["error_tipo"]) == ("fallido", "disco")
        assert row["error_mensaje"].startswith(f"{store_id}: ")
        assert "File exists" in row["error_mensaje"] or "Not a directory" in row["error_mensaje"]
        assert row["fecha_fin"] is not None


def test_a_full_local_disk_is_the_machines_problem_not_the_stores_data(
    stores: tuple[Path, list[Store]], tmp_path: Path, unavailable: Callable[[str], NoReturn]
) -> None:
    """The staging directory on a real file system that is full (a tmpfs of 64 KiB, filled, in a
    mount namespace of the run's own): every store fails as ``disco``, the ledger says where to
    look, and nothing is published."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode:
        unavailable("cannot create a mount namespace (unshare -m) for a full tmpfs")
    staging = tmp_path / "staging"
    staging.mkdir()
    fill = (
        'mount -t tmpfs -o size=64k tmpfs "$0" && '
        '(dd if=/dev/zero of="$0/fill" bs=4k 2>/dev/null || true) && exec "$@"'
    )
    db = tmp_path / "fluxion.duckdb"
    env = {**environment(stores[0], db, str(staging)), "ETL_MAX_RETRIES": "1"}
    result = run(env, ("unshare", "-m", "sh", "-c", fill, str(staging)))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    rows = ledger_rows(db)
    assert sorted(rows) == sorted(store.id for store in stores[1])
    for row in rows.values():
        assert (row["estado"], row["error_tipo"]) == ("fallido", "disco"), row
        assert "No space left on device" in row["error_mensaje"]
        assert "ETL_STAGING_DIR" in row["error_mensaje"]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM inventario_raw").fetchone() == (0,)
    assert list(staging.iterdir()) == []  # the tmpfs went with the run's mount namespace
