"""Alerts that reach a person (specv2 §15): stored, logged, and POSTed to one JSON webhook.

:meth:`AlertSink.emit` never waits for the network or the disk: it queues the row into the store's
``alerts`` table (the outbox), logs one line and wakes the delivery thread. The delivery thread reads
the outbox in ``id`` order and POSTs each alert until the webhook answers 2xx, retrying the same alert
with exponential backoff (capped) while the webhook fails, so alerts arrive in order and none is
skipped. An alert's ``delivered_ts_ms`` is set once the webhook accepted it; undelivered ones stay in
the outbox across restarts and go first when the next sink starts.

Delivery is at least once: if the process dies after the webhook accepted an alert but before the
store recorded it, the alert is sent again after the restart. Each payload carries the outbox ``id``
so a receiver can drop repeats.

The webhook URL is a secret (it often embeds a token): it comes from ``ALERT_WEBHOOK_URL``
(:class:`auction_trader.config.Secrets`) or the caller, and is never logged or stored. The values
of every secret variable in the environment are masked in alert messages and details before they
are stored, logged or sent.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from auction_trader.config import SECRET_ENV_VARS, Secrets
from auction_trader.live.store import LiveStore, StoreReader, now_ms, to_json

log = logging.getLogger(__name__)

#: Alert type -> what it means. The first seven are specv2 §15.2's table; then the node's own
#: (halt, resolve, activation) and the strategy's order-lifecycle alerts.
ALERT_TYPES: dict[str, str] = {
    "kill_switch": "Kill switch activated: daily loss limit breached",
    "data_feed_stale": "Data feed stale: no quotes for longer than data_stale_seconds",
    "va_invalid": "VA invalid: fewer than min_va_bins bins in the histogram",
    "high_ambiguity": "High ambiguous fraction: ambiguous_trade_frac above its limit",
    "position_mismatch": "Position mismatch: venue and system state differ",
    "shadow_divergence": "Shadow divergence: paper and live decisions differ",
    "leverage_cap": "Leverage cap hit: position reduced to the leverage limit",
    "halt": "Trading halted: no new entries until resolve",
    "resolve": "Halt resolved by the operator",
    "activation": "Activation / deactivation / status command answered",
    "order_unanswered": "An order request got no answer from the venue",
    "order_stuck": "An order did not fill or cancel in time",
    "order_rejected": "The venue rejected an order",
    "abandoned_fill": "A fill arrived for an order the strategy had abandoned",
    "flip_account_late": "A flip's new entry was sized before the venue's account showed the close",
}

#: The names the strategy and specv2 §15.2 use -> alert type.
ALERT_NAMES: dict[str, str] = {
    "kill switch activated": "kill_switch",
    "data feed stale": "data_feed_stale",
    "va invalid": "va_invalid",
    "high ambiguous fraction": "high_ambiguity",
    "position mismatch": "position_mismatch",
    "shadow divergence": "shadow_divergence",
    "leverage cap hit": "leverage_cap",
    "entry remainder trimmed to the leverage cap": "leverage_cap",
    "order request unanswered": "order_unanswered",
    "order stuck": "order_stuck",
    "order rejected": "order_rejected",
    "fill of an abandoned order": "abandoned_fill",
    "flip entry sized before the account showed the close": "flip_account_late",
}


def alert_type(name: str) -> str:
    """The alert type for a type code or a spec/strategy alert name (case-insensitive)."""
    key = name.strip().lower()
    if key in ALERT_TYPES:
        return key
    if key in ALERT_NAMES:
        return ALERT_NAMES[key]
    raise ValueError(f"unknown alert type {name!r} (types: {', '.join(ALERT_TYPES)})")


def iso_utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    # Short values would mask innocent text; real keys and URLs are long.
    return sorted({v.strip() for k in SECRET_ENV_VARS if len((v := environ.get(k, "")).strip()) >= 6}, key=len, reverse=True)


def mask_secrets(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with the value of every secret environment variable replaced by ``***``."""
    for value in _secret_values(os.environ if environ is None else environ):
        text = text.replace(value, "***")
    return text


class AlertSink:
    """Store + log + webhook. ``emit`` is safe from any thread and returns at once.

    ``webhook_url``: the URL, or None to read ``ALERT_WEBHOOK_URL``; with neither, alerts are
    stored and logged and wait in the outbox. ``backoff_initial``/``backoff_max`` (seconds): the
    wait after the first failed attempt, doubled after each further failure up to the cap.
    """

    def __init__(
        self,
        store: LiveStore,
        mode: str,
        webhook_url: Any = None,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        timeout: float = 10.0,
        start: bool = True,
    ) -> None:
        self.store = store
        self.mode = mode
        if webhook_url is None:
            webhook_url = Secrets.from_env().alert_webhook_url
        if webhook_url is not None and hasattr(webhook_url, "get_secret_value"):
            webhook_url = webhook_url.get_secret_value()
        self._url: str | None = webhook_url or None
        if self._url is not None and not self._url.startswith(("http://", "https://")):
            raise ValueError("ALERT_WEBHOOK_URL must start with http:// or https:// (value not shown: it is a secret)")
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.delivered = 0
        self.failed_attempts = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._opener = urllib.request.build_opener()
        self._thread: threading.Thread | None = None
        if start and self._url is not None:
            self._thread = threading.Thread(target=self._deliver_loop, name="alert-delivery", daemon=True)
            self._thread.start()

    # -- the caller's side ------------------------------------------------------------------------

    def emit(self, type: str, message: str, details: Mapping[str, Any] | None = None, ts_ms: int | None = None) -> None:  # noqa: A002
        """Store, log and (asynchronously) deliver one alert. An unknown type raises (a typo
        would otherwise page nobody)."""
        kind = alert_type(type)
        ts = int(ts_ms if ts_ms is not None else now_ms())
        message = mask_secrets(str(message))
        details_json = mask_secrets(to_json(dict(details or {})))
        self.store.record("alerts", {"ts_ms": ts, "type": kind, "mode": self.mode, "message": message, "details": details_json, "attempts": 0})
        log.warning("ALERT %s [%s] %s %s %s", kind, self.mode, iso_utc(ts), message, details_json)
        self._wake.set()

    def emit_strategy(self, row: Mapping[str, Any]) -> None:
        """One of the strategy's alert rows (``ts_ms``, ``alert``, ``detail`` JSON)."""
        detail = row.get("detail")
        details = json.loads(detail) if isinstance(detail, str) and detail else dict(detail or {})
        self.emit(row["alert"], row["alert"], details, row["ts_ms"])

    def close(self, timeout: float = 5.0) -> None:
        """Stop delivering (what is undelivered stays in the outbox for the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- delivery ---------------------------------------------------------------------------------

    @staticmethod
    def payload(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "type": row["type"],
            "ts": iso_utc(row["ts_ms"]),
            "mode": row["mode"],
            "message": row["message"],
            "details": json.loads(row["details"]) if row["details"] else {},
        }

    def _deliver_loop(self) -> None:
        reader = StoreReader(self.store.path)
        last_id = 0
        try:
            while not self._stop.is_set():
                # Emitted rows reach the outbox through the store's writer: make sure they are in.
                self.store.flush(self.timeout)
                batch = reader.undelivered_alerts(after_id=last_id)
                if not batch:
                    self._wake.wait(5.0)
                    self._wake.clear()
                    continue
                for row in batch:
                    if not self._deliver(row):
                        return  # stopping
                    last_id = row["id"]
        finally:
            reader.close()

    def _deliver(self, row: Mapping[str, Any]) -> bool:
        """POST one alert until accepted (True) or the sink stops (False)."""
        body = json.dumps(self.payload(row), sort_keys=True).encode()
        attempts = int(row["attempts"] or 0)
        delay = self.backoff_initial
        while not self._stop.is_set():
            attempts += 1
            try:
                request = urllib.request.Request(self._url, data=body, method="POST", headers={"Content-Type": "application/json"})
                with self._opener.open(request, timeout=self.timeout) as response:
                    response.read()
                self.store.mark_alert(row["id"], attempts=attempts, delivered_ts_ms=now_ms())
                self.delivered += 1
                return True
            except urllib.error.HTTPError as exc:
                why = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:  # refused, timeout, DNS ...
                why = type(exc).__name__ + (f" ({exc.reason})" if isinstance(exc, urllib.error.URLError) else "")
            self.failed_attempts += 1
            self.store.mark_alert(row["id"], attempts=attempts, delivered_ts_ms=None)
            log.warning("alert %d (%s) not delivered, attempt %d: %s; retrying in %.1f s", row["id"], row["type"], attempts, mask_secrets(why), delay)
            self._stop.wait(delay)
            delay = min(delay * 2, self.backoff_max)
        return False

    @property
    def webhook_configured(self) -> bool:
        return self._url is not None


def wait_delivered(store: LiveStore, timeout: float) -> bool:
    """True once the outbox is empty (for tests and an orderly shutdown); bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store.flush(timeout)
        if not store._reader.undelivered_alerts(limit=1):
            return True
        time.sleep(0.05)
    return False
