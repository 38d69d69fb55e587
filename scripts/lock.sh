#!/usr/bin/env bash
# Regenerates the lock files from setup.cfg; rerun after any change to its requirements (or to
# requirements/dev.in), and commit the result:
#   requirements/dev.txt    everything tox and CI install: install_requires + the dev and sentry
#                           extras + requirements/dev.in (checkov, check-jsonschema)
#   requirements/image.txt  what the image installs: install_requires only, at the versions of
#                           dev.txt (-c), so the image ships exactly what the tests ran with
# Exact versions with every file's sha256 (pip installs them with --require-hashes), resolved for
# the image's platform (CPython 3.11, x86_64 Linux). Upgrades: `scripts/lock.sh --upgrade`
# (or --upgrade-package NAME); dependabot proposes them as pull requests.
# Uses `uv` from PATH, else installs the pinned uv into .venv (as scripts/test.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
uv_version=0.13.8
uv=$(command -v uv || true)
if [[ -z $uv ]]; then
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    .venv/bin/python -m pip install -q "uv==$uv_version"
    uv=.venv/bin/uv
fi
compile=("$uv" pip compile --quiet --generate-hashes --python-version 3.11
         --python-platform x86_64-unknown-linux-gnu --custom-compile-command scripts/lock.sh --annotation-style line "$@")
"${compile[@]}" setup.cfg requirements/dev.in --extra dev --extra sentry \
    --output-file requirements/dev.txt
"${compile[@]}" setup.cfg --constraint requirements/dev.txt --output-file requirements/image.txt
