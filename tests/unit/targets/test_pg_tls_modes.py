"""The PostgreSQL target verifies its server by default; plain text or an unverified server
only for a server on this machine, or under the explicit override (issue 23, item 2).

What the conninfo fluxion builds demands is checked here; tests/integration/targets/test_pg_tls.py
shows a real libpq refusing an impostor with a self-signed certificate.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fluxion_etl.config import Settings
from fluxion_etl.errors import ConfigError
from fluxion_etl.targets.postgres.tls import is_local, system_bundle
from fluxion_etl.targets.postgres.url import resolve_login

REMOTE = "postgresql://etl@db.internal:5432/inventario"


def conninfo(url: str, env: dict[str, str]) -> dict[str, str]:
    login = resolve_login(url, {"PGPASSWORD": "pw", **env})
    return {k: str(v) for k, v in conninfo_to_dict(make_conninfo(**login.connect_kwargs())).items()}


def test_by_default_the_server_is_verified_against_the_system_bundle() -> None:
    bundle = system_bundle()
    assert bundle is not None and Path(bundle).is_file()
    built = conninfo(REMOTE, {})
    assert built["sslmode"] == "verify-full" and built["sslrootcert"] == bundle


def test_pgsslrootcert_names_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "rds-global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    built = conninfo(REMOTE, {"PGSSLROOTCERT": str(bundle)})
    assert built["sslmode"] == "verify-full" and built["sslrootcert"] == str(bundle)
    with pytest.raises(ConfigError, match=r"PGSSLROOTCERT=.*missing.pem is not a readable file"):
        conninfo(REMOTE, {"PGSSLROOTCERT": str(tmp_path / "missing.pem")})


def test_the_urls_own_sslrootcert_and_verify_ca_are_kept(tmp_path: Path) -> None:
    built = conninfo(REMOTE + "?sslmode=verify-ca&sslrootcert=/etc/ca.pem", {})
    assert built["sslmode"] == "verify-ca" and built["sslrootcert"] == "/etc/ca.pem"


@pytest.mark.parametrize("mode", ["disable", "require"])
@pytest.mark.parametrize(
    "url",
    [REMOTE, "postgresql://etl@10.0.0.5/db", "postgresql://etl@127.0.0.1,db.internal/db"],
)
def test_an_unverified_mode_is_refused_for_a_server_elsewhere(url: str, mode: str) -> None:
    full = f"{url}?sslmode={mode}"
    with pytest.raises(ConfigError, match=f"sslmode={mode} .*only for a server on this machine"):
        Settings.from_env({"DATABASE_URL": full})
    with pytest.raises(ConfigError, match="DATABASE_INSECURE_TLS=1"):
        resolve_login(full, {"PGPASSWORD": "pw"})
    assert conninfo(full, {"DATABASE_INSECURE_TLS": "1"})["sslmode"] == mode  # the override


def test_a_secret_naming_a_remote_host_is_checked_too() -> None:
    from fluxion_etl.targets.postgres.tls import settle_tls

    params = {"sslmode": "disable", "host": "rds.example.internal"}  # filled from the secret
    with pytest.raises(ConfigError, match="plain text"):
        settle_tls(params, {})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://etl@127.0.0.1:5432/db?sslmode=disable",
        "postgresql://etl@localhost/db?sslmode=require",
        "postgresql://etl@[::1]:5432/db?sslmode=disable",
        "postgresql:///db?sslmode=disable",
        "postgresql://etl@%2Fvar%2Frun%2Fpostgresql/db?sslmode=disable",
    ],
)
def test_a_local_server_may_go_without_verification(url: str) -> None:
    built = conninfo(url, {})
    assert built["sslmode"] in ("disable", "require") and "sslrootcert" not in built


@pytest.mark.parametrize("mode", ["prefer", "allow"])
def test_modes_that_fall_back_to_plain_text_are_refused_everywhere(mode: str) -> None:
    with pytest.raises(ConfigError, match="may fall back to an unencrypted session"):
        Settings.from_env({"DATABASE_URL": f"postgresql://etl@127.0.0.1/db?sslmode={mode}"})


def test_hostaddr_decides_when_given() -> None:
    assert not is_local({"host": "localhost", "hostaddr": "10.0.0.5"})
    assert is_local({"host": "db.internal", "hostaddr": "127.0.0.1"})
