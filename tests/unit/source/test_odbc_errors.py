"""Every real spelling of "what happened" reaches the same error_tipo, for every supported driver.

Each case is a message as a driver really prints it, shaped as the engine that would carry it
(pyodbc: ``(state, "[state] text (native) (SQLFunction)")``; arrow-odbc: ``State: ..., Native
error: ..., Message: ...``), with where it comes from: observed here (this repository's tests run
the driver), the driver's own source, or a public report quoting it.
"""

from __future__ import annotations

from dataclasses import dataclass

import arrow_odbc
import pyodbc
import pytest

from fluxion_etl.credentials import Credentials
from fluxion_etl.errors import DriverUnavailable
from fluxion_etl.source.connection import DriverFamily
from fluxion_etl.source.odbc_errors import SIGNALS, Happened, classify, native_errors

PG, MS, TDS = DriverFamily.POSTGRES, DriverFamily.MSSQL, DriverFamily.FREETDS
WHERE = "tienda_02 (192.168.2.10:14348)"


def via_pyodbc(state: str, text: str) -> pyodbc.Error:
    return pyodbc.Error(state, text)


def via_arrow(function: str, state: str, native: int, text: str) -> arrow_odbc.Error:
    """An arrow_odbc.Error as the bindings raise it (its constructor reads a native handle)."""
    error = arrow_odbc.Error.__new__(arrow_odbc.Error)
    Exception.__init__(
        error,
        f"ODBC emitted an error calling '{function}':\n"
        f"State: {state}, Native error: {native}, Message: {text}",
    )
    return error


@dataclass(frozen=True)
class Case:
    exc: BaseException
    phase: str
    family: DriverFamily
    error_tipo: str
    transient: bool
    source: str


LOST = ("conexion", True)
CASES = {
    # --- psqlODBC: the session ended by the server --------------------------------------------
    "psqlodbc_57P01_arrow": Case(
        via_arrow(
            "SQLExecDirect",
            "57P01",
            35,
            "FATAL: terminating connection due to administrator command; "
            "The connection has been lost",
        ),
        "query",
        PG,
        *LOST,
        "observed here: pg_terminate_backend mid-fetch,"
        " tests/integration/source/test_session_loss.py",
    ),
    "psqlodbc_57P01_pyodbc": Case(
        via_pyodbc(
            "57P01",
            "[57P01] FATAL: terminating connection due to administrator command; "
            "The connection has been lost (35) (SQLExecDirectW)",
        ),
        "query",
        PG,
        *LOST,
        "observed here: pg_terminate_backend mid-fetch,"
        " tests/integration/source/test_session_loss.py",
    ),
    "psqlodbc_57P02": Case(
        via_pyodbc(
            "57P02",
            "[57P02] FATAL: terminating connection due to crash of another server process; "
            "The connection has been lost (35) (SQLFetch)",
        ),
        "query",
        PG,
        *LOST,
        "PostgreSQL errcodes 57P02 crash_shutdown; text from postgres.c (quickdie)",
    ),
    "psqlodbc_57P03_at_connect": Case(
        via_pyodbc(
            "57P03", "[57P03] FATAL: the database system is starting up (101) (SQLDriverConnect)"
        ),
        "connect",
        PG,
        *LOST,
        "PostgreSQL errcodes 57P03 cannot_connect_now (a server restarting)",
    ),
    "libpq_server_closed_the_connection": Case(
        via_pyodbc(
            "HY000",
            "[HY000] server closed the connection unexpectedly This probably means the server "
            "terminated abnormally before or while processing the request. (35) (SQLFetch)",
        ),
        "query",
        PG,
        *LOST,
        "libpq's words, which psqlODBC passes on (psycopg/psycopg2#1079); a generic SQLSTATE, "
        "so the words alone decide",
    ),
    # --- Microsoft ODBC Driver 17/18 --------------------------------------------------------------
    "msodbc18_communication_link_failure": Case(
        via_pyodbc(
            "08S01",
            "[08S01] [Microsoft][ODBC Driver 18 for SQL Server]Communication link failure (0) "
            "(SQLExecDirectW)",
        ),
        "query",
        MS,
        *LOST,
        "jiangwen365/pypyodbc#110, jdelic/django-dbconn-retry#87",
    ),
    "msodbc17_10054_forcibly_closed": Case(
        via_pyodbc(
            "08S01",
            "[08S01] [Microsoft][ODBC Driver 17 for SQL Server]TCP Provider: An existing "
            "connection was forcibly closed by the remote host.\r\n (10054) (SQLExecute); "
            "[08S01] [Microsoft][ODBC Driver 17 for SQL Server]Communication link failure (10054)",
        ),
        "query",
        MS,
        *LOST,
        "jdglaser/fast-to-sql#14",
    ),
    "msodbc17_error_code_0x2746": Case(
        via_pyodbc(
            "HY000",
            "[HY000] [Microsoft][ODBC Driver 17 for SQL Server]TCP Provider: Error code 0x2746 "
            "(10054) (SQLExecDirectW)",
        ),
        "query",
        MS,
        *LOST,
        "mkleehammer/pyodbc#427 (state HY000 here: the native error and the words decide)",
    ),
    "msodbc_10053_aborted": Case(
        via_pyodbc(
            "HY000",
            "[HY000] [Microsoft][ODBC Driver 18 for SQL Server]TCP Provider: An established "
            "connection was aborted by the software in your host machine.\r\n (10053) "
            "(SQLFetch)",
        ),
        "query",
        MS,
        *LOST,
        "WSAECONNABORTED's text (10053) as the driver's TCP Provider reports socket errors",
    ),
    "msodbc_233_no_process_on_the_pipe": Case(
        via_arrow(
            "SQLFetch",
            "HY000",
            233,
            "[Microsoft][ODBC Driver 18 for SQL Server]TCP Provider: No process is on the other "
            "end of the pipe.",
        ),
        "query",
        MS,
        *LOST,
        "dotnet/SqlClient#1151 (error 233, the same network library)",
    ),
    "sqlserver_596_kill_state": Case(
        via_pyodbc(
            "HY000",
            "[HY000] [Microsoft][ODBC Driver 17 for SQL Server][SQL Server]Cannot continue the "
            "execution because the session is in the kill state. (596) (SQLExecDirectW)",
        ),
        "query",
        MS,
        *LOST,
        "SQL Server message 596 (dba.stackexchange.com/questions/292690)",
    ),
    "sqlserver_severe_error_through_freetds": Case(
        via_pyodbc(
            "HY000",
            "[HY000] [FreeTDS][SQL Server]A severe error occurred on the current command.  The "
            "results, if any, should be discarded. (0) (SQLExecDirectW)",
        ),
        "query",
        TDS,
        *LOST,
        "SQL Server's text (dotnet/efcore#7618), through either driver",
    ),
    # --- FreeTDS ----------------------------------------------------------------------------------
    "freetds_read_failed": Case(
        via_pyodbc(
            "08S01", "[08S01] [FreeTDS][SQL Server]Read from the server failed (20004) (SQLFetch)"
        ),
        "query",
        TDS,
        *LOST,
        "FreeTDS/freetds#278; TDSEREAD in FreeTDS src/tds/util.c",
    ),
    "freetds_write_failed": Case(
        via_pyodbc(
            "HY000",
            "[HY000] [FreeTDS][SQL Server]Write to the server failed (20006) (SQLExecDirectW)",
        ),
        "query",
        TDS,
        *LOST,
        "TDSEWRIT in FreeTDS src/tds/util.c; rails-sqlserver/tiny_tds#122",
    ),
    "freetds_server_closed_the_connection": Case(
        via_pyodbc(
            "HY000", "[HY000] [FreeTDS][SQL Server]Server closed the connection (0) (SQLFetch)"
        ),
        "query",
        TDS,
        *LOST,
        "the words issue 12 lists for FreeTDS",
    ),
    "freetds_unexpected_eof": Case(
        via_pyodbc(
            "08S01",
            "[08S01] [FreeTDS][SQL Server]Unexpected EOF from the server (20017) (SQLFetch)",
        ),
        "query",
        TDS,
        *LOST,
        "FreeTDS/freetds#288; TDSESEOF in FreeTDS src/tds/util.c",
    ),
    "freetds_link_reset_inside_a_row_arrow": Case(
        via_arrow("SQLFetch", "HY000", 0, "[FreeTDS][SQL Server]Unknown error"),
        "query",
        TDS,
        *LOST,
        "observed here: a link reset mid-row (TDSDUMP: socket dead inside a ROW token, no 20017),"
        " tests/integration/source/test_tsql_source.py",
    ),
    "freetds_link_reset_inside_a_row_pyodbc": Case(
        via_pyodbc("HY000", "[HY000] [FreeTDS][SQL Server]Unknown error (0) (SQLFetch)"),
        "query",
        TDS,
        *LOST,
        "the same, as pyodbc shapes it",
    ),
    "freetds_server_message_cut_off_by_a_kill_arrow": Case(
        via_arrow("SQLFetch", "42000", 33557097, "[FreeTDS][SQL Server]"),
        "query",
        TDS,
        *LOST,
        "observed here: T-SQL KILL mid-fetch on Babelfish,"
        " tests/integration/source/test_tsql_source.py",
    ),
    "freetds_server_message_cut_off_by_a_kill_pyodbc": Case(
        via_pyodbc("42000", "[42000] [FreeTDS][SQL Server] (33557097) (SQLFetch)"),
        "query",
        TDS,
        *LOST,
        "the same, as pyodbc would shape it when it shows only that record",
    ),
    "freetds_unavailable_at_connect_is_not_a_missing_database": Case(
        via_pyodbc(
            "08S01",
            "[08S01] [FreeTDS][SQL Server]Unable to connect: Adaptive Server is unavailable or "
            "does not exist (20009) (SQLDriverConnect)",
        ),
        "connect",
        TDS,
        *LOST,
        "tds-fdw/tds_fdw#176 (refused port); TDSECONN in FreeTDS src/tds/util.c",
    ),
    "freetds_connection_failed_at_connect": Case(
        via_pyodbc(
            "08001",
            "[08001] [FreeTDS][SQL Server]Adaptive Server connection failed (20002) "
            "(SQLDriverConnect)",
        ),
        "connect",
        TDS,
        *LOST,
        "FreeTDS/freetds#451; TDSEFCON in FreeTDS src/tds/util.c",
    ),
    # --- Microsoft's driver at connect (observed here with the driver from mssql-python-odbc) --
    "msodbc18_login_timeout_at_connect": Case(
        via_pyodbc(
            "HYT00",
            "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Login timeout expired (0) "
            "(SQLDriverConnect)",
        ),
        "connect",
        MS,
        *LOST,
        "observed here: refused port and silent listener,"
        " tests/integration/source/test_mssql_driver.py",
    ),
    "msodbc18_handshake_26_at_connect": Case(
        via_pyodbc(
            "08001",
            "[08001] [Microsoft][ODBC Driver 18 for SQL Server]Client unable to establish "
            "connection because an error was encountered during handshakes before login. "
            "Common causes include client attempting to connect to an unsupported version of "
            "SQL Server, server too busy to accept new connections or a resource limitation "
            "(memory or maximum allowed connections) on the server. (26) (SQLDriverConnect)",
        ),
        "connect",
        MS,
        *LOST,
        "observed here: accept-and-close and reset listeners (test_mssql_driver.py)",
    ),
    "msodbc18_wait_timed_out_258_at_connect": Case(
        via_pyodbc(
            "08001",
            "[08001] [Microsoft][ODBC Driver 18 for SQL Server]TCP Provider: The wait operation "
            "timed out.\r\n (258) (SQLDriverConnect); [08001] [Microsoft][ODBC Driver 18 for SQL "
            "Server]Login timeout expired (0)",
        ),
        "connect",
        MS,
        *LOST,
        "mkleehammer/pyodbc#1319",
    ),
    # --- transient query errors: the session is alive -------------------------------------------
    "sqlserver_1205_deadlock_victim": Case(
        via_pyodbc(
            "40001",
            "[40001] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Transaction (Process ID "
            "66) was deadlocked on lock resources with another process and has been chosen as "
            "the deadlock victim. Rerun the transaction. (1205) (SQLExecDirectW)",
        ),
        "query",
        MS,
        "consulta",
        True,
        "SQL Server message 1205 (microsoft/durabletask-mssql#193)",
    ),
    "sqlserver_1222_lock_timeout_through_freetds": Case(
        via_pyodbc(
            "HY000",
            "[HY000] [FreeTDS][SQL Server]Lock request time out period exceeded. (1222) "
            "(SQLExecDirectW)",
        ),
        "query",
        TDS,
        "consulta",
        True,
        "SQL Server message 1222 (microsoft/azuredatastudio#1352; retried by dotnet/efcore#31725)",
    ),
    "postgres_40001_serialization_failure": Case(
        via_pyodbc("40001", "[40001] ERROR: could not serialize access (7) (SQLExecDirectW)"),
        "query",
        PG,
        "consulta",
        True,
        "observed here: tests/integration/source/test_faults.py raises 40001 in the server",
    ),
    # --- not the link: no retry, or not that kind -----------------------------------------------
    "psqlodbc_wrong_password": Case(
        via_pyodbc(
            "08001",
            '[08001] connection to server at "127.0.0.1", port 5432 failed: FATAL:  password '
            'authentication failed for user "fluxion" (101) (SQLDriverConnect)',
        ),
        "connect",
        PG,
        "login",
        False,
        "observed here: tests/integration/source/test_faults.py (wrong_password)",
    ),
    "sqlserver_login_failed": Case(
        via_pyodbc(
            "28000",
            "[28000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Login failed for user "
            "'etl'. (18456) (SQLDriverConnect)",
        ),
        "connect",
        MS,
        "login",
        False,
        "SQL Server message 18456",
    ),
    "postgres_missing_column_is_a_query_error": Case(
        via_pyodbc(
            "42703",
            "[42703] ERROR: column p.n_pesox does not exist; Error while executing the query (1) "
            "(SQLExecDirectW)",
        ),
        "query",
        PG,
        "consulta",
        False,
        "observed here: tests/integration/source/test_faults.py (query_error)",
    ),
    "msodbc_query_timeout": Case(
        via_pyodbc(
            "HYT00",
            "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired (0) "
            "(SQLExecDirectW)",
        ),
        "query",
        MS,
        "timeout",
        True,
        "the driver's query timeout (SQL_ATTR_QUERY_TIMEOUT)",
    ),
    "unixodbc_cannot_open_lib": Case(
        via_pyodbc(
            "01000",
            "[01000] [unixODBC][Driver Manager]Can't open lib 'ODBC Driver 18 for SQL Server' : "
            "file not found (0) (SQLDriverConnect)",
        ),
        "connect",
        MS,
        "conexion",
        False,
        "observed here: a driver name not in odbcinst.ini"
        " (tests/integration/source/test_odbc_drivers.py)",
    ),
    "unixodbc_im002": Case(
        via_arrow(
            "SQLDriverConnect",
            "IM002",
            0,
            "[unixODBC][Driver Manager]Data source name not found and no default driver specified",
        ),
        "connect",
        PG,
        "conexion",
        False,
        "observed here: arrow-odbc with a connection string without a usable driver",
    ),
    # --- the SQLite3 driver (Christian Werner's sqliteodbc) -----------------------------------
    "sqliteodbc_missing_file_with_nocreat": Case(
        via_arrow("SQLDriverConnect", "HY000", 14, "[SQLite]connect failed"),
        "connect",
        DriverFamily.SQLITE,
        "login",
        False,
        "observed here: a store file that is missing,"
        " tests/integration/source/test_sqlite_sources.py",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_real_message_is_classified_by_what_happened(name: str) -> None:
    case = CASES[name]
    error = classify(case.exc, case.phase, WHERE, None, case.family)  # type: ignore[arg-type]
    assert (error.error_tipo, error.transient) == (case.error_tipo, case.transient), case.source
    assert error.args[0].startswith(WHERE)


@pytest.mark.parametrize("name", list(CASES))
def test_without_knowing_the_driver_the_same_messages_mean_the_same(name: str) -> None:
    """check and older callers may not say which driver raised: every row then applies."""
    case = CASES[name]
    error = classify(case.exc, case.phase, WHERE, None)  # type: ignore[arg-type]
    assert (error.error_tipo, error.transient) == (case.error_tipo, case.transient), case.source


def test_a_lost_session_says_so_and_a_missing_driver_names_the_installed_ones() -> None:
    lost = classify(CASES["psqlodbc_57P01_pyodbc"].exc, "query", WHERE, None, PG)
    assert "connection lost during the query" in str(lost)
    missing = classify(CASES["unixodbc_cannot_open_lib"].exc, "connect", WHERE, None, MS)
    assert isinstance(missing, DriverUnavailable)
    assert "installed drivers:" in str(missing) and "VPN" not in str(missing)


def test_native_error_numbers_are_read_from_both_engines_shapes() -> None:
    assert native_errors(
        "[08S01] TCP Provider: Error code 0x2746 (10054) (SQLExecDirectW); "
        "[08S01] Communication link failure (10054)"
    ) == {10054}
    assert native_errors("State: 08S01, Native error: 233, Message: x") == {233}
    assert native_errors("column varchar(1205) is too long") == set()  # not a native error


def test_native_numbers_count_only_for_the_driver_that_defines_them() -> None:
    """1205 is SQL Server's deadlock victim; from psqlODBC it would be an unrelated number."""
    exc = via_pyodbc("42P01", '[42P01] ERROR: relation "x" does not exist (1205) (SQLExecDirectW)')
    assert classify(exc, "query", WHERE, None, PG).transient is False
    assert classify(exc, "query", WHERE, None, MS).transient is True


def test_every_kind_of_event_has_a_row_in_the_table() -> None:
    assert {signal.happened for signal in SIGNALS} == set(Happened)


def test_the_password_never_reaches_the_message() -> None:
    secret = Credentials("etl", "S3cr3t;}{=")
    exc = via_pyodbc("08S01", f"[08S01] Communication link failure PWD={secret.password} (0)")
    assert secret.password not in str(classify(exc, "query", WHERE, secret, MS))
