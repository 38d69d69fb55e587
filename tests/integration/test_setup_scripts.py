"""The set-up scripts leave the machine as they found it: scripts/test.sh drops its throw-away
PostgreSQL login when it ends (a trap: the login of each run is its own, so a second run never
resets a running one's password), and scripts/system-packages.sh upgrades nothing it did not
ask for. The drop itself runs against the real local PostgreSQL server."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from fluxion_harness.postgres_source import PgServer

REPO = Path(__file__).resolve().parents[2]


def test_test_sh_drops_its_own_login_however_it_ends() -> None:
    script = (REPO / "scripts" / "test.sh").read_text(encoding="utf-8")
    login = re.search(r"^source scripts/postgres-login.sh (\S+)", script, re.MULTILINE)
    assert login and "$$" in login.group(1)  # one login per run
    # one EXIT trap, whose function drops the login and stops the T-SQL server
    assert re.search(r"^trap cleanup EXIT$", script, re.MULTILINE)
    cleanup = re.search(r"^cleanup\(\) \{\n(.*?)^\}$", script, re.MULTILINE | re.DOTALL)
    assert cleanup, "no cleanup() function for the trap"
    body = cleanup.group(1)
    assert 'scripts/postgres-logout.sh "$FLUXION_TEST_PG_USER" "$FLUXION_TEST_PG_PORT"' in body
    assert "./scripts/tsql-server.sh stop" in body
    assert not re.search(r"^exec ", script, re.MULTILINE)  # exec would skip the trap


def test_system_packages_installs_without_upgrading_anything() -> None:
    script = (REPO / "scripts" / "system-packages.sh").read_text(encoding="utf-8")
    installs = [line for line in script.splitlines() if "apt-get install" in line]
    assert installs and all("--no-upgrade" in line for line in installs)


@pytest.mark.postgres
def test_the_logout_script_drops_the_login_and_the_databases_it_still_owns(
    pg_server: PgServer, unavailable: Callable[[str], NoReturn]
) -> None:
    if os.geteuid() != 0:
        unavailable("scripts/postgres-logout.sh needs root (su postgres), as scripts/test.sh")
    role = f"fluxion_logout_{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    admin = pg_server.connect()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD %s", [password])
    throwaway = PgServer(pg_server.host, pg_server.port, role, password)
    left = throwaway.connect()  # a test that crashed before its clean-up left this behind
    left.autocommit = True
    with left.cursor() as cur:
        cur.execute(f"CREATE DATABASE {role}_left")
    left.close()
    result = subprocess.run(
        [str(REPO / "scripts" / "postgres-logout.sh"), role, str(pg_server.port)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [role])
        assert cur.fetchone() == (0,)
        cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [f"{role}_left"])
        assert cur.fetchone() == (0,)
    admin.close()
