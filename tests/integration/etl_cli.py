"""Running the real `fluxion-etl` CLI against the PostgreSQL stand-in, and reading what it wrote.

Shared by the integration tests: a stores file for PostgreSQL databases, the CLI in a child
process, its JSON log lines, and the published rows and ledger rows of a target file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from fluxion_etl.run.clean_sql import DECIMAL_TYPES

PG_DRIVER = "PostgreSQL Unicode"
#: the published columns a row-by-row comparison with the oracle checks, by kind
NUMERIC_COLUMNS = tuple(DECIMAL_TYPES)
TEXT_COLUMNS = (
    "codigo_barras",
    "descripcion_producto",
    "categoria",
    "grupo",
    "subgrupo",
    "marca",
    "presentacion",
    "cuadrante",
)


def stores_toml(stores: Sequence[Any], pg_server: Any, extra: str = "") -> str:
    blocks = [
        f"""
[[stores]]
id = "{store.id}"
name = "{store.name}"
type = "{"cedi" if store.id.startswith("cedi") else "tienda"}"
host = "{pg_server.host}"
port = {pg_server.port}
database = "{store.database}"
warehouse = "{store.warehouse}"
driver = "{PG_DRIVER}"
"""
        for store in stores
    ]
    return "\n".join(blocks) + extra


def write_stores(env: dict[str, str], *groups: tuple[Sequence[Any], Any], extra: str = "") -> None:
    """Write the run's stores file (``ETL_STORES_FILE`` in ``env``): each group of stores
    reached at its own server (host, port), then ``extra`` TOML."""
    text = "".join(stores_toml(stores, server) for stores, server in groups) + extra
    Path(env["ETL_STORES_FILE"]).write_text(text, encoding="utf-8")


def closed_port_store(store_id: str = "tienda_99") -> str:
    """A stores-file entry for a store behind a closed port on 127.0.0.1 (VPN down)."""
    return f"""
[[stores]]
id = "{store_id}"
name = "SIN VPN"
type = "tienda"
host = "127.0.0.1"
port = 9
database = "VAD10"
warehouse = "9902"
driver = "{PG_DRIVER}"
"""


def run_cli(
    args: Sequence[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fluxion_etl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def published_rows(db: Path, store_id: str) -> dict[str, dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute("SELECT * FROM inventario_raw WHERE ubicacion_id = ?", [store_id])
        names = [c[0] for c in cursor.description]
        return {
            row[names.index("codigo_producto")]: dict(zip(names, row, strict=True))
            for row in cursor.fetchall()
        }


def published_as_expected(db: Path, store: Any) -> dict[str, dict[str, Any]]:
    """``store``'s published rows, asserted equal to its oracle's (``store.data.expected``): the
    same product codes, every compared column, the location's name. Returned by product code,
    for the caller's own further checks."""
    rows = published_rows(db, store.id)
    expected = store.data.expected
    assert set(rows) == set(expected), store.id
    for code, want in expected.items():
        got = rows[code]
        for column in NUMERIC_COLUMNS + TEXT_COLUMNS:
            assert got[column] == getattr(want, column), (store.id, code, column, got[column])
        assert got["ubicacion_nombre"] == store.name
    return rows


def ledger_rows(db: Path, run_id: str | None = None) -> dict[str, dict[str, Any]]:
    """The ledger rows of ``run_id`` (default: the run that started last), by store id."""
    with duckdb.connect(str(db), read_only=True) as con:
        if run_id is None:
            newest = con.execute(
                "SELECT run_id FROM etl_ejecuciones ORDER BY fecha_inicio DESC LIMIT 1"
            ).fetchone()
            assert newest is not None, "the ledger is empty"
            run_id = newest[0]
        cursor = con.execute("SELECT * FROM etl_ejecuciones WHERE run_id = ?", [run_id])
        names = [c[0] for c in cursor.description]
        return {
            row[names.index("ubicacion_id")]: dict(zip(names, row, strict=True))
            for row in cursor.fetchall()
        }
