"""Staging: each store's batches go to a local Parquet file, renamed into place when complete.

Staging decouples the slow part (fetching over the VPN) from the part that needs the DuckDB
write lock: a store reaches the target only from a complete staged file, so a half-fetched store
can never be published, and the lock is held only for the short publish transaction.

Batches are gathered into chunks, and each chunk is cleaned row by row
(:class:`fluxion_etl.transform.RowCleanup`) and written on a background thread while the caller's
thread fetches the next ones (DuckDB and the Parquet writer release the GIL), so the clean-up
costs no wall time as long as it keeps up with the network. At most :data:`CHUNKS_IN_FLIGHT`
chunks wait for that thread, which bounds memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fluxion_etl.errors import QueryFailed
from fluxion_etl.query import STAGED_COLUMNS
from fluxion_etl.transform import RowCleanup

#: Rows cleaned at once. The engines' batches can be small (arrow-odbc sizes them by the byte
#: budget over the columns' declared widths: ~4,600 rows for the inventory query), and each
#: clean-up query has a fixed cost, so batches are gathered into chunks of about this size:
#: 3.4 s -> 1.2 s of CPU for the 500k-product store.
CLEAN_CHUNK_ROWS = 50_000
#: Chunks handed to the background clean-and-write thread and not yet written (bounds memory).
CHUNKS_IN_FLIGHT = 2


@dataclass(frozen=True)
class StagedFile:
    """A complete staged extract of one store."""

    path: Path
    rows: int
    batches: int


class StagingArea:
    """One run's private staging directory (local disk, not the EFS volume)."""

    def __init__(self, root: Path | None, run_id: str) -> None:
        base = Path(root) if root else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"fluxion-{run_id}-", dir=base))

    def file_for(self, store_id: str, kind: str) -> Path:
        return self.path / f"{store_id}.{kind}.parquet"

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def stage_batches(batches: Iterable[pa.RecordBatch], path: Path, where: str) -> StagedFile:
    """Clean ``batches`` row by row and write them to ``path`` atomically (``.part``, fsync,
    rename).

    The first batch's columns are checked against the staging contract so a custom query that
    forgot a column fails here, clearly, instead of deep inside the transform.
    """
    partial = path.with_name(path.name + ".part")
    writer = _CleanedWriter(partial)
    chunks = _Chunks(batches, where)
    in_flight: deque[Future[int]] = deque()
    rows = 0
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage") as background:
            for chunk in chunks:
                in_flight.append(background.submit(writer.write, chunk))
                if len(in_flight) > CHUNKS_IN_FLIGHT:
                    rows += in_flight.popleft().result()
            while in_flight:
                rows += in_flight.popleft().result()
        writer.finish()
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        writer.abort()
        partial.unlink(missing_ok=True)
    return StagedFile(path=path, rows=rows, batches=chunks.batches)


class _Chunks:
    """The engine's batches gathered into tables of at least :data:`CLEAN_CHUNK_ROWS` rows.

    The first batch's columns are checked against the staging contract on the way.
    """

    def __init__(self, batches: Iterable[pa.RecordBatch], where: str) -> None:
        self._batches = batches
        self._where = where
        self.batches = 0

    def __iter__(self) -> Iterator[pa.Table]:
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in self._batches:
            if self.batches == 0:
                _check_columns(batch.schema, self._where)
            self.batches += 1
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= CLEAN_CHUNK_ROWS:
                yield pa.Table.from_batches(pending)
                pending, pending_rows = [], 0
        if pending:
            yield pa.Table.from_batches(pending)


class _CleanedWriter:
    """Cleans batches and appends them to one Parquet file (used from one thread at a time)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cleanup = RowCleanup()
        self._writer: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch | pa.Table) -> int:
        cleaned = self._cleanup(batch)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, cleaned.schema, compression="snappy")
        self._writer.write_table(cleaned)
        return int(batch.num_rows)

    def finish(self) -> None:
        """Complete the file; an empty extract still gets the cleaned columns."""
        if self._writer is None:
            self.write(pa.RecordBatch.from_pylist([], schema=_empty_schema()))
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
