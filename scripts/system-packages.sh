#!/usr/bin/env bash
# Installs the Debian packages fluxion needs: the ODBC driver manager and the two open drivers
# used by the demo (SQLite) and the tests (PostgreSQL), and what Microsoft's ODBC Driver 18 (from
# the mssql-python-odbc wheel, in the tests) links to or loads: Kerberos/GSSAPI and OpenSSL. With
# --postgres, also the PostgreSQL server that stands in for the stores' SQL Servers in the tests;
# with --image, what builds the image here (podman, debootstrap: scripts/image-here.sh).
# Idempotent, and installs only what is missing: nothing already installed is upgraded
# (--no-upgrade). Needs root (or sudo).
set -euo pipefail
pkgs=(unixodbc odbc-postgresql libsqliteodbc python3-venv libgssapi-krb5-2 libssl3)
for option in "$@"; do
    case $option in
        --postgres) pkgs+=(postgresql postgresql-client) ;;
        --image) pkgs+=(podman debootstrap) ;;
        *) echo "system-packages.sh: unknown option $option (--postgres, --image)" >&2; exit 2 ;;
    esac
done
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-upgrade "${missing[@]}"
fi
