"""SQL credentials: from the environment or from AWS Secrets Manager, and nowhere else.

A fallback password in code once took the chain's ETL down; there is no default here. The
password lives in one object whose ``repr`` hides it, and :func:`redact` scrubs it from any
text (driver messages, exceptions) before that text is logged or written to the ledger.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from fluxion_etl.errors import ConfigError


@dataclass(frozen=True)
class Credentials:
    """One SQL login shared by all locations."""

    user: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password='***')"


def load_credentials(env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials from ``SQL_USER``/``SQL_PASS``, else the secret ``SQL_CREDENTIALS_SECRET_ID``.

    Returns None when neither is configured; the caller decides whether its drivers need them.
    """
    env = os.environ if env is None else env
    user, password = env.get("SQL_USER", ""), env.get("SQL_PASS", "")
    if user or password:
        if not (user and password):
            raise ConfigError("set both SQL_USER and SQL_PASS (only one of them is set)")
        return Credentials(user, password)
    secret_id = env.get("SQL_CREDENTIALS_SECRET_ID", "").strip()
    if secret_id:
        return _from_secrets_manager(secret_id)
    return None


def _from_secrets_manager(secret_id: str) -> Credentials:
    """Read ``{"username": ..., "password": ...}`` from Secrets Manager."""
    document = read_secret_json(
        secret_id,
        check="the name",
        shape="string keys 'username' and 'password'",
        required=("username", "password"),
    )
    user, password = document["username"], document["password"]
    if not (isinstance(user, str) and isinstance(password, str) and user and password):
        raise ConfigError(
            f"secret {secret_id}: 'username' and 'password' must be non-empty strings"
        )
    return Credentials(user, password)


def read_secret_json(
    secret_id: str, *, check: str, shape: str, required: tuple[str, ...]
) -> dict[str, object]:
    """The JSON object a Secrets Manager secret holds, with the ``required`` keys; else one
    ConfigError line naming the secret, never its value (``check``: what the operator should
    look at when it cannot be read; ``shape``: what its JSON must hold). Shared by the SQL login
    and the PostgreSQL target's login.

    boto3 picks region, credentials and endpoint (``AWS_ENDPOINT_URL``) from its usual sources.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ConfigError(
            f"cannot read secret {secret_id} ({code}): check {check} and the task role's "
            "secretsmanager:GetSecretValue permission"
        ) from None
    except BotoCoreError as exc:
        raise ConfigError(f"cannot read secret {secret_id}: {type(exc).__name__}") from None
    try:
        document = json.loads(value.get("SecretString") or "")
    except ValueError:
        document = None
    if not isinstance(document, dict) or any(key not in document for key in required):
        raise ConfigError(f"secret {secret_id} must be JSON with {shape}") from None
    return document


def redact(text: str, credentials: Credentials | None) -> str:
    """``text`` with the password (and its ODBC-escaped form) replaced by ``***``."""
    if credentials is None or not credentials.password:
        return text
    secret = credentials.password
    for form in {secret, secret.replace("}", "}}")}:
        text = text.replace(form, "***")
    return text
