"""The live per-store progress display shown when stdout is a terminal.

It is a structlog processor: it reads the same events the JSON logs carry (``store``, ``phase``,
``rows``, ``seconds``), keeps one row per store, and lets only warnings and errors through as
text lines above the table. The table is redrawn on a timer (four times a second), not only
when an event arrives, so the clock of a store that is fetching keeps moving, and the rows
fetched so far come from :data:`fetch_progress`, which the fetch reports without a log line.

Columns, each meaning one thing: ``fetched`` is the rows read from the store's server (so far,
while fetching), ``published`` the rows of the snapshot it published (after clean-up and
de-duplication), ``seconds`` the store's own time from its first fetch to its publish or
failure (the ledger's ``duracion_segundos``; blank while it waits its turn), and ``detail``
what the store is doing or why it failed (attempt number, waiting for the target's lock, the
error type and message).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, TextIO

import structlog
from rich.console import Console
from rich.live import Live
from rich.table import Table

#: events that move a store to the state in the table
_STATES = {
    "extract started": "fetching",
    "extract staged": "transforming",
    "transformed": "publishing",
    "store published": "published",
    "store failed": "failed",
}
_WAITING_FOR_LOCK = "target database is locked by another process; waiting"


class FetchProgress:
    """Rows fetched so far, per store, while its fetch runs (reported at every poll of the fetch
    process, see run/fetch.py). Plain assignments of ints: safe to read from the display's
    refresh thread without a lock."""

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}

    def report(self, store: str, rows: int) -> None:
        self._rows[store] = rows

    def rows(self, store: str) -> int | None:
        return self._rows.get(store)


#: the process's one fetch-progress board (a run's stores have distinct ids)
fetch_progress = FetchProgress()


@dataclass
class _Row:
    state: str = "waiting"
    fetched: int | None = None
    published: int | None = None
    started: float | None = None  # monotonic time of the store's first fetch
    seconds: float | None = None  # final: the ledger's duration
    detail: str = ""


class LiveDisplay:
    def __init__(self, stream: TextIO, progress: FetchProgress | None = None) -> None:
        self.console = Console(file=stream)
        self.console_file = _ConsoleFile(self.console)
        self.progress = progress or fetch_progress
        self.rows: dict[str, _Row] = {}
        self.live = Live(
            console=self.console,
            get_renderable=self._render,
            auto_refresh=True,
            refresh_per_second=4,
            transient=False,
        )

    def __enter__(self) -> LiveDisplay:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()  # draws the table one last time

    def processor(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        store, phase = event.get("store"), event.get("phase")
        if phase == "plan" and isinstance(event.get("stores"), list):
            for store_id in event["stores"]:
                self.rows.setdefault(store_id, _Row())
        if isinstance(store, str):
            self._update(self.rows.setdefault(store, _Row()), store, event)
        if method in ("warning", "error", "critical", "exception") or phase == "done":
            return event
        raise structlog.DropEvent

    def _update(self, row: _Row, store: str, event: MutableMapping[str, Any]) -> None:
        name = event.get("event")
        row.state = _STATES.get(str(name), row.state)
        if name == "extract started":
            if row.started is None:
                row.started = time.monotonic()
            attempt = int(event.get("attempt") or 1)
            limit = event.get("max_attempts")
            row.detail = f"attempt {attempt}/{limit}" if attempt > 1 and limit else ""
            self.progress.report(store, 0)
        elif name == "transient error; retrying the store from scratch":
            row.detail = f"attempt {event.get('attempt')} failed; retrying"
        elif name == "fetching the store again with wider settings":
            row.detail = "fetching again with wider settings"
        elif name == "extract staged":
            row.fetched = _int(event.get("rows"))
            row.detail = ""
        elif name == _WAITING_FOR_LOCK:
            row.detail = f"waiting for the target's lock ({event.get('waited_seconds', 0)} s)"
        elif name == "store published":
            row.published = _int(event.get("rows"))
            row.seconds = _float(event.get("total_seconds"))
            row.detail = ""
        elif name == "store failed":
            row.seconds = _float(event.get("seconds"))
            row.detail = f"{event.get('error_tipo')}: {event.get('error', '')}"[:80]

    def _render(self) -> Table:
        table = Table(title="fluxion-etl", expand=False)
        for column in ("store", "state", "fetched", "published", "seconds", "detail"):
            numeric = column in ("fetched", "published", "seconds")
            table.add_column(column, justify="right" if numeric else "left")
        now = time.monotonic()
        for store_id, row in list(self.rows.items()):
            fetched = row.fetched
            if row.state == "fetching":
                fetched = self.progress.rows(store_id)
            seconds = row.seconds
            if seconds is None and row.started is not None:
                seconds = now - row.started
            table.add_row(
                store_id,
                row.state,
                "" if fetched is None else f"{fetched:,}",
                "" if row.published is None else f"{row.published:,}",
                "" if seconds is None else f"{seconds:.1f}",
                row.detail,
            )
        return table


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


class _ConsoleFile:
    """A file-like object that prints lines above the live table (warnings, errors)."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def write(self, text: str) -> int:
        if text.strip():
            self._console.print(text.rstrip("\n"), markup=False, highlight=False)
        return len(text)

    def flush(self) -> None:
        pass
