#!/usr/bin/env bash
# One command, fresh Debian machine -> the whole test suite:
# installs the ODBC packages and PostgreSQL, starts PostgreSQL on 127.0.0.1, creates a throw-away
# login with a random password (never written to disk; CREATEDB for the store databases,
# CREATEROLE for the secrets test's own login), then runs tox. Extra arguments go to tox.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh --postgres

# Start PostgreSQL (Debian cluster layout); the stand-in for the stores' SQL Servers.
pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -q "^$pg_version main$"; then
    pg_createcluster "$pg_version" main
fi
pg_ctlcluster "$pg_version" main start 2>/dev/null || true
pg_port=$(pg_lsclusters -h | awk -v v="$pg_version" '$1==v && $2=="main" {print $3}')
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
    sleep 1
done
pg_isready -h 127.0.0.1 -p "$pg_port"

export FLUXION_TEST_PG_HOST=127.0.0.1
export FLUXION_TEST_PG_PORT="$pg_port"
export FLUXION_TEST_PG_USER=fluxion_test
FLUXION_TEST_PG_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
export FLUXION_TEST_PG_PASSWORD
su postgres -c "psql -q -v ON_ERROR_STOP=1 -p $pg_port" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fluxion_test') THEN
    CREATE ROLE fluxion_test LOGIN CREATEDB CREATEROLE;
  END IF;
END \$\$;
ALTER ROLE fluxion_test CREATEDB CREATEROLE;
ALTER ROLE fluxion_test PASSWORD '$FLUXION_TEST_PG_PASSWORD';
SQL

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "tox>=4"
exec .venv/bin/tox "$@"
