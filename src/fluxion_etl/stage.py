"""Staging: each store's batches go to a local Parquet file, renamed into place when complete.

Staging decouples the slow part (fetching over the VPN) from the part that needs the DuckDB
write lock: a store reaches the target only from a complete staged file, so a half-fetched store
can never be published, and the lock is held only for the short publish transaction.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fluxion_etl.errors import QueryFailed
from fluxion_etl.query import STAGED_COLUMNS


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
    """Write ``batches`` to ``path`` atomically (``.part`` file, fsync, rename).

    The first batch's columns are checked against the staging contract so a custom query that
    forgot a column fails here, clearly, instead of deep inside the transform.
    """
    partial = path.with_name(path.name + ".part")
    writer: pq.ParquetWriter | None = None
    rows = count = 0
    try:
        for batch in batches:
            if writer is None:
                _check_columns(batch.schema, where)
                writer = pq.ParquetWriter(partial, batch.schema, compression="snappy")
            writer.write_batch(batch)
            rows += batch.num_rows
            count += 1
        if writer is None:  # the query returned no batch at all: stage an empty extract
            writer = pq.ParquetWriter(partial, _empty_schema())
        writer.close()
        writer = None
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return StagedFile(path=path, rows=rows, batches=count)


def _check_columns(schema: pa.Schema, where: str) -> None:
    missing = [name for name in STAGED_COLUMNS if name not in schema.names]
    if missing:
        raise QueryFailed(
            f"{where}: the inventory query does not return column(s) {', '.join(missing)}"
        )


def _empty_schema() -> pa.Schema:
    return pa.schema([pa.field(name, pa.string()) for name in STAGED_COLUMNS])
