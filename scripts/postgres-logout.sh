#!/usr/bin/env bash
# `scripts/postgres-logout.sh ROLE PORT`: drops the throw-away login ROLE that
# scripts/postgres-login.sh made on the local cluster at PORT, with the databases it still owns
# (a test that crashed before its clean-up) and the logins it created (CREATEROLE: the secrets
# test's own). scripts/test.sh calls it when the suite ends, however it ends. Needs root (su).
set -uo pipefail
role=$1
port=$2
[[ $role =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "postgres-logout.sh: bad role name $role" >&2; exit 2; }
as_postgres() { su postgres -c "psql -q -At -v ON_ERROR_STOP=1 -p $port $*"; }
databases=$(as_postgres "-c \"SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = '$role'\"")
for database in $databases; do
    su postgres -c "dropdb -p $port --if-exists --force '$database'"
done
created=$(as_postgres "-c \"SELECT m.rolname FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.roleid JOIN pg_roles r ON r.oid = a.member WHERE r.rolname = '$role' AND a.admin_option AND m.rolname <> '$role'\"" 2>/dev/null)
for login in $created; do
    [[ $login =~ ^[a-z_][a-z0-9_]*$ ]] && as_postgres "-c 'DROP ROLE IF EXISTS $login'" || true
done
as_postgres "-c 'DROP ROLE IF EXISTS $role'"
