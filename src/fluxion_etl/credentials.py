"""SQL credentials: from the environment or from AWS Secrets Manager, and nowhere else.

A fallback password in code once took the chain's ETL down; there is no default here. The
password lives in one object whose ``repr`` hides it, and :func:`redact` scrubs it from any
text (driver messages, exceptions) before that text is logged or written to the ledger.
"""

from __future__ import annotations

import json
import os
import re
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


#: environment variables that hold a secret. The CLI takes them out of its own environment as
#: it starts (:func:`withhold_secret_environment`), before any child process exists: the fork
#: server, the resource tracker and every fetch process inherit an environment without them.
#: The fetch gets its login as an argument, through the fork server's socket, not the environment.
SECRET_VARIABLES = ("SQL_PASS", "PGPASSWORD")
_withheld: dict[str, str] = {}


def withhold_secret_environment() -> None:
    """Move :data:`SECRET_VARIABLES` out of ``os.environ`` into this process's memory (read back
    through :func:`secret_environment`). Call it while the process has a single thread: the C
    library's environment is not safe to change while other threads read it."""
    for name in SECRET_VARIABLES:
        value = os.environ.pop(name, None)
        if value is not None:
            _withheld[name] = value


def secret_environment() -> Mapping[str, str]:
    """The environment as the operator gave it: ``os.environ`` over what was withheld."""
    return {**_withheld, **os.environ}


def load_credentials(env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials from ``SQL_USER``/``SQL_PASS``, else the secret ``SQL_CREDENTIALS_SECRET_ID``.

    Returns None when neither is configured; the caller decides whether its drivers need them.
    """
    env = secret_environment() if env is None else env
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
    """``text`` with the SQL password replaced by ``***`` (see :func:`redact_secret`). Call it
    on the driver's text as it came, before any whitespace is collapsed: a password with two
    spaces in a row would no longer match afterwards."""
    if credentials is None:
        return text
    return redact_secret(text, credentials.password, credentials.user)


#: a secret shorter than this is replaced only where a connection string or a driver shows it
#: as the password, never as free text (see :func:`redact_secret`)
MIN_FREE_TEXT_SECRET = 8
_SHOWN_AS_SECRET = r"(?i)(\b(?:pwd|password)\s*[=:]\s*[{'\"]?)"  # noqa: S105 - a pattern, not a password


def redact_secret(text: str, secret: str | None, user: str | None = None) -> str:
    """``text`` with ``secret`` (and its ODBC-escaped form, ``}`` doubled) replaced by ``***``.

    Where a driver shows the password as such (after ``PWD=``, inside ``PWD={}``, after
    ``password=`` or ``password:``) it is always replaced, whatever it is. Elsewhere in the text it
    is replaced only when it is at least :data:`MIN_FREE_TEXT_SECRET` characters long and is not the
    user name. Why: replacing every occurrence of a short or common password turns ordinary words
    and numbers into ``***`` (``port *** failed`` when it is ``5432``, ``is the VPN u***`` when it
    is ``p``), which garbles the message *and* tells whoever reads the log what the password is; and
    a password equal to the user name is shown by the user name anyway, so masking it would only
    reveal that they are equal. Drivers print a password as free text only when they echo a
    connection string, which the first rule covers.
    """
    if not secret:
        return text
    forms = sorted({secret, secret.replace("}", "}}")}, key=len, reverse=True)
    for form in forms:
        text = re.sub(_SHOWN_AS_SECRET + re.escape(form), lambda m: m.group(1) + "***", text)
    if len(secret) >= MIN_FREE_TEXT_SECRET and secret != user:
        for form in forms:
            text = text.replace(form, "***")
    return text
