# syntax=docker/dockerfile:1
# The fluxion ETL image: the ECS task (src/fluxion_cfn/task.py) runs its CMD, `fluxion-etl run`,
# as user 1000:1000, on x86_64. Build and push: docs/aws.md, "Build, push, deploy, test a run, enable
# the schedule". Dependencies come from the hash-pinned lock requirements/image.txt
# (scripts/lock.sh), so a rebuild months later installs what the tests ran with.
#
# Build arguments:
#   PYTHON_IMAGE         the base: Debian bookworm with CPython 3.11 and pip (the tests pass a
#                        local debootstrap base: scripts/image-here.sh)
#   INSTALL_MSODBCSQL18  yes (production) or no: Microsoft's repository and ODBC Driver 18 for
#                        SQL Server; `no` leaves FreeTDS only, for builds that cannot reach it
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the fluxion wheel alone (its dependencies come from the lock) ------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# setup.cfg reads README.md (long_description): it belongs to the build context.
COPY setup.cfg pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG INSTALL_MSODBCSQL18=yes
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# unixODBC, FreeTDS (tdsodbc) as the fallback driver and, unless switched off, Microsoft ODBC
# Driver 18 for SQL Server (Microsoft's Debian 12 repository; its licence is accepted with
# ACCEPT_EULA=Y). The build fails if a driver is not registered under the name the ETL and the
# stack use, or if INSTALL_MSODBCSQL18 is neither yes nor no (a typo must not drop the driver).
RUN set -eux; \
    case "$INSTALL_MSODBCSQL18" in \
        yes|no) ;; \
        *) echo "INSTALL_MSODBCSQL18 must be yes or no, not '$INSTALL_MSODBCSQL18'" >&2; exit 1 ;; \
    esac; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates unixodbc tdsodbc; \
    odbcinst -q -d -n "FreeTDS" > /dev/null || odbcinst -i -d -f /usr/share/tdsodbc/odbcinst.ini; \
    odbcinst -q -d -n "FreeTDS"; \
    if [ "$INSTALL_MSODBCSQL18" = yes ]; then \
        apt-get install -y --no-install-recommends curl gnupg; \
        curl -fsSL https://packages.microsoft.com/keys/microsoft.asc \
            | gpg --dearmor -o /usr/share/keyrings/microsoft-prod.gpg; \
        echo "deb [arch=amd64 signed-by=/usr/share/keyrings/microsoft-prod.gpg] https://packages.microsoft.com/debian/12/prod bookworm main" \
            > /etc/apt/sources.list.d/microsoft-prod.list; \
        apt-get update; \
        ACCEPT_EULA=Y apt-get install -y --no-install-recommends msodbcsql18; \
        odbcinst -q -d -n "ODBC Driver 18 for SQL Server"; \
        apt-get purge -y --auto-remove curl gnupg; \
    fi; \
    rm -rf /var/lib/apt/lists/*

# Amazon RDS's root CAs join the system CA bundle, the one fluxion verifies a PostgreSQL target
# against by default (sslmode=verify-full): a target on RDS needs no PGSSLROOTCERT. One file per
# certificate, as update-ca-certificates wants; where they come from: docker/rds-ca-roots.pem.
COPY docker/rds-ca-roots.pem /tmp/rds-ca-roots.pem
RUN set -eux; \
    awk '/-----BEGIN CERTIFICATE-----/ { n++; f = sprintf("/usr/local/share/ca-certificates/amazon-rds-%03d.crt", n) } \
         f { print > f } \
         /-----END CERTIFICATE-----/ { close(f); f = "" }' /tmp/rds-ca-roots.pem; \
    test "$(ls /usr/local/share/ca-certificates/amazon-rds-*.crt | wc -l)" -eq "$(grep -c -- '-----BEGIN CERTIFICATE-----' /tmp/rds-ca-roots.pem)"; \
    update-ca-certificates; \
    rm /tmp/rds-ca-roots.pem

# The dependencies first (a layer that only changes with the lock), every file checked against
# its hash; then fluxion's own wheel without resolving anything, and pip's consistency check.
COPY requirements/image.txt /tmp/requirements.txt
RUN pip install --require-hashes --only-binary :all: -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && pip check && rm -rf /tmp/wheels

# Non-root, the uid:gid of the task definition (and of the EFS access point's POSIX user).
RUN groupadd --gid 1000 fluxion \
    && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin fluxion
USER 1000:1000
WORKDIR /home/fluxion

# No ENTRYPOINT: the task definition's Command (the same two words) replaces CMD as a whole.
CMD ["fluxion-etl", "run"]
