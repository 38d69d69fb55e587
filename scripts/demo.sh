#!/usr/bin/env bash
# One command, fresh Debian machine -> a published demo DuckDB file:
# installs the ODBC packages, creates .venv, installs fluxion, runs `fluxion-etl demo`.
# Extra arguments go to `fluxion-etl demo` (e.g. --stores 8 --rows 3500 --db ./demo.duckdb).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
exec .venv/bin/fluxion-etl demo "$@"
