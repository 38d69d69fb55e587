"""``DATABASE_URL``: which PostgreSQL server, database and login the target is, minus the password.

The URL is checked with the rest of the settings, before any connection (a bad one is a
configuration error, exit 2): it must be ``postgresql://`` (or ``postgres://``), must not carry a
password (a URL ends up in shell history, task definitions and logs; the password comes from
``PGPASSWORD``, which ECS injects from a secret, or from ``TARGET_CREDENTIALS_SECRET_ID``), and
the server is verified by TLS (``verify-full`` by default; :mod:`.tls` says when ``require`` or
``disable`` may be used): ``allow`` and ``prefer`` fall back to plain text silently, so they
are refused rather than trusted.

The password is read only when the target is opened, kept out of ``repr`` and never logged;
:meth:`PostgresLogin.describe` is what logs and messages show.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fluxion_etl.credentials import read_secret_json, redact_secret, secret_environment
from fluxion_etl.errors import ConfigError
from fluxion_etl.targets.postgres.tls import check_sslmode, settle_tls

#: Modes that guarantee an encrypted session; ``disable`` is the explicit, visible opt-out.
SSLMODES = ("disable", "require", "verify-ca", "verify-full")
SCHEMA_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_database_url(url: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The URL's connection parameters (no password), or ConfigError saying what is wrong
    (``env``: where ``DATABASE_INSECURE_TLS`` is read, default ``os.environ``)."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:  # e.g. an unbalanced '[' ("Invalid IPv6 URL"): one line, no traceback
        raise ConfigError(
            "DATABASE_URL is not a valid postgresql:// URL (a '[' or ']' outside an IPv6 "
            "host in brackets?)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"DATABASE_URL must be a postgresql:// URL (got a {scheme or 'scheme-less'} URL); "
            "for a DuckDB file set DATABASE_PATH instead"
        )
    # imported here, not at the top: config imports this module, so every run (a DuckDB one
    # too) paid psycopg's import (~40 ms of CPU, asyncio and ssl with it) before its first fetch
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = {key: str(value) for key, value in conninfo_to_dict(url).items()}
    except Exception:  # noqa: BLE001 - psycopg's message may echo the URL: say it in our words
        raise ConfigError("DATABASE_URL is not a valid postgresql:// URL") from None
    if params.get("password") or has_password:
        raise ConfigError(
            "DATABASE_URL must not carry a password: set PGPASSWORD or "
            "TARGET_CREDENTIALS_SECRET_ID instead"
        )
    check_sslmode(params, os.environ if env is None else env)
    return params


def check_schema(name: str, setting: str = "DATABASE_SCHEMA") -> str:
    """A schema name fluxion may put in ``search_path`` unquoted (lower case, ``[a-z0-9_]``)."""
    if not SCHEMA_PATTERN.fullmatch(name):
        raise ConfigError(f"{setting}={name!r} must be a lower-case identifier ([a-z_][a-z0-9_]*)")
    return name


@dataclass(frozen=True)
class PostgresLogin:
    """Everything ``psycopg.connect`` needs; the password stays out of ``repr`` and messages."""

    params: Mapping[str, str]
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """``postgresql://user@host:port/db`` for logs: never the password."""
        p = self.params
        user = f"{p['user']}@" if p.get("user") else ""
        return (
            f"postgresql://{user}{p.get('host', '')}:{p.get('port', '5432')}/{p.get('dbname', '')}"
        )

    def connect_kwargs(self) -> dict[str, str]:
        kwargs = dict(self.params)
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs

    def redact(self, text: str) -> str:
        """``text`` without the password (a driver message could quote it)."""
        return redact_secret(text, self.password, self.params.get("user"))


def resolve_login(url: str, env: Mapping[str, str] | None = None) -> PostgresLogin:
    """The login for ``url``: password from ``PGPASSWORD``, else the secret
    ``TARGET_CREDENTIALS_SECRET_ID`` (``username``/``password``, and ``host``/``port``/``dbname``
    filling what the URL leaves out). Without either, libpq's own sources (``~/.pgpass``) apply."""
    env = secret_environment() if env is None else env
    params = check_database_url(url, env)
    password = env.get("PGPASSWORD") or None
    secret_id = env.get("TARGET_CREDENTIALS_SECRET_ID", "").strip()
    if password is None and secret_id:
        document = _secret(secret_id)
        password = str(document["password"])
        for key, ours in (
            ("username", "user"),
            ("host", "host"),
            ("port", "port"),
            ("dbname", "dbname"),
        ):
            if document.get(key) not in (None, "") and not params.get(ours):
                params[ours] = str(document[key])
    settle_tls(params, env)  # the host is known now: the URL's or the secret's
    return PostgresLogin(params, password)


def _secret(secret_id: str) -> dict[str, object]:
    """Read the target's credentials secret (the RDS shape)."""
    document = read_secret_json(
        secret_id,
        check="TARGET_CREDENTIALS_SECRET_ID",
        shape="a string key 'password' (and 'username')",
        required=("password",),
    )
    password = document["password"]
    if not isinstance(password, str) or not password:
        raise ConfigError(f"secret {secret_id}: 'password' must be a non-empty string")
    return document
