"""Reclaiming the dead rows that replaced snapshots leave in ``inventario_raw``.

Every publish deletes the store's previous rows; under MVCC they stay on disk, dead, until a
vacuum marks their space reusable. Autovacuum alone gets there at its own pace (a pass once the
dead rows pass 20 % of the table, checked once a minute): over 200 back-to-back runs of one
5,000-row store the table grew 2.4 -> 209 MiB with autovacuum alone, and stayed within 7.8 MiB with
this vacuum (benchmarks/pg_load.py). So after a run's publishes, fluxion vacuums the table once:

``VACUUM (ANALYZE, SKIP_LOCKED, TRUNCATE false) inventario_raw``

* a plain ``VACUUM`` takes ``SHARE UPDATE EXCLUSIVE``, which neither readers (``ACCESS SHARE``)
  nor other shards' publishes (``ROW EXCLUSIVE``) conflict with: nobody waits for it;
* ``TRUNCATE false``: giving the file's empty tail back to the OS would take ``ACCESS
  EXCLUSIVE`` for a moment (readers would queue behind it, and a hot standby cancels its
  queries); the freed space is reused by the next publish anyway;
* ``SKIP_LOCKED``: if another shard's vacuum (or autovacuum) has the table, this one is skipped
  rather than waiting: the dead rows are being reclaimed already;
* ``ANALYZE``: the planner's statistics follow the new snapshots.

Rejected: a partition per store swapped in would leave no dead rows, but detaching and dropping
the old partition take ``ACCESS EXCLUSIVE`` on the parent (every reader waits), and ``DETACH
CONCURRENTLY`` cannot run inside the store's transaction. A vacuum after *each* store would keep
the table closer to its live size, but every vacuum scans the whole index: once per run bounds the
table to about the live rows plus one run's replaced snapshots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

STATEMENT = "VACUUM (ANALYZE, SKIP_LOCKED, TRUNCATE false) {}"
RAW_TABLE = sql.Identifier("inventario_raw")


@dataclass(frozen=True)
class Vacuumed:
    vacuumed: bool
    """False when the table was busy with another vacuum (``SKIP_LOCKED``)."""
    seconds: float
    dead_before: int | None
    """Dead rows the statistics counted before (None when the server has no count yet)."""
    refused: str | None = None
    """The server's warning when it would not vacuum the table (fluxion's role does not own it:
    ``VACUUM`` then only warns and succeeds, so the notice is the only sign)."""


def vacuum(con: psycopg.Connection[Any], table: sql.Composable = RAW_TABLE) -> Vacuumed:
    """Vacuum ``table`` (``inventario_raw``, or the layout's) on ``con`` (autocommit: VACUUM
    cannot run in a transaction)."""
    name = table.as_string(con)
    row = con.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = to_regclass(%s)", [name]
    ).fetchone()
    dead = int(row[0]) if row and row[0] is not None else None
    skipped: list[str] = []
    refused: list[str] = []

    def notice(diagnostic: psycopg.errors.Diagnostic) -> None:
        message = diagnostic.message_primary or ""
        if "lock not available" in message:  # SKIP_LOCKED: another vacuum has the table
            skipped.append(message)
        elif diagnostic.severity_nonlocalized == "WARNING" or message.startswith("skipping"):
            # "permission denied to vacuum ..." (16+), "skipping ... only table or database
            # owner can vacuum it" (15 and before): not vacuumed, whatever the wording
            refused.append(message)

    con.add_notice_handler(notice)
    started = time.monotonic()
    try:
        con.execute(sql.SQL(STATEMENT).format(table))
    finally:
        con.remove_notice_handler(notice)
    seconds = time.monotonic() - started
    return Vacuumed(not skipped and not refused, seconds, dead, refused[0] if refused else None)
