"""`fluxion-etl demo`: the embedded default, end to end through the real SQLite3 ODBC driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb

from fluxion_etl.demo.runner import demo_examples
from fluxion_etl.demo.stellar import generate_store


def test_demo_publishes_every_demo_store(tmp_path: Path) -> None:
    db = tmp_path / "demo" / "fluxion.duckdb"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fluxion_etl",
            "demo",
            "--stores",
            "3",
            "--rows",
            "800",
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    examples = demo_examples()[:3]
    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(
            con.execute("SELECT ubicacion_id, count(*) FROM inventario_raw GROUP BY ALL").fetchall()
        )
        states = con.execute("SELECT DISTINCT estado FROM etl_ejecuciones").fetchall()
    for seed, store in enumerate(examples, start=1):
        assert counts[store.id] == len(generate_store(store.warehouse, 800, seed=seed).expected)
        assert store.id in result.stdout and store.name in result.stdout
    assert states == [("exitoso",)]


def test_demo_leaves_a_stores_file_that_check_and_run_accept(tmp_path: Path) -> None:
    db = tmp_path / "fluxion-demo" / "fluxion.duckdb"
    demo = subprocess.run(
        [sys.executable, "-m", "fluxion_etl", "demo", "--stores", "2", "--rows", "200",
         "--db", str(db)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr
    stores_file = db.parent / "stores.toml"
    assert f"ETL_STORES_FILE={stores_file}" in demo.stdout and "fluxion-etl check" in demo.stdout
    built = [line for line in demo.stderr.splitlines() if line.startswith("demo: built store")]
    assert [line.split(":")[1] for line in built] == [" built store 1/2", " built store 2/2"]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))},
        "ETL_STORES_FILE": str(stores_file),
        "DATABASE_PATH": str(db),
    }
    check = subprocess.run(
        [sys.executable, "-m", "fluxion_etl", "check"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run(
        [sys.executable, "-m", "fluxion_etl", "run"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT run_id) FROM etl_ejecuciones").fetchone() == (2,)


def test_ctrl_c_while_the_demo_builds_its_stores_is_one_line_and_exit_130(tmp_path: Path) -> None:
    db = tmp_path / "fluxion-demo" / "fluxion.duckdb"
    (db.parent).mkdir()
    stale = db.parent / "stores.toml"
    stale.write_text("# a previous demo's stores file\n")
    demo = subprocess.Popen(
        [sys.executable, "-m", "fluxion_etl", "demo", "--stores", "5", "--rows", "60000",
         "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert demo.stderr is not None
    first = demo.stderr.readline()  # the first store is complete; the second is being built
    assert first.startswith("demo: built store 1/5"), first
    demo.send_signal(signal.SIGINT)
    stdout, stderr = demo.communicate(timeout=60)
    assert demo.returncode == 130, stdout[-2000:] + stderr
    assert stderr.strip().splitlines() == ["fluxion-etl: interrupted"]
    assert "Traceback" not in stdout
    assert not stale.exists()  # no stores file: the demo is not left looking complete
    assert not db.exists()
    leftovers = [p.name for p in (db.parent / "stores").iterdir() if not p.name.endswith(".sqlite")]
    assert leftovers == []  # no half-written store file under a temporary name either
