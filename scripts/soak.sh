#!/usr/bin/env bash
# The chaos soak, one command on a fresh Debian machine: installs the ODBC packages and
# PostgreSQL (the stores' stand-in), starts PostgreSQL on 127.0.0.1 with a login of its own
# (fluxion_soak, random password), installs fluxion with its dev extra into .venv, then runs
# `python -m fluxion_harness.soak` (tools/fluxion_harness/soak.py) with the arguments given, e.g.
#   ./scripts/soak.sh --target duckdb --runs 200 --stores 21 --seed 20261201
#   ./scripts/soak.sh --target postgres --runs 40 --stores 8 --products 2000 --seed 20261218
#   ./scripts/soak.sh --target postgres --layout inventario_actual --runs 25 --stores 8 --seed 20261207
# The soak prints its seed and every fault it drew: the same --seed replays the same runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh --postgres

# shellcheck source=scripts/postgres-login.sh
source scripts/postgres-login.sh fluxion_soak CREATEDB

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
export PYTHONPATH=$PWD/tools${PYTHONPATH:+:$PYTHONPATH}
exec .venv/bin/python -m fluxion_harness.soak "$@"
