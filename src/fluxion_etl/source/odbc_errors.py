"""Turn driver exceptions into fluxion's store errors, by what happened, not by a spelling.

Every supported driver says "the server ended the session" differently -- psqlODBC with SQLSTATE
57P01 and "The connection has been lost", Microsoft's drivers with 08S01 and native error 10054,
FreeTDS with "Read from the server failed" -- and a classifier keyed on one spelling files the
others under the wrong ``error_tipo`` (a session killed on the server became ``consulta`` and was
never retried). So the spellings live in ONE table, :data:`SIGNALS`: each row says what happened,
which drivers say it so, and how (SQLSTATEs, native error numbers, message phrases). The first
row that matches decides; the order matters where one driver's words mean something else
elsewhere (FreeTDS's "Adaptive Server is unavailable or does not exist" is a server out of
reach, not a missing database).

Both engines raise differently shaped exceptions (pyodbc: ``args[0]`` is the SQLSTATE and native
errors are ``(10054)`` before ``(SQLExecDirectW)``; arrow-odbc: one message with ``State: 08S01,
Native error: 10054``), so matching works on (phase, sqlstate, native errors, message). The phase
matters: psqlODBC reports a refused password as 08001 at connect time, SQL Server a missing
database as 42000; both are login problems, not retryable.
"""

from __future__ import annotations

import enum
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from fluxion_etl.credentials import Credentials, redact
from fluxion_etl.errors import (
    ConnectionFailed,
    DataError,
    DriverUnavailable,
    LoginFailed,
    QueryFailed,
    QueryTimeout,
    StoreError,
    TransientQueryError,
)
from fluxion_etl.source.connection import DriverFamily
from fluxion_etl.source.drivers import installed_drivers

Phase = Literal["connect", "query"]


class Happened(enum.Enum):
    """What the server, the link or the machine did, whatever words the driver used."""

    DRIVER_MISSING = "the ODBC driver cannot be loaded"
    SESSION_LOST = "the session was ended by the server or the link"
    UNREACHABLE = "the server could not be reached"
    TIMED_OUT = "the driver gave up waiting"
    TRANSIENT_QUERY = "the server aborted the query; running it again may succeed"
    LOGIN_REFUSED = "the server refused the login or the database"
    BAD_DATA = "the server sent a value that cannot be converted"


ALL = frozenset(DriverFamily)
PSQLODBC = frozenset({DriverFamily.POSTGRES})
SQLITE = frozenset({DriverFamily.SQLITE})
MICROSOFT = frozenset({DriverFamily.MSSQL})
FREETDS = frozenset({DriverFamily.FREETDS})
#: messages and error numbers that come from SQL Server itself reach us through either driver
SQL_SERVER = MICROSOFT | FREETDS


@dataclass(frozen=True)
class Signal:
    """One way ``drivers`` say that ``happened``: any of the SQLSTATEs (a prefix such as ``08``
    matches the class), native error numbers or message phrases (lower case), in ``phase``
    (``None``: either phase)."""

    happened: Happened
    drivers: frozenset[DriverFamily]
    states: tuple[str, ...] = ()
    natives: frozenset[int] = frozenset()
    phrases: tuple[str, ...] = ()
    phase: Phase | None = None
    pattern: str | None = None
    """A regular expression over the lower-cased message, where a phrase cannot say it."""

    def matches(self, phase: Phase, state: str | None, natives: set[int], text: str) -> bool:
        if self.phase is not None and self.phase != phase:
            return False
        return (
            (state is not None and state.startswith(self.states))
            or bool(self.natives & natives)
            or any(phrase in text for phrase in self.phrases)
            or (self.pattern is not None and re.search(self.pattern, text) is not None)
        )


#: The table. Where each spelling comes from: tests/unit/source/test_odbc_errors.py, one test each.
SIGNALS: tuple[Signal, ...] = (
    # unixODBC's driver manager, before any driver runs: a name not in odbcinst.ini, or a
    # registered library that is gone. Not the VPN; retrying cannot help.
    Signal(
        Happened.DRIVER_MISSING,
        ALL,
        states=("IM002", "IM003"),
        phrases=("can't open lib",),
        phase="connect",
    ),
    # The server (or the path to it) ended an established session: a KILL, a service restart,
    # a failover, pg_terminate_backend, a VPN reset. Fetch the store again from scratch.
    Signal(
        Happened.SESSION_LOST,
        PSQLODBC,
        states=("57P01", "57P02", "57P03"),
        phrases=("connection has been lost", "server closed the connection"),
    ),
    Signal(
        Happened.SESSION_LOST,
        MICROSOFT,
        states=("08S01",),
        natives=frozenset({10054, 10053, 233}),
        phrases=("communication link failure", "tcp provider"),
    ),
    Signal(
        Happened.SESSION_LOST,
        SQL_SERVER,
        natives=frozenset({596}),
        phrases=("session is in the kill state", "a severe error occurred on the current command"),
    ),
    Signal(
        Happened.SESSION_LOST,
        FREETDS,
        phrases=(
            "read from the server failed",
            "write to the server failed",
            "server closed the connection",
            "unexpected eof from the server",
        ),
    ),
    # FreeTDS lost the connection in the middle of a token and says so without words: inside a
    # row it marks the socket dead and reports HY000 "Unknown error" (no 20017); inside a
    # server message it has the number but not the text (the 20017 after it is a record
    # arrow-odbc does not show). Seen with a link reset and a T-SQL KILL mid-fetch
    # (tests/integration/source/test_tsql_source.py; the soak's --source tsql).
    Signal(
        Happened.SESSION_LOST,
        FREETDS,
        phrases=("[sql server]unknown error",),
        pattern=r"\[freetds\]\[sql server\]\s*(?:\(-?\d+\)\s*)?(?:\(sql\w+\)\s*)?(?:;|$)",
        phase="query",
    ),
    Signal(
        Happened.UNREACHABLE,
        FREETDS,
        phrases=("adaptive server connection failed", "adaptive server is unavailable"),
        phase="connect",
    ),
    # The SQLite3 driver opens a store's file read-only and never creates it (connection.py:
    # NoCreat=1, mode=ro), so a missing or unreadable file is SQLITE_CANTOPEN, "connect failed
    # (14)": the store's database is wrong, as a database a server does not have. No retry.
    Signal(
        Happened.LOGIN_REFUSED,
        SQLITE,
        phrases=("[sqlite]connect failed",),
        phase="connect",
    ),
    # The server answered and said no: wrong login, or a database it does not have.
    Signal(
        Happened.LOGIN_REFUSED,
        ALL,
        states=("28", "42000"),
        phrases=(
            "password authentication failed",
            "login failed",
            "does not exist",  # PostgreSQL: database "x" does not exist
            "cannot open database",
            "no pg_hba.conf entry",
            'role "',
        ),
        phase="connect",
    ),
    # At connect time a login timeout means nothing answered in time: a refused port and a
    # silent listener both look like this to Microsoft's driver.
    Signal(Happened.UNREACHABLE, ALL, states=("HYT00", "HYT01", "08"), phase="connect"),
    # Deadlock victim, serialization failure, lock request timeout, statement cancelled by the
    # server: the session is alive, the query may well succeed a moment later.
    Signal(Happened.TRANSIENT_QUERY, ALL, states=("40001", "40P01", "57014"), phase="query"),
    Signal(
        Happened.TRANSIENT_QUERY,
        SQL_SERVER,
        natives=frozenset({1205, 1222}),
        phrases=("chosen as the deadlock victim", "lock request time out period exceeded"),
        phase="query",
    ),
    Signal(Happened.TIMED_OUT, ALL, states=("HYT00", "HYT01"), phase="query"),
    Signal(Happened.SESSION_LOST, ALL, states=("08",), phase="query"),
    Signal(Happened.BAD_DATA, ALL, states=("22",), phase="query"),
)

_STATE = re.compile(r"(?:State: |\[)([0-9A-Z]{5})\b")
#: arrow-odbc: ``Native error: 10054``; pyodbc: ``... (10054) (SQLExecDirectW)`` and, for the
#: following records, ``; [08S01] ... (10054)``
_NATIVE = re.compile(r"Native error: (-?\d+)|\((-?\d+)\)(?=\s*(?:\(SQL\w+\)|;|$))")


def sqlstate_of(exc: BaseException) -> str | None:
    """The five-character SQLSTATE of a pyodbc or arrow-odbc error, if it carries one."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], str) and re.fullmatch(r"[0-9A-Z]{5}", args[0]):
        return args[0]
    match = _STATE.search(error_text(exc))
    return match.group(1) if match else None


def native_errors(text: str) -> set[int]:
    """The driver-specific native error numbers in an engine's message."""
    return {int(a or b) for a, b in _NATIVE.findall(text)}


def error_text(exc: BaseException, credentials: Credentials | None = None) -> str:
    """The driver's message, without the engine's own wrapping, whitespace runs collapsed --
    after the password is redacted from the text as it came (a password with two spaces in a
    row would not match once they are collapsed)."""
    message = getattr(exc, "message", None)
    if callable(message):  # arrow_odbc.Error.message() is a method
        text = str(message())
    else:
        args: tuple[object, ...] = getattr(exc, "args", ())
        text = str(args[1]) if len(args) > 1 else str(exc)
    return " ".join(redact(text, credentials).split())


def what_happened(
    phase: Phase, state: str | None, text: str, family: DriverFamily | None = None
) -> Happened | None:
    """The first row of :data:`SIGNALS` for ``family`` (``None``: any driver) that matches."""
    lowered = text.lower()
    natives = native_errors(text)
    for signal in _signals_for(family):
        if signal.matches(phase, state, natives, lowered):
            return signal.happened
    return None


def _signals_for(family: DriverFamily | None) -> Iterable[Signal]:
    return SIGNALS if family is None else (s for s in SIGNALS if family in s.drivers)


def classify(
    exc: BaseException,
    phase: Phase,
    where: str,
    credentials: Credentials | None,
    family: DriverFamily | None = None,
) -> StoreError:
    """A StoreError for ``exc`` raised during ``phase`` at ``where`` (``store id host:port``),
    read with the table of ``family``'s driver (``None``: every driver's)."""
    if isinstance(exc, StoreError):
        return exc
    state = sqlstate_of(exc)
    detail = error_text(exc, credentials)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return QueryTimeout(f"{where}: timed out ({detail}) - is the VPN up?", sqlstate=state)
    if isinstance(exc, OSError) and state is None:
        return ConnectionFailed(f"{where}: network error ({detail}) - is the VPN up?")
    happened = what_happened(phase, state, detail, family)
    return _error_for(happened, phase, where, detail, state, family)


def _error_for(
    happened: Happened | None,
    phase: Phase,
    where: str,
    detail: str,
    state: str | None,
    family: DriverFamily | None = None,
) -> StoreError:
    if happened is Happened.DRIVER_MISSING:
        return DriverUnavailable(
            f"{where}: the ODBC driver cannot be loaded ({detail}); installed drivers: "
            f"{', '.join(installed_drivers()) or 'none'}",
            sqlstate=state,
        )
    if happened is Happened.LOGIN_REFUSED and family is DriverFamily.SQLITE:
        return LoginFailed(
            f"{where}: cannot open the store's database file ({detail}) - it must exist and "
            "be readable (fluxion opens it read-only and never creates it)",
            sqlstate=state,
        )
    if happened is Happened.LOGIN_REFUSED:
        return LoginFailed(
            f"{where}: login refused ({detail}) - check SQL_USER/SQL_PASS and the "
            "store's database name",
            sqlstate=state,
        )
    if phase == "connect" and happened in (None, Happened.SESSION_LOST, Happened.UNREACHABLE):
        return ConnectionFailed(
            f"{where}: cannot connect ({detail}) - is the VPN up and the server listening?",
            sqlstate=state,
        )
    if happened is Happened.SESSION_LOST:
        return ConnectionFailed(
            f"{where}: connection lost during the query ({detail})", sqlstate=state
        )
    if happened is Happened.TRANSIENT_QUERY:
        return TransientQueryError(
            f"{where}: query interrupted by the server ({detail})", sqlstate=state
        )
    if happened is Happened.TIMED_OUT:
        return QueryTimeout(f"{where}: timed out ({detail}) - is the VPN up?", sqlstate=state)
    if happened is Happened.BAD_DATA:
        return DataError(
            f"{where}: the source returned data it cannot convert ({detail})", sqlstate=state
        )
    return QueryFailed(f"{where}: inventory query failed ({detail})", sqlstate=state)
