"""Everything the sandbox remembers (records of every vendor, the request and SMTP logs, webhook
deliveries, pending faults, settings), guarded by one lock and shared by the HTTP and SMTP servers."""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from typing import Any

from connectors.sandbox import clay, gohighlevel, instantly
from connectors.sandbox.clay import CLAY_SUBMISSION_LIMIT
from connectors.sandbox.common import CLAY, GHL, HUBSPOT, INSTANTLY, SandboxError, now_iso
from connectors.sandbox.faults import (
    http_fault_matches,
    smtp_fault_matches,
    take,
    validate_http_fault,
    validate_smtp_fault,
)

REQUEST_LOG_LIMIT = 10_000
SMTP_LOG_LIMIT = 10_000

DEFAULT_CONFIG: dict[str, Any] = {
    # emit ``email_sent`` for each lead added to an active Instantly campaign
    "auto_events": False,
    # HubSpot search does not see contacts younger than this (search lags behind writes)
    "hubspot_search_lag_seconds": 0.0,
    # GoHighLevel location setting "Allow duplicate contact": upsert then matches on email only
    "ghl_allow_duplicate_contact": False,
    # lifetime submissions accepted by one Clay webhook source
    "clay_submission_limit": CLAY_SUBMISSION_LIMIT,
    # Clay's HTTP API column per webhook source id: {"<source id>": {"url": ..., "headers": {...}}};
    # set, each accepted row's enrichment results are POSTed there (merged by source id)
    "clay_columns": {},
    # seconds the sandbox waits for a webhook receiver
    "webhook_timeout": 5.0,
    # consecutive failed deliveries after which a webhook is disabled (0: never)
    "webhook_disable_after": 5,
}


class SandboxState:
    """Everything the sandbox remembers, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    # -- lifecycle
    def reset(self) -> None:
        with self.lock:
            self.config: dict[str, Any] = copy.deepcopy(DEFAULT_CONFIG)
            self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
            self._request_seq = 0
            self.faults: list[dict[str, Any]] = []
            self._fault_seq = 0
            self.deliveries: list[dict[str, Any]] = []
            self._hits: dict[str, deque[float]] = {}
            # HubSpot
            self.hubspot_contacts: dict[str, dict[str, Any]] = {}
            self._hubspot_created_mono: dict[str, float] = {}
            self._hubspot_next_id = 1001
            # GoHighLevel
            self.ghl_contacts: dict[str, dict[str, Any]] = {}
            self.ghl_opportunities: dict[str, dict[str, Any]] = {}
            self.ghl_pipelines: list[dict[str, Any]] = [gohighlevel.demo_pipeline()]
            # Instantly
            self.instantly_campaigns: dict[str, dict[str, Any]] = {}
            self.instantly_leads: dict[str, dict[str, Any]] = {}
            self.instantly_emails: list[dict[str, Any]] = []
            self.instantly_blocklist: dict[str, dict[str, Any]] = {}
            self.instantly_webhooks: dict[str, dict[str, Any]] = {}
            self.instantly_events: list[dict[str, Any]] = []
            # Clay
            self.clay_submissions: dict[str, int] = {}
            self.clay_rows: dict[str, list[Any]] = {}
            # SMTP
            self.smtp_faults: list[dict[str, Any]] = []
            self.smtp_log: deque[dict[str, Any]] = deque(maxlen=SMTP_LOG_LIMIT)
            self._smtp_seq = 0
            instantly.seed(self)

    # -- config
    def configure(self, **values: Any) -> dict[str, Any]:
        unknown = sorted(set(values) - set(DEFAULT_CONFIG))
        if unknown:
            raise SandboxError(400, f"unknown config keys: {unknown}; known: {sorted(DEFAULT_CONFIG)}")
        columns = values.pop("clay_columns", None)
        if columns is not None and (
            not isinstance(columns, dict)
            or not all(isinstance(c, dict) and isinstance(c.get("url"), str) for c in columns.values())
        ):
            raise SandboxError(400, 'clay_columns: {"<source id>": {"url": "...", "headers": {...}}}')
        with self.lock:
            self.config.update(values)
            if columns is not None:
                self.config["clay_columns"] = {**self.config["clay_columns"], **columns}
            return copy.deepcopy(self.config)

    # -- faults
    def add_fault(self, **spec: Any) -> dict[str, Any]:
        fault = validate_http_fault(spec)
        with self.lock:
            self._fault_seq += 1
            fault["id"] = self._fault_seq
            self.faults.append(fault)
            return dict(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        with self.lock:
            return take(self.faults, lambda f: http_fault_matches(f, method, path))

    def add_smtp_fault(self, **spec: Any) -> dict[str, Any]:
        """Break the next ``times`` mail transactions (or those to ``recipient``): see :mod:`.faults`."""
        fault = validate_smtp_fault(spec)
        with self.lock:
            self._fault_seq += 1
            fault["id"] = self._fault_seq
            self.smtp_faults.append(fault)
            return dict(fault)

    def clear_smtp_faults(self) -> None:
        with self.lock:
            self.smtp_faults.clear()

    def take_smtp_fault(self, stage: str, recipients: list[str]) -> dict[str, Any] | None:
        with self.lock:
            return take(self.smtp_faults, lambda f: smtp_fault_matches(f, stage, recipients))

    # -- SMTP log
    def record_smtp(self, entry: dict[str, Any]) -> dict[str, Any]:
        """One mail transaction as the sandbox saw it; ``delivered`` means the message left the
        sender, whether or not the sender heard so."""
        with self.lock:
            self._smtp_seq += 1
            entry = {"seq": self._smtp_seq, "time": now_iso(), **entry}
            self.smtp_log.append(entry)
            return dict(entry)

    def smtp_messages(self, *, delivered: bool | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(m) for m in self.smtp_log if delivered is None or m["delivered"] == delivered
            ]

    # -- request log
    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self._request_seq += 1
            entry["seq"] = self._request_seq
            self.requests.append(entry)

    def requests_log(self, method: str | None = None, path_prefix: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(r)
                for r in self.requests
                if (method is None or r["method"] == method) and r["path"].startswith(path_prefix)
            ]

    def hit(self, vendor: str, window: float) -> int:
        """Record a call for the informative rate-limit headers; calls in the window."""
        now = time.monotonic()
        with self.lock:
            hits = self._hits.setdefault(vendor, deque())
            hits.append(now)
            while hits and hits[0] < now - window:
                hits.popleft()
            return len(hits)

    # -- views
    def counts(self) -> dict[str, Any]:
        with self.lock:
            return {
                "contacts": {
                    HUBSPOT: len(self.hubspot_contacts),
                    GHL: len(self.ghl_contacts),
                    INSTANTLY: len(self.instantly_leads),
                },
                HUBSPOT: {"contacts": len(self.hubspot_contacts)},
                GHL: {
                    "contacts": len(self.ghl_contacts),
                    "opportunities": len(self.ghl_opportunities),
                    "pipelines": len(self.ghl_pipelines),
                },
                INSTANTLY: {
                    "campaigns": len(self.instantly_campaigns),
                    "leads": len(self.instantly_leads),
                    "emails": len(self.instantly_emails),
                    "block_list_entries": len(self.instantly_blocklist),
                    "webhooks": len(self.instantly_webhooks),
                    "events": len(self.instantly_events),
                },
                CLAY: {"submissions": dict(self.clay_submissions)},
                "smtp": {
                    "delivered": sum(1 for m in self.smtp_log if m["delivered"]),
                    "not_delivered": sum(1 for m in self.smtp_log if not m["delivered"]),
                    "faults": len(self.smtp_faults),
                },
                "requests": len(self.requests),
                "deliveries": len(self.deliveries),
                "faults": len(self.faults),
            }

    def snapshot(self, include_data: bool = False) -> dict[str, Any]:
        with self.lock:
            snap: dict[str, Any] = {
                "counts": self.counts(),
                "requests": list(self.requests),
                "deliveries": self.deliveries,
                "faults": self.faults,
                "smtp": {"messages": list(self.smtp_log), "faults": self.smtp_faults},
                "config": self.config,
            }
            if include_data:
                snap["data"] = {
                    HUBSPOT: {"contacts": list(self.hubspot_contacts.values())},
                    GHL: {
                        "contacts": list(self.ghl_contacts.values()),
                        "opportunities": list(self.ghl_opportunities.values()),
                        "pipelines": self.ghl_pipelines,
                    },
                    INSTANTLY: {
                        "campaigns": list(self.instantly_campaigns.values()),
                        "leads": list(self.instantly_leads.values()),
                        "emails": self.instantly_emails,
                        "block_list_entries": list(self.instantly_blocklist.values()),
                        "webhooks": [instantly.webhook_public(w) for w in self.instantly_webhooks.values()],
                        "events": self.instantly_events,
                    },
                    CLAY: {"rows": self.clay_rows},
                }
            return copy.deepcopy(snap)

    # -- effects that reach out: each vendor module does the work
    def emit(self, event_type: str, **fields: Any) -> dict[str, Any]:
        """Record an Instantly event and POST it to every matching webhook registration.

        Synchronous; returns ``{"event": payload, "deliveries": [...]}``.
        """
        return instantly.emit(self, event_type, **fields)

    def clay_column_post(
        self, source: str, column: dict[str, Any], row: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Clay's HTTP API column: POST one row's enrichment results to the configured URL."""
        return clay.clay_column_post(self, source, column, row, timeout)
