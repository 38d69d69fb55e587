"""An inactive store named by ``--stores`` runs with a log line saying so, and ``status`` dates
an accepted empty snapshot: never an age without the publication it counts from. Over SQLite
demo stores: no store server needed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from etl_cli import json_lines, run_cli

from fluxion_etl.demo.runner import build_demo_stores


def stores_file(path: Path, database: str, *, warehouse: str, active: bool) -> Path:
    path.write_text(
        f'[[stores]]\nid = "tienda_16"\nname = "CERRADA"\ntype = "tienda"\n'
        f'database = "{database}"\nwarehouse = "{warehouse}"\ndriver = "SQLite3"\n'
        f"active = {'true' if active else 'false'}\n",
        encoding="utf-8",
    )
    return path


def environment(tmp_path: Path, stores: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "ETL_", "DATABASE"))},
        "ETL_STORES_FILE": str(stores),
        "DATABASE_PATH": str(tmp_path / "fluxion.duckdb"),
    }


def test_an_inactive_store_named_by_the_run_runs_with_a_line_saying_so(tmp_path: Path) -> None:
    (store,) = build_demo_stores(tmp_path / "stores", count=1, products=100)
    path = stores_file(
        tmp_path / "stores.toml", store.database, warehouse=store.warehouse, active=False
    )
    env = environment(tmp_path, path)
    named = ((["run", "--stores", "tienda_16"], {}), (["run"], {"ETL_TIENDAS": "tienda_16"}))
    for args, extra in named:
        result = run_cli(args, {**env, **extra})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        (line,) = [
            line for line in json_lines(result.stdout) if "inactive" in str(line.get("event"))
        ]
        assert line["level"] == "warning" and line["stores"] == ["tienda_16"]
    skipped = run_cli(["run"], env)  # named by nobody: an inactive store is not run
    assert skipped.returncode == 2 and "no active store" in skipped.stderr


def test_status_dates_an_accepted_empty_snapshot_and_gives_no_age_without_it(
    tmp_path: Path,
) -> None:
    (store,) = build_demo_stores(tmp_path / "stores", count=1, products=100)
    path = stores_file(tmp_path / "stores.toml", store.database, warehouse="9999", active=True)
    env = environment(tmp_path, path)
    accepted = run_cli(["run", "--accept-shrink", "all"], env)
    assert accepted.returncode == 0, accepted.stdout[-3000:] + accepted.stderr
    status = run_cli(["status", "--json"], env)
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)
    assert (row["estado"], row["registros_servidos"]) == ("exitoso", 0)
    assert row["fecha_publicacion"] is not None  # the empty snapshot's publication
    assert row["snapshot_age_seconds"] is not None and not row["stale"]
    table = run_cli(["status"], env)
    (line,) = [line for line in table.stdout.splitlines() if line.strip().startswith("tienda_16")]
    assert line.count(str(row["fecha_publicacion"])[:10]) == 2  # started, and published
