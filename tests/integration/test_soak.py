"""CI's slice of the chaos soak: a short seeded soak drawing every fault kind, zero violations.

The soak itself (``python -m fluxion_etl.demo.soak``) runs the real CLI against stores on the
PostgreSQL stand-in; this test runs it as an operator would and reads its report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fluxion_etl.demo.postgres_source import PgServer
from fluxion_etl.demo.soak_faults import FAULTS

#: every fault except "none": one deck of them, so 11 runs draw each kind exactly once
EVERY_FAULT = [kind for kind in FAULTS if kind != "none"]


def test_a_short_seeded_soak_draws_every_fault_and_finds_no_violation(
    tmp_path: Path, pg_server: PgServer
) -> None:
    env = {
        **os.environ,
        "FLUXION_TEST_PG_HOST": pg_server.host,
        "FLUXION_TEST_PG_PORT": str(pg_server.port),
        "FLUXION_TEST_PG_USER": pg_server.user,
        "FLUXION_TEST_PG_PASSWORD": pg_server.password,
    }
    soak = subprocess.run(
        [
            sys.executable,
            "-m",
            "fluxion_etl.demo.soak",
            *("--runs", str(len(EVERY_FAULT)), "--seed", "12", "--stores", "3"),
            *("--products", "400", "--faults", ",".join(EVERY_FAULT)),
            *("--workdir", str(tmp_path / "soak")),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = soak.stdout + soak.stderr
    assert soak.returncode == 0, report
    assert "soak: no violations" in report
    drawn = re.findall(r"^run +\d+ +(\w+) ", soak.stdout, flags=re.MULTILINE)
    assert sorted(drawn[1:]) == sorted(EVERY_FAULT), drawn
    # the invariants were really checked: one line each with a non-zero count, zero violations
    for line in soak.stdout.splitlines():
        if line.startswith(("every store's rows", "exit code agrees", "no run lock")):
            checks, violations = (int(n) for n in line.split()[-2:])
            assert checks > 0 and violations == 0, line
    assert "seed 12" in soak.stdout
