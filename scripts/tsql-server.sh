#!/usr/bin/env bash
# A real T-SQL server for the tests: Babelfish for PostgreSQL (TDS + T-SQL on a modified PostgreSQL),
# built from the source tarballs in ../shared/vendor/babelfish/ (beside the checkout).
#
#   scripts/tsql-server.sh build    build once into the cache (reused when present; needs root for apt)
#   scripts/tsql-server.sh start    build if needed, then start a throw-away server on 127.0.0.1 and
#                                   print `export FLUXION_TEST_TSQL_...=...` lines on stdout:
#                                   `eval "$(scripts/tsql-server.sh start)"` (progress on stderr)
#   scripts/tsql-server.sh env      print the export lines of the running server again
#   scripts/tsql-server.sh stop     stop the server and remove its data directory
#   scripts/tsql-server.sh key      print the cache directory
#
# Cache: ${FLUXION_BABELFISH_CACHE:-/var/cache/fluxion}/babelfish-<key>/, key = the first 12 hex of the
# sha256 over the three tarballs' sha256s; `.built` in it is written only when the whole build
# succeeded (a partial build is wiped and redone). The build follows INSTALLING.md.tmpl from the
# extensions tarball, with Debian 12's adjustments: the ANTLR runtime takes utfcpp from Debian's
# libutfcpp-dev (its cmake would clone it from GitHub), the grammar's cmake gets the resolved java
# path (-DJava_JAVA_EXECUTABLE), the extensions' Makefiles lose -Werror (gcc 12's
# maybe-uninitialized warnings in babelfishpg_tsql) and everything is compiled with -fcommon (gcc >= 10 defaults to
# -fno-common: "multiple definition" link errors). Everything runs under `nice -n 19`, make -j2.
#
# Server: data directory ${FLUXION_TSQL_RUN_DIR:-/tmp/fluxion-tsql}/data owned by the `postgres`
# system user (PostgreSQL refuses to run as root), listening on 127.0.0.1 only: TDS on
# ${FLUXION_TSQL_PORT:-11433}, PostgreSQL on ${FLUXION_TSQL_PG_PORT:-15433}; ssl=on with a self-signed
# certificate made at start; babelfishpg_tsql.migration_mode=multi-db (one database per store); one
# login (FLUXION_TSQL_LOGIN, default fluxion_tsql) with a random password, never written to disk
# except in the run directory's env file (mode 600, removed by stop).
set -euo pipefail

_tsql_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENDOR=${FLUXION_BABELFISH_VENDOR:-$_tsql_root/../shared/vendor/babelfish}
CACHE_ROOT=${FLUXION_BABELFISH_CACHE:-/var/cache/fluxion}
RUN_DIR=${FLUXION_TSQL_RUN_DIR:-/tmp/fluxion-tsql}
TDS_PORT=${FLUXION_TSQL_PORT:-11433}
PG_PORT=${FLUXION_TSQL_PG_PORT:-15433}
LOGIN=${FLUXION_TSQL_LOGIN:-fluxion_tsql}
RUN_USER=${FLUXION_TSQL_RUN_USER:-postgres}
JOBS=${FLUXION_BABELFISH_JOBS:-2}

PG_TARBALL=pg-babelfish-BABEL_4_2_0__PG_16_3.tar.gz
EXT_TARBALL=babelfish_extensions-BABEL_4_2_0.tar.gz
ANTLR_TARBALL=antlr4-cpp-runtime-4.9.3.tar.gz
#: what the tests need to reach it besides the wheel's Driver 18: FreeTDS's ODBC driver (installed
#: by `start`)
CLIENT_PACKAGES=(tdsodbc)
BUILD_PACKAGES=(build-essential flex bison cmake pkg-config libxml2-dev libxml2-utils libicu-dev libssl-dev
    uuid-dev libossp-uuid-dev libreadline-dev zlib1g-dev libutfcpp-dev default-jre-headless openssl perl)

cache_dir() {
    local key
    key=$(cd "$VENDOR" && sha256sum "$PG_TARBALL" "$EXT_TARBALL" "$ANTLR_TARBALL" | awk '{print $1}' \
        | sha256sum | cut -c1-12)
    echo "$CACHE_ROOT/babelfish-$key"
}

log() { echo "[tsql-server $(date -u +%H:%M:%S)] $*" >&2; }

install_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
}

build() {
    local prefix src java start
    prefix=$(cache_dir)
    if [[ -f $prefix/.built ]]; then
        log "Babelfish already built in $prefix"
        return 0
    fi
    start=$(date +%s)
    install_packages "${BUILD_PACKAGES[@]}"
    rm -rf "$prefix"
    mkdir -p "$prefix"
    src=$prefix/src
    mkdir -p "$src"
    log "building into $prefix (log: $prefix/build.log)"
    # A separate bash, so that `set -e` stops at the first failing step (it is off inside a
    # command list that is tested with ||); its progress lines go to fd 3, the terminal.
    if ! "$BASH" "${BASH_SOURCE[0]}" _build_steps "$prefix" 3>&2 >"$prefix/build.log" 2>&1; then
        log "BUILD FAILED; last lines of $prefix/build.log:"
        tail -n 40 "$prefix/build.log" >&2
        return 1
    fi
    rm -rf "$src"
    echo "built $(date -u +%FT%TZ) in $(($(date +%s) - start)) s" >"$prefix/.built"
    log "built in $(($(date +%s) - start)) s: $prefix"
}

build_steps() {
    local prefix=$1
    local src=$prefix/src
    local pg_src=$src/postgresql_modified_for_babelfish
    local ext=$src/babelfish_extensions/contrib
    local jar=$ext/babelfishpg_tsql/antlr/thirdparty/antlr/antlr-4.9.3-complete.jar
    local java e
    java=$(readlink -f "$(command -v java)")
    set -x
    tar -C "$src" -xzf "$VENDOR/$PG_TARBALL"
    tar -C "$src" -xzf "$VENDOR/$EXT_TARBALL"
    tar -C "$src" -xzf "$VENDOR/$ANTLR_TARBALL"

    log "1/5 ANTLR 4.9.3 C++ runtime" 2>&3
    mkdir -p "$src/antlr4-4.9.3/runtime/Cpp/build"
    cd "$src/antlr4-4.9.3/runtime/Cpp/build"
    nice -n 19 cmake .. -Wno-dev -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DANTLR_JAR_LOCATION="$jar" -DWITH_DEMO=False
    nice -n 19 make -j"$JOBS"
    make install
    # The runtime's public headers include "utf8.h": put Debian's utfcpp beside them, as the
    # runtime's own install does when it downloads utfcpp.
    cp -r /usr/include/utf8cpp/utf8.h /usr/include/utf8cpp/utf8 "$prefix/include/antlr4-runtime/"

    log "2/5 modified PostgreSQL 16.3 and its contrib" 2>&3
    cd "$pg_src"
    nice -n 19 ./configure CFLAGS="-O2 -fcommon" --prefix="$prefix" --with-libxml --with-uuid=ossp \
        --with-icu --with-openssl
    nice -n 19 make -j"$JOBS"
    make install
    nice -n 19 make -C contrib -j"$JOBS"
    make -C contrib install

    log "3/5 T-SQL grammar (ANTLR)" 2>&3
    # gcc 12 warns where the authors' compiler did not: no -Werror in any of the four extensions
    for e in babelfishpg_common babelfishpg_money babelfishpg_tds babelfishpg_tsql; do
        sed -i 's/ -Werror / /' "$ext/$e/Makefile"
    done
    cd "$ext/babelfishpg_tsql"
    echo "SHLIB_LINK += -Wl,-rpath,$prefix/lib" >>Makefile
    sed -i "s|SET (MYDIR /usr/local/include/antlr4-runtime/)|SET (MYDIR $prefix/include/antlr4-runtime/)|" \
        antlr/CMakeLists.txt
    cd antlr
    ANTLR4_JAVA_BIN="$java" nice -n 19 cmake -Wno-dev -DJava_JAVA_EXECUTABLE="$java" .
    ANTLR4_JAVA_BIN="$java" nice -n 19 make -j"$JOBS" all

    local makevars=(PG_CONFIG="$prefix/bin/pg_config" PG_SRC="$pg_src" cmake="$(command -v cmake)"
        ANTLR4_JAVA_BIN="$java" ANTLR4_RUNTIME_INCLUDE_DIR="$prefix/include/antlr4-runtime"
        ANTLR4_RUNTIME_LIB_DIR="$prefix/lib")
    for e in babelfishpg_common babelfishpg_money babelfishpg_tds babelfishpg_tsql; do
        log "4/5 extension $e" 2>&3
        nice -n 19 make -C "$ext/$e" -j"$JOBS" "${makevars[@]}"
        make -C "$ext/$e" "${makevars[@]}" install
    done
    set +x
}

as_run_user() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u "$RUN_USER" -- "$@"
    else
        "$@"
    fi
}

print_env() {
    [[ -f $RUN_DIR/env ]] || { echo "no Babelfish server running (no $RUN_DIR/env)" >&2; return 1; }
    cat "$RUN_DIR/env"
}

start() {
    local prefix bin data password t0
    prefix=$(cache_dir)
    [[ -f $prefix/.built ]] || build
    install_packages "${CLIENT_PACKAGES[@]}"
    bin=$prefix/bin
    t0=$(date +%s.%N)
    stop >/dev/null 2>&1 || true
    [[ $(id -u) == 0 ]] && ! id "$RUN_USER" >/dev/null 2>&1 && useradd --system --no-create-home "$RUN_USER"
    mkdir -p "$RUN_DIR"
    data=$RUN_DIR/data
    [[ $(id -u) == 0 ]] && chown "$RUN_USER" "$RUN_DIR"
    chmod 700 "$RUN_DIR"
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
    # md5 in pg_hba.conf: Babelfish's TDS login refuses scram-sha-256 entries ("pg_hba.conf entry
    # specifies unsupported TDS authentication")
    as_run_user "$bin/initdb" -D "$data" -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=md5 \
        -U postgres >"$RUN_DIR/initdb.log"
    as_run_user openssl req -new -x509 -days 2 -nodes -subj "/CN=localhost" -keyout "$data/server.key" \
        -out "$data/server.crt" >/dev/null 2>&1
    as_run_user chmod 600 "$data/server.key"
    as_run_user tee -a "$data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$RUN_DIR'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
shared_preload_libraries = 'babelfishpg_tds'
babelfishpg_tds.listen_addresses = '127.0.0.1'
babelfishpg_tds.port = $TDS_PORT
allow_system_table_mods = on
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    as_run_user "$bin/pg_ctl" -D "$data" -l "$RUN_DIR/server.log" -w -t 60 start >/dev/null
    PGOPTIONS="-c client_min_messages=warning" as_run_user "$bin/psql" -q -X -v ON_ERROR_STOP=1 -h "$RUN_DIR" -p "$PG_PORT" -U postgres -d postgres >/dev/null <<SQL
CREATE USER $LOGIN WITH SUPERUSER CREATEDB CREATEROLE PASSWORD '$password' INHERIT;
CREATE DATABASE babelfish_db OWNER $LOGIN;
\c babelfish_db
CREATE EXTENSION IF NOT EXISTS babelfishpg_tds CASCADE;
GRANT ALL ON SCHEMA sys TO $LOGIN;
ALTER SYSTEM SET babelfishpg_tsql.database_name = 'babelfish_db';
ALTER SYSTEM SET babelfishpg_tsql.migration_mode = 'multi-db';
SELECT pg_reload_conf();
ALTER DATABASE babelfish_db SET babelfishpg_tsql.migration_mode = 'multi-db';
SET babelfishpg_tsql.migration_mode = 'multi-db';
CALL sys.initialize_babelfish('$LOGIN');
SQL
    umask 077
    cat >"$RUN_DIR/env" <<ENV
export FLUXION_TEST_TSQL_HOST=127.0.0.1
export FLUXION_TEST_TSQL_PORT=$TDS_PORT
export FLUXION_TEST_TSQL_USER=$LOGIN
export FLUXION_TEST_TSQL_PASSWORD=$password
export FLUXION_TEST_TSQL_PG_PORT=$PG_PORT
export FLUXION_TEST_TSQL_PG_SOCKET=$RUN_DIR
ENV
    log "Babelfish up in $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s: TDS 127.0.0.1:$TDS_PORT, PostgreSQL 127.0.0.1:$PG_PORT, login $LOGIN"
    print_env
}

stop() {
    local prefix
    prefix=$(cache_dir)
    if [[ -f $RUN_DIR/data/postmaster.pid && -x $prefix/bin/pg_ctl ]]; then
        as_run_user "$prefix/bin/pg_ctl" -D "$RUN_DIR/data" -m immediate -w stop >/dev/null || true
    fi
    rm -rf "$RUN_DIR"
    log "stopped; $RUN_DIR removed"
}

_tsql_main() {
    case ${1:-} in
        build) build ;;
        start) start ;;
        stop) stop ;;
        env) print_env ;;
        key) cache_dir ;;
        _build_steps) shift; build_steps "$@" ;;
        *) sed -n '2,12p' "${BASH_SOURCE[0]}" >&2; return 2 ;;
    esac
}

_tsql_main "$@"
