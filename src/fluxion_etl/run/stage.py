"""Staging: each store's batches go to a local Parquet file, renamed into place when complete.

Staging decouples the slow part (fetching over the VPN) from the part that needs the DuckDB
write lock: a store reaches the target only from a complete staged file, so a half-fetched store
can never be published, and the lock is held only for the short publish transaction.

Batches are gathered into chunks, and each chunk is cleaned row by row
(:class:`fluxion_etl.run.clean.RowCleanup`) and written on a background thread while the caller's
thread fetches the next ones (DuckDB and the Parquet writer release the GIL), so the clean-up
costs no wall time as long as it keeps up with the network. At most :data:`CHUNKS_IN_FLIGHT`
chunks wait for that thread, which bounds memory.

The clean-up starts with a store's second chunk. A store that fits in one chunk (every store of
the chain: a few thousand rows) has no fetch left for its clean-up to hide behind; it is staged
as fetched and the transform cleans it in the run's DuckDB (:attr:`StagedFile.cleaned`). A
DuckDB of its own cost the fetch process ~60 ms of CPU (100 against 40), to start it and to plan
its first queries, and the 21 fetches of a fleet on two cores wait for exactly that CPU.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fluxion_etl.errors import QueryFailed
from fluxion_etl.run.clean import RowCleanup
from fluxion_etl.run.staging_area import StagedFile
from fluxion_etl.source.query import STAGED_COLUMNS
from fluxion_etl.sql import TABLE_ROW_GROUP_ROWS

#: Rows cleaned at once. The engines' batches can be small (arrow-odbc sizes them by the byte
#: budget over the columns' declared widths: ~4,600 rows for the inventory query), and each
#: clean-up query has a fixed cost, so batches are re-cut into chunks of this size (measured
#: with 50,000-row chunks: the 500k-product store's clean-up went from 3.4 to 1.2 s of CPU). A
#: third of a target row group, so DuckDB's insert merges three staged row groups (one per
#: chunk, see :class:`_CleanedWriter`) into one of the table's exactly.
CLEAN_CHUNK_ROWS = TABLE_ROW_GROUP_ROWS // 3
#: Chunks handed to the background clean-and-write thread and not yet written (bounds memory).
CHUNKS_IN_FLIGHT = 1


def stage_batches(
    batches: Iterable[pa.RecordBatch],
    path: Path,
    where: str,
    on_rows: Callable[[int], None] | None = None,
) -> StagedFile:
    """Clean ``batches`` row by row and write them to ``path`` atomically (``.part``, fsync,
    rename); a store of one chunk is written as fetched (see the module's docstring). ``on_rows``
    hears the running count of rows fetched, once per fetched batch.

    The first batch's columns are checked against the staging contract so a custom query that
    forgot a column fails here, clearly, instead of deep inside the transform.
    """
    partial = path.with_name(path.name + ".part")
    writer = _StagedWriter(partial)
    chunks = _Chunks(batches, where, on_rows)
    in_flight: deque[Future[int]] = deque()
    rows = 0
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage") as background:
            for chunk in chunks:
                # the fetch has ended once the last chunk comes: its clean-up may take both cores
                in_flight.append(background.submit(writer.write, chunk, chunks.ended))
                if len(in_flight) > CHUNKS_IN_FLIGHT:
                    rows += in_flight.popleft().result()
            while in_flight:
                rows += in_flight.popleft().result()
        cleaned = writer.finish()
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        writer.abort()
        partial.unlink(missing_ok=True)
    return StagedFile(path=path, rows=rows, batches=chunks.batches, cleaned=cleaned)


class _Chunks:
    """The engine's batches re-cut into tables of exactly :data:`CLEAN_CHUNK_ROWS` rows (the
    last one shorter); slicing copies nothing.

    The first batch's columns are checked against the staging contract on the way.
    """

    def __init__(
        self,
        batches: Iterable[pa.RecordBatch],
        where: str,
        on_rows: Callable[[int], None] | None = None,
    ) -> None:
        self._batches = batches
        self._where = where
        self._on_rows = on_rows
        self.batches = 0
        self.rows = 0
        #: the engine has no batch left: the chunk being yielded is the last one
        self.ended = False

    def __iter__(self) -> Iterator[pa.Table]:
        pending: pa.Table | None = None
        for batch in self._batches:
            if self.batches == 0:
                _check_columns(batch.schema, self._where)
            self.batches += 1
            self.rows += batch.num_rows
            if self._on_rows is not None:
                self._on_rows(self.rows)
            table = pa.Table.from_batches([batch])
            pending = table if pending is None else pa.concat_tables([pending, table])
            while pending.num_rows >= CLEAN_CHUNK_ROWS:
                yield pending.slice(0, CLEAN_CHUNK_ROWS)
                pending = pending.slice(CLEAN_CHUNK_ROWS)
        self.ended = True
        if pending is not None and pending.num_rows:
            yield pending


class _StagedWriter:
    """Writes the staged file from chunks: the first one is held, and only a second one starts
    the clean-up, in a DuckDB of the fetch process's own (:class:`_CleanedWriter`). Used from
    one thread at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._held: pa.Table | None = None
        self._cleaned: _CleanedWriter | None = None

    def write(self, chunk: pa.Table, last: bool = False) -> int:
        """Write ``chunk``; ``last``: it is the store's last, and what is cleaned from here on
        (the held first chunk too, for a store of two) is cleaned on two threads."""
        if self._cleaned is None:
            if self._held is None:
                self._held = chunk
                return int(chunk.num_rows)
            self._cleaned = _CleanedWriter(self._path)
        if last:
            self._cleaned.last()
        if self._held is not None:  # counted when it was held
            self._cleaned.write(self._held)
            self._held = None
        return self._cleaned.write(chunk)

    def finish(self) -> bool:
        """Complete the file; whether its rows are cleaned."""
        if self._cleaned is not None:
            self._cleaned.finish()
            return True
        held = self._held if self._held is not None else _empty_schema().empty_table()
        pq.write_table(held, self._path, compression="snappy")
        return False

    def abort(self) -> None:
        """Close the file and the clean-up database (idempotent; the file may be incomplete)."""
        self._held = None
        if self._cleaned is not None:
            self._cleaned.abort()


class _CleanedWriter:
    """Cleans chunks and appends each one to one Parquet file as its own row group, at once.

    Nothing cleaned waits in memory for more rows: holding cleaned rows until they filled one of
    the target table's row groups (122,880 rows) cost the fetch process up to a row group of
    Arrow data (~40 MiB of its peak at 500k products, results.md 2026-12-07). The publish does
    not need the staged row groups cut to the table's size: DuckDB's insert merges the
    chunk-sized ones into full row groups of the table, and its lock time did not change
    (benchmarks/bulk_ab.py, results.md 2026-12-07 17:23). Used from one thread at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cleanup = RowCleanup()
        self._writer: pq.ParquetWriter | None = None

    def write(self, chunk: pa.RecordBatch | pa.Table) -> int:
        cleaned = self._cleanup(chunk)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, cleaned.schema, compression="snappy")
        self._writer.write_table(cleaned, row_group_size=CLEAN_CHUNK_ROWS)
        return int(chunk.num_rows)

    def last(self) -> None:
        """The fetch has ended (what is cleaned next is the store's last chunk, and for a store
        of two its held first one), and its engine, driver and server left the cores, so the
        clean-up takes two threads instead of one. What is left
        after the last row was cleaning that chunk on one thread (the drain, 0.12-0.18 s on the
        500k-product store); with two, the run ended earlier in 5 of 6 alternating pairs, one
        tie: 5.57 -> 5.53 s median (benchmarks/bulk_ab.py, results.md 2026-12-07 21:08). DuckDB
        keeps the rows' order."""
        self._cleanup.threads(2)

    def finish(self) -> None:
        """Complete the file."""
        assert self._writer is not None  # made by the first chunk, which made this writer
        self.abort()

    def abort(self) -> None:
        """Close the file and the clean-up database (idempotent; the file may be incomplete)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._cleanup.close()


def _check_columns(schema: pa.Schema, where: str) -> None:
    missing = [name for name in STAGED_COLUMNS if name not in schema.names]
    if missing:
        raise QueryFailed(
            f"{where}: the inventory query does not return column(s) {', '.join(missing)}"
        )


def _empty_schema() -> pa.Schema:
    return pa.schema([pa.field(name, pa.string()) for name in STAGED_COLUMNS])
