#!/usr/bin/env bash
# One command, fresh Debian machine -> benchmarks/results.md:
# installs the ODBC packages and PostgreSQL, starts PostgreSQL on 127.0.0.1, creates a throw-away
# login with a random password (never written to disk), builds benchmarks/.venv with this
# checkout of fluxion plus dlt (benchmark-only: dlt is never a fluxion dependency), then runs
# benchmarks/benchmark.py. Extra arguments go to benchmark.py (e.g. --rounds 5, --products N).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh --postgres

# shellcheck source=scripts/postgres-login.sh
source scripts/postgres-login.sh fluxion_bench CREATEDB

venv=benchmarks/.venv
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
$venv/bin/pip install -q --upgrade pip
$venv/bin/pip install -q . -r benchmarks/requirements.txt
export RUNTIME__DLTHUB_TELEMETRY=false
# the harnesses the benchmarks share with the tests (tools/fluxion_harness, not in the wheel)
export PYTHONPATH=$PWD/tools${PYTHONPATH:+:$PYTHONPATH}
exec $venv/bin/python benchmarks/benchmark.py "$@"
