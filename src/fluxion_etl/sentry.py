"""Optional Sentry reporting: one cron check-in per run and an event per failed store.

Off unless ``SENTRY_DSN`` is set; then the ``[sentry]`` extra (sentry-sdk) must be installed.
Monitoring must never stop the inventory from being published, so a missing SDK or a malformed
DSN is a warning in the log, not an error. Events carry store ids, error types and redacted
messages only: ``send_default_pii`` is off and every event passes through :func:`redact`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from fluxion_etl.credentials import Credentials, redact
from fluxion_etl.ledger import LedgerEntry

log = structlog.get_logger("fluxion_etl.sentry")

MONITOR_SLUG = "fluxion-etl"


class SentryMonitor:
    """The run's reporter; ``from_env`` returns None when Sentry is off or unusable."""

    def __init__(self, sdk: Any, credentials: Credentials | None) -> None:
        self._sdk = sdk
        self._credentials = credentials
        self._check_in_id: str | None = None

    @classmethod
    def from_env(
        cls, credentials: Credentials | None, env: Mapping[str, str] | None = None
    ) -> SentryMonitor | None:
        env = os.environ if env is None else env
        dsn = env.get("SENTRY_DSN", "").strip()
        if not dsn:
            return None
        try:
            import sentry_sdk
        except ImportError:
            log.warning(
                "SENTRY_DSN is set but sentry-sdk is not installed (pip install 'fluxion[sentry]');"
                " running without Sentry",
                phase="plan",
            )
            return None
        scrub = _Scrubber(credentials)
        try:
            sentry_sdk.init(
                dsn=dsn,
                environment=env.get("SENTRY_ENVIRONMENT") or env.get("ENVIRONMENT") or None,
                send_default_pii=False,
                default_integrations=False,  # no logging/threading hooks: we report explicitly
                before_send=scrub.event,
            )
        except Exception as exc:  # sentry_sdk raises its own BadDsn
            log.warning(
                "SENTRY_DSN is not usable; running without Sentry",
                phase="plan",
                error=f"{type(exc).__name__}: {exc}",
            )
            return None
        return cls(sentry_sdk, credentials)

    def run_started(self, run_id: str) -> None:
        self._sdk.set_tag("run_id", run_id)
        self._check_in_id = self._sdk.crons.capture_checkin(
            monitor_slug=MONITOR_SLUG, status="in_progress"
        )

    def stores_failed(self, entries: Sequence[LedgerEntry]) -> None:
        """One event per failed store, grouped by store and error type across runs."""
        for entry in entries:
            with self._sdk.new_scope() as scope:
                scope.set_tag("store", entry.store_id)
                scope.set_tag("error_tipo", entry.error_tipo or "desconocido")
                scope.fingerprint = ["fluxion-store-failed", entry.store_id, entry.error_tipo]
                self._sdk.capture_message(
                    f"store {entry.store_id} failed ({entry.error_tipo}): "
                    f"{entry.error_message or ''}",
                    level="error",
                )

    def run_crashed(self, exc: BaseException) -> None:
        self._sdk.capture_exception(exc)

    def run_finished(self, ran: bool, seconds: float | None) -> None:
        """``ran``: RunResult.ran (a partial run is "ok"; its failed stores are events)."""
        self._sdk.crons.capture_checkin(
            monitor_slug=MONITOR_SLUG,
            check_in_id=self._check_in_id,
            status="ok" if ran else "error",
            duration=seconds,
        )
        self._sdk.flush(timeout=5.0)


class _Scrubber:
    """``before_send``: redact the password from every string of an event, however nested."""

    def __init__(self, credentials: Credentials | None) -> None:
        self._credentials = credentials

    def event(self, event: Any, _hint: dict[str, Any]) -> Any:
        return self._walk(event)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, self._credentials)
        if isinstance(value, dict):
            return {key: self._walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(item) for item in value]
        return value
