"""`fluxion-etl demo`: the embedded default, end to end through the real SQLite3 ODBC driver."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import duckdb

from fluxion_etl.demo.stellar import generate_store
from fluxion_etl.stores import example_text, parse_stores


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
    examples = [s for s in parse_stores(tomllib.loads(example_text())) if s.active][:3]
    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(
            con.execute("SELECT ubicacion_id, count(*) FROM inventario_raw GROUP BY ALL").fetchall()
        )
        states = con.execute("SELECT DISTINCT estado FROM etl_ejecuciones").fetchall()
    for seed, store in enumerate(examples, start=1):
        assert counts[store.id] == len(generate_store(store.warehouse, 800, seed=seed).expected)
        assert store.id in result.stdout and store.name in result.stdout
    assert states == [("exitoso",)]
