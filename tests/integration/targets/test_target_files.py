"""The DuckDB target's files: one run lock per file whatever names it, and no world-readable file.

Issue 23, item 7: a symlinked ``DATABASE_PATH`` got a run lock of its own, so two runs published
the same file at once (the second closed the live first run's ledger rows); and the target
file, its WAL and its lock were created 0644.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from etl_cli import ledger_rows, run_cli

from fluxion_etl.config import Settings
from fluxion_etl.errors import ConfigError
from fluxion_etl.targets.duckdb.runguard import RunGuard


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_symlink_to_the_target_shares_its_run_lock(
    etl_env: dict[str, str], tmp_path: Path
) -> None:
    real_dir, other_dir = tmp_path / "efs", tmp_path / "elsewhere"
    real_dir.mkdir()
    other_dir.mkdir()
    real = real_dir / "fluxion.duckdb"
    link = other_dir / "inventario.duckdb"
    link.symlink_to(real)
    env = {**etl_env, "DATABASE_PATH": str(real)}
    assert run_cli(["run"], env).returncode == 0
    with RunGuard(real, "the-first-run"):  # a run of the file by its real name is under way
        second = run_cli(["run"], {**etl_env, "DATABASE_PATH": str(link)})
    assert second.returncode == 4, second.stdout[-2000:] + second.stderr
    assert f"another run holds {real}.run.lock" in second.stderr
    assert not (other_dir / "inventario.duckdb.run.lock").exists()
    assert all(row["estado"] == "exitoso" for row in ledger_rows(real).values())


def test_new_target_files_are_not_readable_by_others(
    etl_env: dict[str, str], tmp_path: Path
) -> None:
    db = Path(etl_env["DATABASE_PATH"])
    result = run_cli(["run"], etl_env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert mode(db) == 0o640
    assert mode(db.with_name(db.name + ".run.lock")) == 0o640


def test_a_setting_chooses_the_mode(etl_env: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "private" / "fluxion.duckdb"
    db.parent.mkdir()
    env = {**etl_env, "DATABASE_PATH": str(db), "DATABASE_FILE_MODE": "0600"}
    assert run_cli(["run"], env).returncode == 0
    assert mode(db) == 0o600 and mode(db.with_name(db.name + ".run.lock")) == 0o600


@pytest.mark.parametrize("raw", ["640x", "0400", "0666", "0777", "1640"])
def test_a_mode_that_is_not_safe_or_not_octal_is_a_configuration_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_FILE_MODE"):
        Settings.from_env({"DATABASE_FILE_MODE": raw})
    assert Settings.from_env({"DATABASE_FILE_MODE": "0660"}).file_mode == 0o660
