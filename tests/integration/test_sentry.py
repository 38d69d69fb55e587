"""Optional Sentry: a cron check-in per run and an event per failed store, when SENTRY_DSN is set.

Sentry itself cannot exist here, so a small HTTP server on 127.0.0.1 stands in for its ingest
endpoint (named as such: it only records the envelopes the real sentry-sdk sends). The run, the
SDK, its transport and the envelopes are real.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from etl_cli import closed_port_store, json_lines, run_cli, write_stores

from fluxion_harness.postgres_source import PgServer, PgStore

pytestmark = pytest.mark.postgres
pytest.importorskip("sentry_sdk", reason="the [sentry] extra is not installed")


class SentryIngestStandIn(ThreadingHTTPServer):
    """Records every envelope POSTed to /api/<project>/envelope/ as (headers, items)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[bytes] = []
        self.items: list[tuple[dict[str, Any], Any]] = []

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/42"


class _Handler(BaseHTTPRequestHandler):
    server: SentryIngestStandIn

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.bodies.append(body)
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            self.server.items.append((json.loads(header), json.loads(payload)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def sentry() -> Iterator[SentryIngestStandIn]:
    server = SentryIngestStandIn()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_partial_run_checks_in_and_reports_the_failed_store(
    etl_env: dict[str, str],
    pg_server: PgServer,
    pg_stores: list[PgStore],
    sentry: SentryIngestStandIn,
) -> None:
    write_stores(etl_env, (pg_stores[:1], pg_server), extra=closed_port_store())
    env = {**etl_env, "SENTRY_DSN": sentry.dsn, "ETL_MAX_RETRIES": "1"}
    result = run_cli(["run"], env)
    assert result.returncode == 3, result.stdout[-3000:]

    check_ins = [payload for header, payload in sentry.items if header["type"] == "check_in"]
    assert [(c["monitor_slug"], c["status"]) for c in check_ins] == [
        ("fluxion-etl", "in_progress"),
        ("fluxion-etl", "ok"),  # partial counts as a run that happened (as RunSucceeded does)
    ]
    assert check_ins[0]["check_in_id"] == check_ins[1]["check_in_id"]
    assert check_ins[1]["environment"] == "test"
    events = [payload for header, payload in sentry.items if header["type"] == "event"]
    assert [(e["tags"]["store"], e["tags"]["error_tipo"]) for e in events] == [
        ("tienda_99", "conexion")
    ]
    run_id = json_lines(result.stdout)[0]["run_id"]
    assert events[0]["tags"]["run_id"] == run_id
    assert all(pg_server.password.encode() not in body for body in sentry.bodies)


def test_a_failed_run_checks_in_as_error(
    etl_env: dict[str, str], sentry: SentryIngestStandIn
) -> None:
    env = {
        **etl_env,
        "SENTRY_DSN": sentry.dsn,
        "SQL_PASS": "wrong-password",
        "ETL_MAX_RETRIES": "1",
    }
    result = run_cli(["run"], env)
    assert result.returncode == 1
    statuses = [p["status"] for h, p in sentry.items if h["type"] == "check_in"]
    assert statuses == ["in_progress", "error"]
    assert all(b"wrong-password" not in body for body in sentry.bodies)


def test_an_unusable_dsn_is_a_warning_and_the_inventory_still_publishes(
    etl_env: dict[str, str],
) -> None:
    result = run_cli(["run"], {**etl_env, "SENTRY_DSN": "not a dsn"})
    assert result.returncode == 0, result.stdout[-3000:]
    warnings = [line for line in json_lines(result.stdout) if "SENTRY_DSN" in line.get("event", "")]
    assert warnings and warnings[0]["level"] == "warning"
