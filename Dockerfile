# syntax=docker/dockerfile:1
# The fluxion ETL image: the ECS task (src/fluxion_cfn/task.py) runs its CMD, `fluxion-etl run`,
# as user 1000:1000, on x86_64. Build and push: README, "Build, push, deploy, test a run, enable
# the schedule".
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the fluxion wheel and the wheels of its dependencies ---------------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# setup.cfg reads README.md (long_description): it belongs to the build context.
COPY setup.cfg pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# unixODBC, Microsoft ODBC Driver 18 for SQL Server (Microsoft's Debian 12 repository; its
# licence is accepted with ACCEPT_EULA=Y) and FreeTDS (tdsodbc) as the fallback driver. The build
# fails if either driver is not registered under the name the ETL and the stack use.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl gnupg; \
    curl -fsSL https://packages.microsoft.com/keys/microsoft.asc \
        | gpg --dearmor -o /usr/share/keyrings/microsoft-prod.gpg; \
    echo "deb [arch=amd64 signed-by=/usr/share/keyrings/microsoft-prod.gpg] https://packages.microsoft.com/debian/12/prod bookworm main" \
        > /etc/apt/sources.list.d/microsoft-prod.list; \
    apt-get update; \
    ACCEPT_EULA=Y apt-get install -y --no-install-recommends unixodbc msodbcsql18 tdsodbc; \
    odbcinst -q -d -n FreeTDS > /dev/null || odbcinst -i -d -f /usr/share/tdsodbc/odbcinst.ini; \
    odbcinst -q -d -n "ODBC Driver 18 for SQL Server"; \
    odbcinst -q -d -n "FreeTDS"; \
    apt-get purge -y --auto-remove curl gnupg; \
    rm -rf /var/lib/apt/lists/*

COPY --from=build /wheels /tmp/wheels
RUN pip install --no-index --find-links /tmp/wheels fluxion && rm -rf /tmp/wheels

# Non-root, the uid:gid of the task definition (and of the EFS access point's POSIX user).
RUN groupadd --gid 1000 fluxion \
    && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin fluxion
USER 1000:1000
WORKDIR /home/fluxion

# No ENTRYPOINT: the task definition's Command (the same two words) replaces CMD as a whole.
CMD ["fluxion-etl", "run"]
