"""The PostgreSQL target's advisory locks: the run guard per store, and the turns publishes of
one store take.

Every lock is one 64-bit key (:func:`lock_key`): the first 8 bytes of the SHA-256 of what it
guards (its kind, the schema, the store), computed here rather than with the server's
``hashtext``. ``hashtext`` is 32 bits and not made to resist collisions (``s14208`` and
``s189525`` collide, so one store's run refused the other's with exit 4); two distinct
(kind, schema, store) triples meeting on 64 bits of SHA-256 is beyond any chain's store list.
Per schema, so two fluxion deployments in one database do not exclude each other.

A release before this one keyed its locks with ``hashtext``: do not run both against one
schema at once (upgrade between runs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Protocol

import psycopg

from fluxion_etl.errors import ConnectionFailed, RunLockedError


class LockingTarget(Protocol):
    """What the run guard needs of the target it guards."""

    schema: str
    locks: StoreLocks | None

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]: ...

    def describe(self) -> str: ...


def lock_namespace(schema: str) -> str:
    """First key of every advisory lock fluxion takes (hashed by the server; the second key is
    the store's hash, or 0 for migrations): per schema, so two fluxion deployments in one
    database do not exclude each other."""
    return f"fluxion_etl:{schema}"


def lock_key(kind: str, schema: str, store_id: str = "") -> int:
    """The signed 64-bit advisory-lock key of ``kind`` (``guard``, ``publish``, ``migrate``) for
    ``store_id`` in ``schema``: the first 8 bytes of a SHA-256 over the three, NUL-separated
    (none of them can hold a NUL, so distinct triples never hash the same input)."""
    material = "\0".join((lock_namespace(schema), kind, store_id)).encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big", signed=True)


def key_halves(key: int) -> tuple[int, int]:
    """How ``pg_locks`` shows a 64-bit advisory key: ``classid`` (high 32 bits) and ``objid``
    (low 32 bits), with ``objsubid = 1``."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def serialize_store_publish(cur: psycopg.Cursor[Any], schema: str, store_id: str) -> None:
    """Inside a store's publish transaction: wait for any other open publish of the same store.

    The run guard's session lock is the rule, but it goes with its session (a fail-over, a DBA's
    ``pg_terminate_backend``) and another run may then take the store. Two publishes of one store
    that overlap in READ COMMITTED would each delete only the rows they can see and both insert:
    a mix. This transaction-level lock (its own key space, so it never meets the guard's) makes
    them take turns, each swap whole; the wait is bounded by ``lock_timeout`` like any other.
    """
    cur.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [lock_key("publish", schema, store_id)])


def take_migration_lock(cur: psycopg.Cursor[Any], schema: str) -> None:
    """Inside the run's opening transaction: migrations of one schema take turns, so two shards
    starting together do not race."""
    cur.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [lock_key("migrate", schema)])


class StoreLocks:
    """The run guard on PostgreSQL: one session-level advisory lock per store, for the run.

    Locks are taken in sorted order with ``pg_try_advisory_lock`` (never waiting, so two runs
    cannot deadlock) on one autocommit connection kept open for the run. The first store another
    run holds stops this one: everything taken is released and the run exits 4.
    """

    def __init__(self, target: LockingTarget, run_id: str, store_ids: Sequence[str]) -> None:
        self.target = target
        self.run_id = run_id
        self.store_ids = sorted(set(store_ids))
        self._con: psycopg.Connection[Any] | None = None
        self._pid = 0

    def __enter__(self) -> StoreLocks:
        con = self.target.connect(autocommit=True)
        try:
            for store_id in self.store_ids:
                row = con.execute(
                    "SELECT pg_try_advisory_lock(%s::bigint)",
                    [lock_key("guard", self.target.schema, store_id)],
                ).fetchone()
                if not (row and row[0]):
                    raise RunLockedError(
                        f"another run holds store {store_id} on {self.target.describe()} "
                        "(advisory lock); not starting a run over the same stores"
                    )
        except BaseException:
            con.close()  # the session's end releases whatever was taken
            raise
        self._con = con
        self._pid = con.info.backend_pid
        self.target.locks = self
        return self

    def confirm(self, cur: psycopg.Cursor[Any], store_id: str) -> None:
        """Inside a store's publish transaction: the guard's session still holds the store.

        The server drops a session's advisory locks with the session (an RDS fail-over, a DBA's
        ``pg_terminate_backend``, a dropped route): from then on another run may take the
        store. So each publish checks ``pg_locks`` first and, without the lock, fails the store
        (its previous snapshot stays; the next run publishes it). A session lost after this check
        cannot mix two runs' rows: publishes of one store also take turns on a transaction-level
        lock (:func:`serialize_store_publish`).
        """
        high, low = key_halves(lock_key("guard", self.target.schema, store_id))
        held = cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = %s AND objsubid = 1 AND classid = %s::bigint::oid"
            " AND objid = %s::bigint::oid)",
            [self._pid, high, low],
        ).fetchone()
        if not (held and held[0]):
            raise ConnectionFailed(
                f"{store_id}: the run guard's session on {self.target.describe()} ended and "
                "the server released its advisory lock; not publishing without it"
            )

    def __exit__(self, *exc: object) -> None:
        self.target.locks = None
        if self._con is not None:
            with suppress(psycopg.Error):  # a session already gone took its locks with it
                self._con.execute("SELECT pg_advisory_unlock_all()")
            self._con.close()
            self._con = None
