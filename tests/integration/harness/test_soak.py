"""CI's slice of the chaos soak, on each target: a short seeded soak drawing every fault kind of
that target once, zero violations; and a shorter one on PostgreSQL's ``inventario_actual``
layout (the chain backend's tables, beside another feed's locations) with the faults that hit its
publish transaction.

The soak itself (``python -m fluxion_harness.soak``) runs the real CLI against stores on the
PostgreSQL stand-in, publishing into a DuckDB file or into a PostgreSQL database of its own on the
same server; this test runs it as an operator would and reads its report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fluxion_harness.postgres_source import PgServer
from fluxion_harness.soak_target import DUCKDB_FAULTS, POSTGRES_FAULTS

#: every fault of the target except "none": one deck of them, so the slice draws each once
EVERY_FAULT = {
    "duckdb": [kind for kind in DUCKDB_FAULTS if kind != "none"],
    "postgres": [kind for kind in POSTGRES_FAULTS if kind != "none"],
}


#: the inventario_actual slice: the faults that end, block or cut its publish transaction, and a
#: store whose snapshot is held back (kept short: the whole suite has a time budget)
ACTUAL_FAULTS = ["sigkill_publish", "target_session_killed", "target_lock_held", "emptied"]


def run_soak(
    tmp_path: Path, pg_server: PgServer, target: str, faults: list[str], *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PG", "ETL_"))},
        "FLUXION_TEST_PG_HOST": pg_server.host,
        "FLUXION_TEST_PG_PORT": str(pg_server.port),
        "FLUXION_TEST_PG_USER": pg_server.user,
        "FLUXION_TEST_PG_PASSWORD": pg_server.password,
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fluxion_harness.soak",
            *("--target", target, "--runs", str(len(faults)), "--seed", "12"),
            *("--stores", "3", "--products", "400", "--faults", ",".join(faults)),
            *("--workdir", str(tmp_path / "soak")),
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("target", sorted(EVERY_FAULT))
def test_a_short_seeded_soak_draws_every_fault_and_finds_no_violation(
    tmp_path: Path, pg_server: PgServer, target: str
) -> None:
    faults = EVERY_FAULT[target]
    soak = run_soak(tmp_path, pg_server, target, faults)
    report = soak.stdout + soak.stderr
    assert soak.returncode == 0, report
    assert "soak: no violations" in report
    drawn = re.findall(r"^run +\d+ +(\w+) ", soak.stdout, flags=re.MULTILINE)
    assert sorted(drawn[1:]) == sorted(faults), drawn
    # the invariants were really checked: one line each with a non-zero count, zero violations
    for line in soak.stdout.splitlines():
        if line.startswith(("every store's rows", "exit code agrees", "no run lock")) or (
            target == "postgres" and line.startswith("no target session outlives")
        ):
            checks, violations = (int(n) for n in line.split()[-2:])
            assert checks > 0 and violations == 0, line
    assert "seed 12" in soak.stdout and f"target {target}" in soak.stdout
    reader = re.search(r"backend reader: (\d+) requests", soak.stdout)
    assert reader and int(reader.group(1)) > 0, "the backend reader never read"


def test_a_seeded_soak_on_the_inventario_actual_layout_finds_no_violation(
    tmp_path: Path, pg_server: PgServer
) -> None:
    soak = run_soak(tmp_path, pg_server, "postgres", ACTUAL_FAULTS, "--layout", "inventario_actual")
    report = soak.stdout + soak.stderr
    assert soak.returncode == 0, report
    assert "layout inventario_actual" in soak.stdout and "soak: no violations" in report
    drawn = re.findall(r"^run +\d+ +(\w+) ", soak.stdout, flags=re.MULTILINE)
    assert sorted(drawn[1:]) == sorted(ACTUAL_FAULTS), drawn
    # every invariant, the layout's own included, really checked, none violated
    checked = ("every store's rows", "exit code agrees", "no target session", "inventario_histo")
    lines = [line for line in soak.stdout.splitlines() if line.startswith(checked)]
    lines += [line for line in soak.stdout.splitlines() if line.startswith("the other feed's")]
    assert len(lines) == 5, soak.stdout
    for line in lines:
        checks, violations = (int(n) for n in line.split()[-2:])
        assert checks > 0 and violations == 0, line
    reader = re.search(r"backend reader: (\d+) requests", soak.stdout)
    assert reader and int(reader.group(1)) > 0, "the backend reader never read"
