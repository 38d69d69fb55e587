"""Turn driver exceptions into fluxion's store errors, by SQLSTATE and by phase.

Both engines raise differently shaped exceptions (pyodbc: ``args[0]`` is the SQLSTATE; arrow-odbc:
one message with ``State: 08001``), so classification works on (phase, sqlstate, message). The
phase matters: psqlODBC reports a refused password as 08001 at connect time, and SQL Server
reports a missing database as 42000 at connect time; both are login problems, not retryable.
"""

from __future__ import annotations

import re
import socket
from typing import Literal

from fluxion_etl.credentials import Credentials, redact
from fluxion_etl.errors import (
    ConnectionFailed,
    DataError,
    LoginFailed,
    QueryFailed,
    QueryTimeout,
    StoreError,
    TransientQueryError,
)

Phase = Literal["connect", "query"]

_STATE = re.compile(r"(?:State: |\[)([0-9A-Z]{5})\b")
_LOGIN_MARKERS = (
    "password authentication failed",
    "login failed",
    "does not exist",  # PostgreSQL: database "x" does not exist
    "cannot open database",
    "no pg_hba.conf entry",
    'role "',
)
_TRANSIENT_QUERY_STATES = {"40001", "40P01", "57014"}


def sqlstate_of(exc: BaseException) -> str | None:
    """The five-character SQLSTATE of a pyodbc or arrow-odbc error, if it carries one."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], str) and re.fullmatch(r"[0-9A-Z]{5}", args[0]):
        return args[0]
    match = _STATE.search(error_text(exc))
    return match.group(1) if match else None


def error_text(exc: BaseException) -> str:
    """The driver's message, without the engine's own wrapping."""
    message = getattr(exc, "message", None)
    if callable(message):  # arrow_odbc.Error.message() is a method
        text = str(message())
    else:
        args: tuple[object, ...] = getattr(exc, "args", ())
        text = str(args[1]) if len(args) > 1 else str(exc)
    return " ".join(text.split())


def classify(
    exc: BaseException, phase: Phase, where: str, credentials: Credentials | None
) -> StoreError:
    """A StoreError for ``exc`` raised during ``phase`` at ``where`` (``store id host:port``)."""
    if isinstance(exc, StoreError):
        return exc
    state = sqlstate_of(exc)
    detail = redact(error_text(exc), credentials)
    lowered = detail.lower()
    if isinstance(exc, (socket.timeout, TimeoutError)) or state in {"HYT00", "HYT01"}:
        return QueryTimeout(f"{where}: timed out ({detail}) - is the VPN up?", sqlstate=state)
    if isinstance(exc, OSError) and state is None:
        return ConnectionFailed(f"{where}: network error ({detail}) - is the VPN up?")
    if phase == "connect":
        if (
            (state or "").startswith("28")
            or state == "42000"
            or any(marker in lowered for marker in _LOGIN_MARKERS)
        ):
            return LoginFailed(
                f"{where}: login refused ({detail}) - check SQL_USER/SQL_PASS and the "
                "store's database name",
                sqlstate=state,
            )
        return ConnectionFailed(
            f"{where}: cannot connect ({detail}) - is the VPN up and the server listening?",
            sqlstate=state,
        )
    if state is not None and state.startswith("08"):
        return ConnectionFailed(
            f"{where}: connection lost during the query ({detail})", sqlstate=state
        )
    if state in _TRANSIENT_QUERY_STATES:
        return TransientQueryError(
            f"{where}: query interrupted by the server ({detail})", sqlstate=state
        )
    if state is not None and state.startswith("22"):
        return DataError(
            f"{where}: the source returned data it cannot convert ({detail})", sqlstate=state
        )
    return QueryFailed(f"{where}: inventory query failed ({detail})", sqlstate=state)
