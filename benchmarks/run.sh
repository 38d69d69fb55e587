#!/usr/bin/env bash
# One command, fresh Debian machine -> benchmarks/results.md:
# installs the ODBC packages and PostgreSQL, starts PostgreSQL on 127.0.0.1, creates a throw-away
# login with a random password (never written to disk), builds benchmarks/.venv with this
# checkout of fluxion plus dlt (benchmark-only: dlt is never a fluxion dependency), then runs
# benchmarks/benchmark.py. Extra arguments go to benchmark.py (e.g. --rounds 5, --products N).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh --postgres

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
export FLUXION_TEST_PG_USER=fluxion_bench
FLUXION_TEST_PG_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
export FLUXION_TEST_PG_PASSWORD
su postgres -c "psql -q -v ON_ERROR_STOP=1 -p $pg_port" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fluxion_bench') THEN
    CREATE ROLE fluxion_bench LOGIN CREATEDB;
  END IF;
END \$\$;
ALTER ROLE fluxion_bench PASSWORD '$FLUXION_TEST_PG_PASSWORD';
SQL

venv=benchmarks/.venv
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
$venv/bin/pip install -q --upgrade pip
$venv/bin/pip install -q . -r benchmarks/requirements.txt
export RUNTIME__DLTHUB_TELEMETRY=false
exec $venv/bin/python benchmarks/benchmark.py "$@"
