"""`pip install .` builds the distribution without setuptools' warnings, ships the data files
the package reads at run time (the inventory query, the example stores file), and leaves the
harnesses of tools/ (the soak, the backend-like reader, the link proxy) out of the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_builds_without_warnings_and_carries_the_sql_and_data_files(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for tree in ("src", "tools"):  # tools/ beside src/, as in the repository: it must stay out
        shutil.copytree(ROOT / tree, source / tree, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), "-v"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = build.stdout + build.stderr
    assert build.returncode == 0, output[-3000:]
    assert "is absent from the `packages` configuration" not in output
    assert "BuildBackendWarning" not in output
    (wheel,) = (tmp_path / "dist").glob("fluxion-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "fluxion_etl/py.typed",
        "fluxion_etl/data/stores.example.toml",
        "fluxion_etl/sql/inventario.sql",
        "fluxion_etl/sql/transform.sql",
        # what the commands need: the demo's generator and SQLite writer, both targets
        "fluxion_etl/demo/stellar.py",
        "fluxion_etl/demo/sqlite_source.py",
        "fluxion_etl/targets/duckdb/publisher.py",
        "fluxion_etl/targets/postgres/target.py",
    }
    assert expected <= names
    harnesses = ("soak", "linkproxy", "backend_reader", "postgres_source", "fluxion_harness")
    assert not [name for name in names if any(word in name for word in harnesses)], names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
