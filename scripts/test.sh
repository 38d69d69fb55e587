#!/usr/bin/env bash
# One command, fresh Debian machine -> the whole test suite:
# installs the ODBC packages, PostgreSQL and the image's build tools (podman, debootstrap), starts
# PostgreSQL on 127.0.0.1, creates a throw-away login with a random password (never written to
# disk; CREATEDB for the store databases, CREATEROLE for the secrets test's own login), builds (once)
# and starts Babelfish, the T-SQL server, then runs tox. Extra arguments go to tox.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh --postgres --image

# PostgreSQL, the stand-in for the stores' SQL Servers, and a throw-away login for the tests:
# one per run (a second run never resets a running one's password), dropped when this script
# ends, however it ends.
# shellcheck source=scripts/postgres-login.sh
source scripts/postgres-login.sh "fluxion_test_$$" CREATEDB CREATEROLE
cleanup() {
    ./scripts/tsql-server.sh stop || true
    scripts/postgres-logout.sh "$FLUXION_TEST_PG_USER" "$FLUXION_TEST_PG_PORT"
}
trap cleanup EXIT

# Babelfish for PostgreSQL, the T-SQL server the `tsql` tests reach through Microsoft's ODBC
# Driver 18 and FreeTDS: built once into a cache outside the checkout (~15 min cold on 2 cores,
# then found), started on 127.0.0.1 with a throw-away login (exports FLUXION_TEST_TSQL_*),
# stopped on exit.
./scripts/tsql-server.sh build
tsql_env=$(./scripts/tsql-server.sh start)
eval "$tsql_env"

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "tox>=4"
.venv/bin/tox "$@"  # not exec: the trap above drops the login and stops Babelfish after it
