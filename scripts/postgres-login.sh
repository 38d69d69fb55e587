# Sourced, not run: `source scripts/postgres-login.sh ROLE [ROLE ATTRIBUTES...]`.
# Starts the newest PostgreSQL cluster on this machine (Debian layout; creates it if missing),
# waits until it answers on 127.0.0.1, gives the login ROLE a fresh random password (never
# written to disk) and the given attributes (default CREATEDB), and exports FLUXION_TEST_PG_HOST,
# _PORT, _USER and _PASSWORD for the tests or the benchmark. Used by scripts/test.sh and
# benchmarks/run.sh, after scripts/system-packages.sh --postgres.
pg_role=$1
shift
pg_attributes=${*:-CREATEDB}
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
export FLUXION_TEST_PG_USER="$pg_role"
FLUXION_TEST_PG_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
export FLUXION_TEST_PG_PASSWORD
su postgres -c "psql -q -v ON_ERROR_STOP=1 -p $pg_port" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$pg_role') THEN
    CREATE ROLE $pg_role LOGIN;
  END IF;
END \$\$;
ALTER ROLE $pg_role LOGIN $pg_attributes PASSWORD '$FLUXION_TEST_PG_PASSWORD';
SQL
