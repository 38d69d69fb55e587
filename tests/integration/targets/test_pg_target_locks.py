"""The PostgreSQL target's advisory locks cannot collide, and a malformed URL is one line.

Issue 23, item 3: the run guard's keys were ``hashtext(store_id)`` (32 bits), and ``s14208``
and ``s189525`` hash the same: a run of one refused a run of the other with exit 4. The keys are
now 64 bits of SHA-256 over (kind, schema, store); the guard's ``confirm`` reads them back from
``pg_locks``. A ``DATABASE_URL`` with a stray ``[`` crashed with a traceback (exit 1).
"""

from __future__ import annotations

import pytest
from etl_cli import run_cli
from target_db import TargetReader

from fluxion_etl.errors import RunLockedError
from fluxion_etl.targets.postgres.locks import StoreLocks, key_halves, lock_key
from fluxion_etl.targets.postgres.target import PostgresTarget
from fluxion_etl.targets.postgres.url import resolve_login
from fluxion_harness.postgres_source import PgServer

COLLIDING = ("s14208", "s189525")


def target(env: dict[str, str]) -> PostgresTarget:
    return PostgresTarget(resolve_login(env["DATABASE_URL"], env), env["DATABASE_SCHEMA"], 5.0)


def test_stores_whose_hashtext_collides_run_at_once(
    pg_target_env: dict[str, str], pg_server: PgServer
) -> None:
    reader = TargetReader(pg_target_env, pg_server)
    same = reader.query("SELECT hashtext(?) = hashtext(?) AS same", list(COLLIDING))
    assert same == [{"same": True}]  # the collision the old keys had
    first, second = target(pg_target_env), target(pg_target_env)
    with first.guard("run-a", [COLLIDING[0]]), second.guard("run-b", [COLLIDING[1]]):
        assert isinstance(first.locks, StoreLocks) and isinstance(second.locks, StoreLocks)
        with first.connect() as con, con.cursor() as cur:
            first.locks.confirm(cur, COLLIDING[0])  # each guard sees its own lock in pg_locks
            second.locks.confirm(cur, COLLIDING[1])
            held = cur.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
                "AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
                list(key_halves(lock_key("guard", pg_target_env["DATABASE_SCHEMA"], "s14208"))),
            ).fetchone()
            assert held == (1,)
        third = target(pg_target_env).guard("run-c", [COLLIDING[0]])
        with pytest.raises(RunLockedError, match="another run holds store s14208"), third:
            pass  # the same store is still excluded


def test_keys_differ_by_kind_schema_and_store() -> None:
    keys = {
        lock_key(kind, schema, store)
        for kind in ("guard", "publish", "migrate")
        for schema in ("public", "fluxion")
        for store in ("", *COLLIDING, "tienda_02")
    }
    assert len(keys) == 3 * 2 * 4
    assert all(-(2**63) <= key < 2**63 for key in keys)


@pytest.mark.parametrize("command", ["run", "check", "status"])
@pytest.mark.parametrize(
    "url", ["postgresql://etl@[10.0.0.5/fluxion", "postgresql://etl@db]:5432/fluxion"]
)
def test_a_url_with_a_stray_bracket_is_one_configuration_line(
    pg_target_env: dict[str, str], command: str, url: str
) -> None:
    result = run_cli([command], {**pg_target_env, "DATABASE_URL": url}, timeout=60)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_URL is not a valid postgresql:// URL" in lines[0]
