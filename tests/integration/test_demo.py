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


def test_demo_leaves_a_stores_file_and_prints_commands_that_run_as_printed(
    tmp_path: Path,
) -> None:
    """As ./scripts/demo.sh runs it: .venv/bin/fluxion-etl, which is not on PATH. The hints it
    prints are run by a shell exactly as printed, from another directory."""
    db = tmp_path / "fluxion-demo" / "fluxion.duckdb"
    program = Path(sys.executable).parent / "fluxion-etl"
    path = ":".join(p for p in os.environ["PATH"].split(":") if p != str(program.parent))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_"))},
        "PATH": path,
    }
    demo = subprocess.run(
        [str(program), "demo", "--stores", "2", "--rows", "200", "--db", str(db)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr
    stores_file = db.parent / "stores.toml"
    assert f"ETL_STORES_FILE={stores_file}" in demo.stdout
    built = [line for line in demo.stderr.splitlines() if line.startswith("demo: built store")]
    assert [line.split(":")[1] for line in built] == [" built store 1/2", " built store 2/2"]
    lines = demo.stdout.splitlines()
    (check,) = [line.split("next, try:")[1] for line in lines if "next, try:" in line]
    (run, status) = [
        line.split("or:")[1].strip().removesuffix(")").split("   (then: ")
        for line in lines
        if line.strip().startswith("or:")
    ][0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outcomes = [
        subprocess.run(
            ["sh", "-c", command], cwd=elsewhere, env=env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        for command in (check, run, status)
    ]
    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT run_id) FROM etl_ejecuciones").fetchone() == (2,)


def test_ctrl_c_while_the_demo_builds_its_stores_is_one_line_and_exit_130(tmp_path: Path) -> None:
    db = tmp_path / "fluxion-demo" / "fluxion.duckdb"
    (db.parent).mkdir()
    stale = db.parent / "stores.toml"
    stale.write_text("# a previous demo's stores file\n")
    (db.parent / ".fluxion-demo").write_text("stores.toml\n")  # which that demo marked as its own
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


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fluxion_etl", "demo", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


PRODUCTION_STORES = '[[stores]]\nid = "tienda_02"\nname = "AV. BOLIVAR"\nhost = "192.168.2.10"\n'


def test_bad_demo_arguments_are_refused_before_any_file_is_touched(tmp_path: Path) -> None:
    stores_file = tmp_path / "stores.toml"  # the operator's, as /data/stores.toml in production
    stores_file.write_text(PRODUCTION_STORES)
    for args in (["--stores", "0"], ["--rows", "0"], ["--stores", "99"]):
        result = demo(*args, "--db", str(tmp_path / "demo.duckdb"))
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr
        assert result.stderr.count("\n") == 1 and "configuration error" in result.stderr
    assert stores_file.read_text() == PRODUCTION_STORES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stores.toml"]


def test_the_demo_never_replaces_a_stores_file_or_database_it_did_not_write(
    tmp_path: Path,
) -> None:
    production = tmp_path / "data"
    production.mkdir()
    stores_file = production / "stores.toml"
    stores_file.write_text(PRODUCTION_STORES)
    refused = demo("--stores", "1", "--rows", "50", "--db", str(production / "demo.duckdb"))
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr
    assert refused.stderr.count("\n") == 1 and "stores.toml" in refused.stderr
    assert "did not write" in refused.stderr
    assert stores_file.read_text() == PRODUCTION_STORES
    assert sorted(p.name for p in production.iterdir()) == ["stores.toml"]

    stores_file.unlink()  # only the production database is left: the demo leaves it alone too
    database = production / "fluxion.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE inventario_raw AS SELECT 'tienda_02' AS ubicacion_id")
    before = database.read_bytes()
    refused = demo("--stores", "1", "--rows", "50", "--db", str(database))
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr
    assert "fluxion.duckdb" in refused.stderr
    assert database.read_bytes() == before
    assert sorted(p.name for p in production.iterdir()) == ["fluxion.duckdb"]

    own = tmp_path / "fluxion-demo" / "fluxion.duckdb"  # a directory of its own: run it twice
    for _ in range(2):
        result = demo("--stores", "1", "--rows", "50", "--db", str(own))
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert (own.parent / "stores.toml").exists()
