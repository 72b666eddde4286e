"""Loopback sandbox speaking the subset of HubSpot, GoHighLevel, Instantly and Clay that we use.

Pure standard library (``http.server``, ``http.client``, ``json``) so it runs without Django:
``python -m connectors.sandbox --port 8025`` or, in-process, ``SandboxServer(port=0).start()``.

Vendor routes (every one needs ``Authorization: Bearer <token>``; GoHighLevel also ``Version``):

* HubSpot CRM v3 ........ ``/crm/v3/objects/contacts[...]``
* GoHighLevel v2 ........ ``/contacts/...``, ``/opportunities/...``
* Instantly v2 .......... ``/api/v2/...``
* Clay webhook sources .. ``/clay/webhook/{source_id}``

Token conventions: a token starting with ``bad-`` is rejected (401); a token containing
``noscope-<area>`` (``contacts``, ``opportunities``, ``campaigns``, ``leads``, ``emails``,
``blocklists``, ``webhooks``, ``clay`` or ``all``) gets 403 on that area's routes.

Control API (no auth) under ``/_sandbox/``: ``state``, ``reset``, ``faults``, ``config``, ``emit``.
See :data:`CONTROL_HELP` or ``GET /_sandbox/`` for the list.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 1024 * 1024  # bodies above 1 MiB get 413
_DRAIN_LIMIT = 16 * 1024 * 1024  # read (and drop) oversize bodies up to this, so the client sees the 413
GHL_VERSION = "2021-07-28"
INSTANTLY_MAX_LEADS = 1000
HUBSPOT_BATCH_MAX = 100
CLAY_SUBMISSION_LIMIT = 50_000
DEMO_CAMPAIGN_ID = "cmp-demo-1"
DEMO_PIPELINE_ID = "pl-demo-1"
WORKSPACE_ID = "00000000-0000-4000-8000-00000000a11c"
SANDBOX_SENDER = "sender@sandbox.mh1.local"
REQUEST_LOG_LIMIT = 10_000

HUBSPOT, GHL, INSTANTLY, CLAY, CONTROL = "hubspot", "gohighlevel", "instantly", "clay", "control"

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

CONTROL_HELP = {
    "GET /_sandbox/state": "counts, request log (method/path/query/status/json), deliveries, faults, config; "
    "?data=1 adds every record",
    "POST /_sandbox/reset": "forget everything (seed data is recreated)",
    "POST /_sandbox/faults": '{"method": "PATCH"|null, "path_prefix": "/crm/v3/...", "status": 429, '
    '"times": 2, "retry_after": 1, "body": {...}} or '
    '{"mode": "timeout"|"timeout_after_apply", "delay": 2.0, ...}',
    "GET /_sandbox/faults": "pending faults",
    "DELETE /_sandbox/faults": "clear faults",
    "GET|POST /_sandbox/config": f"read / merge settings {sorted(DEFAULT_CONFIG)}",
    "POST /_sandbox/emit": '{"event_type": "email_bounced", "lead_email": "...", "campaign_id": ...} -> '
    "Instantly-style webhook to every matching registration",
}

INSTANTLY_EVENT_TYPES = frozenset(
    {
        "email_sent",
        "email_opened",
        "reply_received",
        "auto_reply_received",
        "link_clicked",
        "email_bounced",
        "lead_unsubscribed",
        "lead_interested",
        "lead_not_interested",
        "lead_neutral",
        "lead_out_of_office",
        "lead_meeting_booked",
        "lead_meeting_completed",
        "lead_closed",
        "lead_wrong_person",
        "account_error",
        "campaign_completed",
    }
)
# subscription names that differ from the delivered event name
_SUBSCRIPTION_ALIASES = {"email_link_clicked": "link_clicked"}

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NOSCOPE_RE = re.compile(r"noscope-([a-z0-9_]+)")


_SECRET_KEYS = frozenset({"headers", "api_key", "apikey", "token", "secret", "password", "authorization"})


def redact(value: Any) -> Any:
    """A copy for the request log: header values and secret-looking fields are masked."""
    if isinstance(value, dict):
        return {
            k: ("***" if str(k).lower() in _SECRET_KEYS and v else redact(v)) if k != "headers" else _mask(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _mask(headers: Any) -> Any:
    return dict.fromkeys(headers, "***") if isinstance(headers, dict) else "***"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_HUBSPOT_CATEGORY = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    411: "VALIDATION_ERROR",
    413: "VALIDATION_ERROR",
}


def error_body(vendor: str | None, status: int, message: Any, category: str | None = None) -> dict[str, Any]:
    """The error document each vendor answers with."""
    if vendor == HUBSPOT:
        if status == 429:
            return {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": "TEN_SECONDLY_ROLLING",
            }
        return {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category or _HUBSPOT_CATEGORY.get(status, "INTERNAL_ERROR"),
        }
    if vendor in (GHL, INSTANTLY):  # NestJS / Fastify style
        return {"statusCode": status, "error": _reason(status), "message": message}
    if vendor == CLAY:
        return {"status": "error", "message": message}
    return {"error": _reason(status), "message": message}


class SandboxError(Exception):
    """Raised by a route handler: answered with the vendor's error shape."""

    def __init__(
        self,
        status: int,
        message: Any,
        *,
        category: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.category = category
        self.body = body
        self.headers = headers or {}


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # run in the handler thread after the response has been written (e.g. auto-emitted webhooks)
    after: list[Callable[[], Any]] = field(default_factory=list)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    vendor: str | None
    params: dict[str, str] = field(default_factory=dict)
    data: Any = None

    def obj(self) -> dict[str, Any]:
        if self.data is None:
            return {}
        if not isinstance(self.data, dict):
            raise SandboxError(400, "request body must be a JSON object")
        return self.data


# --------------------------------------------------------------------------------------------- state


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
            self.ghl_pipelines: list[dict[str, Any]] = [_demo_pipeline()]
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
            self._seed()

    def _seed(self) -> None:
        ts = now_iso()
        self.instantly_campaigns[DEMO_CAMPAIGN_ID] = {
            "id": DEMO_CAMPAIGN_ID,
            "name": "Demo campaign",
            "status": 1,
            "campaign_schedule": {
                "schedules": [
                    {
                        "name": "Weekdays",
                        "timing": {"from": "09:00", "to": "17:00"},
                        "days": {str(d): d in range(1, 6) for d in range(7)},
                        "timezone": "America/Chicago",
                    }
                ]
            },
            "email_list": [SANDBOX_SENDER],
            "daily_limit": 50,
            "stop_on_reply": True,
            "timestamp_created": ts,
            "timestamp_updated": ts,
            "organization": WORKSPACE_ID,
        }

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
        fault = _validate_fault(spec)
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
            for fault in self.faults:
                if fault["method"] not in (None, method) or not path.startswith(fault["path_prefix"]):
                    continue
                if fault["times"] is not None:
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self.faults.remove(fault)
                return dict(fault)
        return None

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
                        "webhooks": [_webhook_public(w) for w in self.instantly_webhooks.values()],
                        "events": self.instantly_events,
                    },
                    CLAY: {"rows": self.clay_rows},
                }
            return copy.deepcopy(snap)

    # -- Instantly-style webhook emission
    def emit(self, event_type: str, **fields: Any) -> dict[str, Any]:
        """Record an Instantly event and POST it to every matching webhook registration.

        Synchronous; returns ``{"event": payload, "deliveries": [...]}``.
        """
        if not isinstance(event_type, str) or not event_type:
            raise SandboxError(400, "event_type is required")
        with self.lock:
            payload = self._event_payload(event_type, fields)
            self._apply_event(payload)
            targets = [
                copy.deepcopy(w) for w in self.instantly_webhooks.values() if _webhook_matches(w, payload)
            ]
            timeout = float(self.config["webhook_timeout"])
        deliveries = [self._deliver(hook, payload, timeout) for hook in targets]
        return {"event": payload, "deliveries": deliveries}

    def _event_payload(self, event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
        campaign_id = fields.get("campaign_id") or DEMO_CAMPAIGN_ID
        campaign = self.instantly_campaigns.get(campaign_id, {})
        lead_email = fields.get("lead_email")
        payload: dict[str, Any] = {
            "timestamp": now_iso(),
            "event_type": event_type,
            "workspace": WORKSPACE_ID,
            "campaign_id": campaign_id,
            "campaign_name": campaign.get("name", ""),
        }
        if lead_email:
            previous = [
                e
                for e in self.instantly_events
                if e["event_type"] == event_type
                and e.get("lead_email") == lead_email
                and e["campaign_id"] == campaign_id
            ]
            payload.update(
                {
                    "lead_email": lead_email,
                    "email_account": SANDBOX_SENDER,
                    "step": 1,
                    "variant": 1,
                    "is_first": not previous,
                }
            )
        if event_type == "email_sent":
            payload.update(
                {
                    "email_id": str(uuid.uuid4()),
                    "email_subject": f"Quick question for {lead_email or 'you'}",
                    "email_text": "Hello from the sandbox.",
                    "email_html": "<p>Hello from the sandbox.</p>",
                }
            )
        elif event_type in ("reply_received", "auto_reply_received"):
            sent = [
                e
                for e in self.instantly_emails
                if e["ue_type"] == 1 and e["lead"] == lead_email and e["campaign_id"] == campaign_id
            ]
            reply_text = fields.get("reply_text") or "Thanks, tell me more."
            payload.update(
                {
                    "email_id": sent[-1]["id"] if sent else str(uuid.uuid4()),
                    "reply_subject": "Re: Quick question",
                    "reply_text": reply_text,
                    "reply_text_snippet": reply_text[:100],
                    "reply_html": f"<p>{reply_text}</p>",
                    "unibox_url": f"https://app.instantly.ai/app/unibox?thread_search={lead_email}",
                }
            )
        elif lead_email:
            sent = [e for e in self.instantly_emails if e["ue_type"] == 1 and e["lead"] == lead_email]
            if sent:
                payload["email_id"] = sent[-1]["id"]
        payload.update({k: v for k, v in fields.items() if k != "event_type"})
        payload["campaign_id"] = campaign_id
        return payload

    def _apply_event(self, payload: dict[str, Any]) -> None:
        self.instantly_events.append(copy.deepcopy(payload))
        event_type, lead_email = payload["event_type"], payload.get("lead_email")
        lead = next(
            (
                lead
                for lead in self.instantly_leads.values()
                if lead["email"] == lead_email and lead["campaign"] == payload["campaign_id"]
            ),
            None,
        )
        if event_type == "email_sent":
            self.instantly_emails.append(
                {
                    "id": payload.get("email_id") or str(uuid.uuid4()),
                    "timestamp_email": payload["timestamp"],
                    "timestamp_created": payload["timestamp"],
                    "ue_type": 1,
                    "campaign_id": payload["campaign_id"],
                    "lead": lead_email,
                    "eaccount": payload.get("email_account", SANDBOX_SENDER),
                    "from_address_email": payload.get("email_account", SANDBOX_SENDER),
                    "to_address_email_list": lead_email,
                    "subject": payload.get("email_subject", ""),
                    "body": {"text": payload.get("email_text", ""), "html": payload.get("email_html", "")},
                    "step": payload.get("step"),
                    "thread_id": payload.get("email_id"),
                    "is_unread": 0,
                }
            )
        elif event_type in ("reply_received", "auto_reply_received"):
            self.instantly_emails.append(
                {
                    "id": str(uuid.uuid4()),
                    "timestamp_email": payload["timestamp"],
                    "timestamp_created": payload["timestamp"],
                    "ue_type": 2,
                    "campaign_id": payload["campaign_id"],
                    "lead": lead_email,
                    "eaccount": payload.get("email_account", SANDBOX_SENDER),
                    "from_address_email": lead_email,
                    "to_address_email_list": payload.get("email_account", SANDBOX_SENDER),
                    "subject": payload.get("reply_subject", ""),
                    "body": {"text": payload.get("reply_text", ""), "html": payload.get("reply_html", "")},
                    "reply_to_uuid": payload.get("email_id"),
                    "thread_id": payload.get("email_id"),
                    "is_unread": 1,
                    "is_auto_reply": int(event_type == "auto_reply_received"),
                }
            )
        if lead is not None:
            lead["timestamp_updated"] = payload["timestamp"]
            if event_type == "email_bounced":
                lead["status"] = -1
            elif event_type == "lead_unsubscribed":
                lead["status"] = -2
            elif event_type in ("reply_received", "lead_interested"):
                lead["lt_interest_status"] = 1

    def clay_column_post(
        self, source: str, column: dict[str, Any], row: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Clay's HTTP API column: POST one row's enrichment results to the configured URL."""
        payload = clay_enrichment(row)
        headers = {"Content-Type": "application/json", "User-Agent": "MH1-Sandbox-Clay-HTTP-API/1.0"}
        headers.update(column.get("headers") or {})
        status, error = _post_json(column["url"], json.dumps(payload).encode(), headers, timeout)
        record = {
            "clay_source": source,
            "target_url": column["url"],
            "event_type": "clay_http_api",
            "lead_email": payload["email"],
            "timestamp": now_iso(),
            "header_names": sorted((column.get("headers") or {}).keys()),
            "status": status,
            "ok": status is not None and 200 <= status < 300,
            "error": error,
        }
        with self.lock:
            self.deliveries.append(record)
        return record

    def _deliver(self, hook: dict[str, Any], payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "MH1-Sandbox-Instantly-Webhook/1.0"}
        headers.update(hook.get("headers") or {})
        record: dict[str, Any] = {
            "webhook_id": hook["id"],
            "target_hook_url": hook["target_hook_url"],
            "event_type": payload["event_type"],
            "lead_email": payload.get("lead_email"),
            "timestamp": now_iso(),
            # header names only: the values are the subscriber's secret
            "header_names": sorted((hook.get("headers") or {}).keys()),
            "status": None,
            "ok": False,
            "error": None,
        }
        status, error = _post_json(hook["target_hook_url"], body, headers, timeout)
        record["status"], record["error"] = status, error
        record["ok"] = record["status"] is not None and 200 <= record["status"] < 300
        with self.lock:
            self.deliveries.append(record)
            live = self.instantly_webhooks.get(hook["id"])
            if live is not None:
                live["consecutive_failures"] = 0 if record["ok"] else live["consecutive_failures"] + 1
                limit = int(self.config["webhook_disable_after"])
                if limit and live["consecutive_failures"] >= limit:
                    live["status"] = 0
        return dict(record)


def _post_json(
    url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int | None, str | None]:
    """POST straight to the target (no HTTP(S)_PROXY detour; header names keep their case)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, "target_hook_url is not an http(s) URL"
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # *.localhost is loopback (RFC 6761) but Python's resolver does not know it: connect to
    # 127.0.0.1 and keep the name in the Host header, so tenant hosts work in the demo.
    connect_host = parts.hostname
    if connect_host == "localhost" or connect_host.endswith(".localhost"):
        connect_host = "127.0.0.1"
        headers = {"Host": parts.netloc, **headers}
    try:
        connection = connection_class(connect_host, parts.port, timeout=timeout)
    except ValueError as exc:  # e.g. a bad port
        return None, f"ValueError: {exc}"
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()
    return response.status, None if 200 <= response.status < 300 else f"HTTP {response.status}"


def _validate_fault(spec: dict[str, Any]) -> dict[str, Any]:
    mode = spec.get("mode") or "status"
    if mode not in ("status", "timeout", "timeout_after_apply"):
        raise SandboxError(400, "mode must be status, timeout or timeout_after_apply")
    method = spec.get("method")
    if method is not None and not isinstance(method, str):
        raise SandboxError(400, "method must be a string or null")
    path_prefix = spec.get("path_prefix") or "/"
    if not isinstance(path_prefix, str) or not path_prefix.startswith("/"):
        raise SandboxError(400, "path_prefix must start with /")
    times = spec.get("times", 1)
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise SandboxError(400, "times must be a positive integer or null (every matching request)")
    fault: dict[str, Any] = {
        "mode": mode,
        "method": method.upper() if method else None,
        "path_prefix": path_prefix,
        "times": times,
    }
    if mode == "status":
        status = spec.get("status")
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise SandboxError(400, "status must be an HTTP error status (400-599)")
        retry_after = spec.get("retry_after")
        if retry_after is None and status == 429:
            retry_after = 1
        if retry_after is not None and not isinstance(retry_after, int | float):
            raise SandboxError(400, "retry_after must be a number of seconds")
        headers = spec.get("headers") or {}
        if not isinstance(headers, dict):
            raise SandboxError(400, "headers must be an object")
        fault.update(status=status, retry_after=retry_after, body=spec.get("body"), headers=headers)
    else:
        delay = spec.get("delay", 2.0)
        if not isinstance(delay, int | float) or delay < 0 or delay > 600:
            raise SandboxError(400, "delay must be between 0 and 600 seconds")
        fault["delay"] = float(delay)
        if mode == "timeout":
            # sleep first, then apply (a slow vendor); apply=false drops the write and answers 504
            fault["apply"] = bool(spec.get("apply", True))
    return fault


def _webhook_public(hook: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hook.items() if k != "consecutive_failures"} | {
        "consecutive_failures": hook.get("consecutive_failures", 0)
    }


def _webhook_matches(hook: dict[str, Any], payload: dict[str, Any]) -> bool:
    if hook["status"] != 1:
        return False
    wanted = _SUBSCRIPTION_ALIASES.get(hook["event_type"], hook["event_type"])
    if wanted not in ("all_events", payload["event_type"]):
        return False
    return not hook.get("campaign") or hook["campaign"] == payload.get("campaign_id")


def _demo_pipeline() -> dict[str, Any]:
    stages = ["New Lead", "Contacted", "Qualified", "Proposal Sent", "Won"]
    return {
        "id": DEMO_PIPELINE_ID,
        "name": "Sales Pipeline",
        "stages": [
            {"id": f"{DEMO_PIPELINE_ID}-stage-{i + 1}", "name": name, "position": i}
            for i, name in enumerate(stages)
        ],
        "showInFunnel": True,
        "showInPieChart": True,
    }


def _paginate(items: list[dict[str, Any]], query: dict[str, str], key: str = "id") -> dict[str, Any]:
    try:
        limit = max(1, min(100, int(query.get("limit", "10"))))
    except ValueError as exc:
        raise SandboxError(400, "querystring/limit must be integer") from exc
    after = query.get("starting_after")
    if after:
        ids = [item[key] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {"items": page, "next_starting_after": page[-1][key] if len(items) > limit else None}


# --------------------------------------------------------------------------------------------- HubSpot


def _hs_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _hs_find(state: SandboxState, key: str, id_property: str | None) -> dict[str, Any] | None:
    if id_property in (None, "", "hs_object_id"):
        return state.hubspot_contacts.get(key)
    wanted = key.lower() if id_property == "email" else key
    for contact in state.hubspot_contacts.values():
        value = contact["properties"].get(id_property)
        if value is not None and (value.lower() if id_property == "email" else value) == wanted:
            return contact
    return None


def _hs_public(contact: dict[str, Any], properties: list[str] | None) -> dict[str, Any]:
    out = copy.deepcopy(contact)
    if properties:
        keep = set(properties) | {"hs_object_id", "createdate", "lastmodifieddate"}
        out["properties"] = {name: contact["properties"].get(name) for name in sorted(keep)}
    return out


def _hs_props_arg(req: Request) -> list[str] | None:
    raw = req.query.get("properties")
    return [p for p in raw.split(",") if p] if raw else None


def _hs_properties(body: dict[str, Any]) -> dict[str, str | None]:
    props = body.get("properties")
    if not isinstance(props, dict):
        raise SandboxError(400, "Invalid input JSON: properties is required and must be an object")
    out = {str(k): _hs_value(v) for k, v in props.items()}
    if out.get("email"):
        out["email"] = out["email"].strip().lower()
    return out


def _hs_conflict(state: SandboxState, email: str | None, own_id: str | None = None) -> None:
    if not email:
        return
    existing = _hs_find(state, email, "email")
    if existing is not None and existing["id"] != own_id:
        raise SandboxError(409, f"Contact already exists. Existing ID: {existing['id']}", category="CONFLICT")


def _hs_create(state: SandboxState, props: dict[str, str | None]) -> dict[str, Any]:
    contact_id = str(state._hubspot_next_id)
    state._hubspot_next_id += 1
    ts = now_iso()
    contact = {
        "id": contact_id,
        "properties": {**props, "createdate": ts, "lastmodifieddate": ts, "hs_object_id": contact_id},
        "createdAt": ts,
        "updatedAt": ts,
        "archived": False,
    }
    state.hubspot_contacts[contact_id] = contact
    state._hubspot_created_mono[contact_id] = time.monotonic()
    return contact


def _hs_update(contact: dict[str, Any], props: dict[str, str | None]) -> None:
    ts = now_iso()
    contact["properties"].update({k: v for k, v in props.items() if k not in ("hs_object_id", "createdate")})
    contact["properties"]["lastmodifieddate"] = ts
    contact["updatedAt"] = ts


def hubspot_list(state: SandboxState, req: Request) -> Response:
    with state.lock:
        contacts = sorted(state.hubspot_contacts.values(), key=lambda c: int(c["id"]))
        try:
            limit = max(1, min(100, int(req.query.get("limit", "10"))))
        except ValueError as exc:
            raise SandboxError(400, "limit must be an integer") from exc
        after = int(req.query.get("after", "0") or 0)
        rest = [c for c in contacts if int(c["id"]) > after]
        page = rest[:limit]
        body: dict[str, Any] = {"results": [_hs_public(c, _hs_props_arg(req)) for c in page]}
        if len(rest) > limit:
            body["paging"] = {"next": {"after": page[-1]["id"]}}
        return Response(200, body)


def hubspot_get(state: SandboxState, req: Request) -> Response:
    with state.lock:
        contact = _hs_find(state, req.params["id"], req.query.get("idProperty"))
        if contact is None or contact["archived"]:
            raise SandboxError(404, "resource not found", category="OBJECT_NOT_FOUND")
        return Response(200, _hs_public(contact, _hs_props_arg(req)))


def hubspot_patch(state: SandboxState, req: Request) -> Response:
    props = _hs_properties(req.obj())
    with state.lock:
        contact = _hs_find(state, req.params["id"], req.query.get("idProperty"))
        if contact is None or contact["archived"]:
            raise SandboxError(404, "resource not found", category="OBJECT_NOT_FOUND")
        _hs_conflict(state, props.get("email"), contact["id"])
        _hs_update(contact, props)
        return Response(200, _hs_public(contact, None))


def hubspot_create(state: SandboxState, req: Request) -> Response:
    props = _hs_properties(req.obj())
    with state.lock:
        _hs_conflict(state, props.get("email"))
        return Response(201, _hs_public(_hs_create(state, props), None))


def hubspot_batch_upsert(state: SandboxState, req: Request) -> Response:
    inputs = req.obj().get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise SandboxError(400, "Invalid input JSON: inputs is required")
    if len(inputs) > HUBSPOT_BATCH_MAX:
        raise SandboxError(400, f"Batch input limit exceeded: at most {HUBSPOT_BATCH_MAX} inputs")
    started = now_iso()
    results = []
    with state.lock:
        for item in inputs:
            if not isinstance(item, dict) or not item.get("id"):
                raise SandboxError(400, "Invalid input JSON: every input needs id and idProperty")
            id_property = item.get("idProperty") or "email"
            if id_property == "hs_object_id":
                raise SandboxError(400, "idProperty must be a unique property other than hs_object_id")
            props = _hs_properties({"properties": item.get("properties") or {}})
            contact = _hs_find(state, str(item["id"]), id_property)
            if contact is None:
                props.setdefault(
                    id_property, str(item["id"]).lower() if id_property == "email" else item["id"]
                )
                contact, new = _hs_create(state, props), True
            else:
                _hs_update(contact, props)
                new = False
            results.append({**_hs_public(contact, None), "new": new})
    return Response(
        200, {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": now_iso()}
    )


def _hs_filter_match(contact: dict[str, Any], flt: dict[str, Any]) -> bool:
    name, op = flt.get("propertyName"), (flt.get("operator") or "EQ").upper()
    value = contact["properties"].get(name)
    norm = value.lower() if isinstance(value, str) else value
    if op == "EQ":
        return norm == str(flt.get("value", "")).lower()
    if op == "NEQ":
        return norm != str(flt.get("value", "")).lower()
    if op == "IN":
        return norm in {str(v).lower() for v in flt.get("values") or []}
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    raise SandboxError(400, f"Unsupported filter operator in sandbox: {op}")


def hubspot_search(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise SandboxError(400, "filterGroups must be a list")
    limit = max(1, min(200, int(body.get("limit") or 10)))
    after = int(body.get("after") or 0)
    with state.lock:
        lag = float(state.config["hubspot_search_lag_seconds"])
        now = time.monotonic()
        visible = [
            c
            for c in sorted(state.hubspot_contacts.values(), key=lambda c: int(c["id"]))
            if not c["archived"] and now - state._hubspot_created_mono.get(c["id"], 0.0) >= lag
        ]
        matched = [
            c
            for c in visible
            if not groups or any(all(_hs_filter_match(c, f) for f in g.get("filters") or []) for g in groups)
        ]
        page = matched[after : after + limit]
        out: dict[str, Any] = {
            "total": len(matched),
            "results": [_hs_public(c, body.get("properties") or None) for c in page],
        }
        if after + limit < len(matched):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return Response(200, out)


# --------------------------------------------------------------------------------------------- GoHighLevel

_GHL_CONTACT_FIELDS = (
    "firstName",
    "lastName",
    "name",
    "email",
    "phone",
    "companyName",
    "website",
    "address1",
    "city",
    "state",
    "postalCode",
    "country",
    "timezone",
    "source",
    "dnd",
    "dndSettings",
    "customFields",
    "tags",
    "assignedTo",
)


def _ghl_norm_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SandboxError(400, ["tags must be an array of strings"])
    out: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if tag and tag not in out:
            out.append(tag)
    return out


def _ghl_contact_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = {k: copy.deepcopy(body[k]) for k in _GHL_CONTACT_FIELDS if k in body}
    if fields.get("email"):
        fields["email"] = str(fields["email"]).strip().lower()
    if "tags" in fields:
        fields["tags"] = _ghl_norm_tags(fields["tags"])
    return fields


def _ghl_get_contact(state: SandboxState, contact_id: str) -> dict[str, Any]:
    contact = state.ghl_contacts.get(contact_id)
    if contact is None:
        raise SandboxError(404, "Contact not found")
    return contact


def _ghl_find(state: SandboxState, location_id: str, email: str | None, phone: str | None) -> dict | None:
    for contact in state.ghl_contacts.values():
        if contact["locationId"] != location_id:
            continue
        if email and contact.get("email") == email.strip().lower():
            return contact
    if phone:
        for contact in state.ghl_contacts.values():
            if contact["locationId"] == location_id and contact.get("phone") == phone:
                return contact
    return None


def _ghl_name(contact: dict[str, Any]) -> None:
    contact["contactName"] = " ".join(p for p in (contact.get("firstName"), contact.get("lastName")) if p)


def ghl_upsert(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    location_id = body.get("locationId")
    if not location_id:
        raise SandboxError(400, ["locationId should not be empty"])
    fields = _ghl_contact_fields(body)
    if not fields.get("email") and not fields.get("phone"):
        raise SandboxError(400, ["email or phone is required"])
    with state.lock:
        if state.config["ghl_allow_duplicate_contact"]:
            # duplicates allowed: only the first-priority field (email) identifies a contact
            contact = _ghl_find(
                state, location_id, fields.get("email"), None if fields.get("email") else fields.get("phone")
            )
        else:
            contact = _ghl_find(state, location_id, fields.get("email"), fields.get("phone"))
        ts = now_iso()
        new = contact is None
        if new:
            contact = {
                "id": uuid.uuid4().hex[:20],
                "locationId": location_id,
                "type": "lead",
                "tags": [],
                "customFields": [],
                "dnd": False,
                "dateAdded": ts,
            }
            state.ghl_contacts[contact["id"]] = contact
        contact.update(fields)  # like the vendor's update, a given tags list replaces the tags
        contact["dateUpdated"] = ts
        _ghl_name(contact)
        return Response(200, {"new": new, "contact": copy.deepcopy(contact), "traceId": str(uuid.uuid4())})


def ghl_get_contact(state: SandboxState, req: Request) -> Response:
    with state.lock:
        return Response(200, {"contact": copy.deepcopy(_ghl_get_contact(state, req.params["id"]))})


def ghl_update_contact(state: SandboxState, req: Request) -> Response:
    fields = _ghl_contact_fields(req.obj())
    with state.lock:
        contact = _ghl_get_contact(state, req.params["id"])
        contact.update(fields)
        contact["dateUpdated"] = now_iso()
        _ghl_name(contact)
        return Response(200, {"succeded": True, "contact": copy.deepcopy(contact)})


def ghl_duplicate(state: SandboxState, req: Request) -> Response:
    location_id = req.query.get("locationId")
    if not location_id:
        raise SandboxError(400, ["locationId should not be empty"])
    email, number = req.query.get("email"), req.query.get("number")
    if not email and not number:
        raise SandboxError(400, ["email or number is required"])
    with state.lock:
        contact = _ghl_find(state, location_id, email, number)
        return Response(200, {"contact": copy.deepcopy(contact) if contact else None})


def ghl_search(state: SandboxState, req: Request) -> Response:
    """POST /contacts/search: the location's contacts, oldest first, paged by ``searchAfter``."""
    body = req.obj()
    location_id = body.get("locationId")
    if not location_id:
        raise SandboxError(400, ["locationId should not be empty"])
    try:
        limit = int(body.get("pageLimit") or 20)
    except (TypeError, ValueError) as exc:
        raise SandboxError(400, ["pageLimit must be a number"]) from exc
    if not 1 <= limit <= 500:
        raise SandboxError(422, ["pageLimit must not be greater than 500"])
    after = body.get("searchAfter") or [0, ""]
    if not isinstance(after, list) or len(after) != 2:
        raise SandboxError(422, ["searchAfter must be an array of two values"])
    with state.lock:
        # contacts are never deleted here: the creation order is a stable sort key
        rows = [
            (seq, c) for seq, c in enumerate(state.ghl_contacts.values(), 1) if c["locationId"] == location_id
        ]
        rest = [(seq, c) for seq, c in rows if seq > int(after[0] or 0)]
        page = [{**copy.deepcopy(c), "searchAfter": [seq, c["id"]]} for seq, c in rest[:limit]]
        return Response(200, {"contacts": page, "total": len(rows)})


def ghl_add_tags(state: SandboxState, req: Request) -> Response:
    tags = _ghl_norm_tags(req.obj().get("tags"))
    with state.lock:
        contact = _ghl_get_contact(state, req.params["id"])
        contact["tags"] = contact["tags"] + [t for t in tags if t not in contact["tags"]]
        contact["dateUpdated"] = now_iso()
        return Response(201, {"tags": list(contact["tags"])})


def ghl_remove_tags(state: SandboxState, req: Request) -> Response:
    tags = _ghl_norm_tags(req.obj().get("tags"))
    with state.lock:
        contact = _ghl_get_contact(state, req.params["id"])
        contact["tags"] = [t for t in contact["tags"] if t not in tags]
        contact["dateUpdated"] = now_iso()
        return Response(200, {"tags": list(contact["tags"])})


def ghl_pipelines(state: SandboxState, req: Request) -> Response:
    location_id = req.query.get("locationId")
    if not location_id:
        raise SandboxError(400, ["locationId should not be empty"])
    with state.lock:
        return Response(
            200, {"pipelines": [{**copy.deepcopy(p), "locationId": location_id} for p in state.ghl_pipelines]}
        )


_GHL_OPP_STATUSES = ("open", "won", "lost", "abandoned")


def _ghl_check_stage(state: SandboxState, pipeline_id: str, stage_id: str | None) -> None:
    pipeline = next((p for p in state.ghl_pipelines if p["id"] == pipeline_id), None)
    if pipeline is None:
        raise SandboxError(400, "Pipeline not found")
    if stage_id is not None and stage_id not in {s["id"] for s in pipeline["stages"]}:
        raise SandboxError(400, "Pipeline stage not found in pipeline")


def ghl_create_opportunity(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    missing = [k for k in ("pipelineId", "locationId", "name", "contactId") if not body.get(k)]
    if missing:
        raise SandboxError(400, [f"{k} should not be empty" for k in missing])
    status = body.get("status", "open")
    if status not in _GHL_OPP_STATUSES:
        raise SandboxError(
            400, [f"status must be one of the following values: {', '.join(_GHL_OPP_STATUSES)}"]
        )
    with state.lock:
        _ghl_check_stage(state, body["pipelineId"], body.get("pipelineStageId"))
        if body["contactId"] not in state.ghl_contacts:
            raise SandboxError(400, "Contact not found")
        ts = now_iso()
        stage_id = body.get("pipelineStageId") or f"{body['pipelineId']}-stage-1"
        opp = {
            "id": uuid.uuid4().hex[:20],
            "name": body["name"],
            "monetaryValue": body.get("monetaryValue", 0),
            "pipelineId": body["pipelineId"],
            "pipelineStageId": stage_id,
            "assignedTo": body.get("assignedTo"),
            "status": status,
            "source": body.get("source"),
            "contactId": body["contactId"],
            "locationId": body["locationId"],
            "createdAt": ts,
            "updatedAt": ts,
            "lastStatusChangeAt": ts,
            "lastStageChangeAt": ts,
            "stageHistory": [stage_id],
        }
        state.ghl_opportunities[opp["id"]] = opp
        return Response(201, {"opportunity": copy.deepcopy(opp)})


def _ghl_get_opp(state: SandboxState, opp_id: str) -> dict[str, Any]:
    opp = state.ghl_opportunities.get(opp_id)
    if opp is None:
        raise SandboxError(404, "Opportunity not found")
    return opp


def ghl_get_opportunity(state: SandboxState, req: Request) -> Response:
    with state.lock:
        return Response(200, {"opportunity": copy.deepcopy(_ghl_get_opp(state, req.params["id"]))})


def ghl_update_opportunity(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    if "status" in body and body["status"] not in _GHL_OPP_STATUSES:
        raise SandboxError(
            400, [f"status must be one of the following values: {', '.join(_GHL_OPP_STATUSES)}"]
        )
    with state.lock:
        opp = _ghl_get_opp(state, req.params["id"])
        pipeline_id = body.get("pipelineId") or opp["pipelineId"]
        _ghl_check_stage(state, pipeline_id, body.get("pipelineStageId"))
        ts = now_iso()
        if body.get("pipelineStageId") and body["pipelineStageId"] != opp["pipelineStageId"]:
            opp["lastStageChangeAt"] = ts
            opp["stageHistory"].append(body["pipelineStageId"])
        if body.get("status") and body["status"] != opp["status"]:
            opp["lastStatusChangeAt"] = ts
        for key in ("name", "pipelineId", "pipelineStageId", "status", "monetaryValue", "assignedTo"):
            if key in body:
                opp[key] = body[key]
        opp["updatedAt"] = ts
        return Response(200, {"opportunity": copy.deepcopy(opp)})


# --------------------------------------------------------------------------------------------- Instantly


def _in_get_campaign(state: SandboxState, campaign_id: str) -> dict[str, Any]:
    campaign = state.instantly_campaigns.get(campaign_id)
    if campaign is None:
        raise SandboxError(404, "Campaign not found")
    return campaign


def instantly_list_campaigns(state: SandboxState, req: Request) -> Response:
    with state.lock:
        items = list(state.instantly_campaigns.values())
        search = req.query.get("search")
        if search:
            items = [c for c in items if search.lower() in c["name"].lower()]
        return Response(200, copy.deepcopy(_paginate(items, req.query)))


def instantly_create_campaign(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    if not body.get("name"):
        raise SandboxError(400, "body must have required property 'name'")
    if not isinstance(body.get("campaign_schedule"), dict):
        raise SandboxError(400, "body must have required property 'campaign_schedule'")
    ts = now_iso()
    campaign = {
        **copy.deepcopy(body),
        "id": str(uuid.uuid4()),
        "status": 0,
        "timestamp_created": ts,
        "timestamp_updated": ts,
        "organization": WORKSPACE_ID,
    }
    with state.lock:
        state.instantly_campaigns[campaign["id"]] = campaign
        return Response(200, copy.deepcopy(campaign))


def instantly_get_campaign(state: SandboxState, req: Request) -> Response:
    with state.lock:
        return Response(200, copy.deepcopy(_in_get_campaign(state, req.params["id"])))


def _in_set_status(state: SandboxState, req: Request, status: int) -> Response:
    with state.lock:
        campaign = _in_get_campaign(state, req.params["id"])
        campaign["status"] = status
        campaign["timestamp_updated"] = now_iso()
        return Response(200, copy.deepcopy(campaign))


def instantly_activate(state: SandboxState, req: Request) -> Response:
    return _in_set_status(state, req, 1)


def instantly_pause(state: SandboxState, req: Request) -> Response:
    return _in_set_status(state, req, 2)


def instantly_analytics(state: SandboxState, req: Request) -> Response:
    wanted = [i for i in (req.query.get("id"), *req.query.get("ids", "").split(",")) if i]
    with state.lock:
        campaigns = (
            [_in_get_campaign(state, i) for i in wanted]
            if wanted
            else list(state.instantly_campaigns.values())
        )
        out = []
        for c in campaigns:
            events = [e for e in state.instantly_events if e.get("campaign_id") == c["id"]]

            def count(event_type: str, unique: bool = False, _events: list = events) -> int:
                hits = [e for e in _events if e["event_type"] == event_type]
                return len({e.get("lead_email") for e in hits}) if unique else len(hits)

            out.append(
                {
                    "campaign_name": c["name"],
                    "campaign_id": c["id"],
                    "campaign_status": c["status"],
                    "campaign_is_evergreen": False,
                    "leads_count": sum(
                        1 for lead in state.instantly_leads.values() if lead["campaign"] == c["id"]
                    ),
                    "contacted_count": count("email_sent", unique=True),
                    "emails_sent_count": count("email_sent"),
                    "open_count": count("email_opened"),
                    "open_count_unique": count("email_opened", unique=True),
                    "reply_count": count("reply_received"),
                    "reply_count_unique": count("reply_received", unique=True),
                    "link_click_count": count("link_clicked"),
                    "bounced_count": count("email_bounced"),
                    "unsubscribed_count": count("lead_unsubscribed"),
                    "completed_count": 0,
                    "new_leads_contacted_count": count("email_sent", unique=True),
                    "total_opportunities": count("lead_interested", unique=True),
                    "total_opportunity_value": 0,
                }
            )
        return Response(200, out)


def _in_blocked(state: SandboxState, email: str) -> bool:
    domain = email.rsplit("@", 1)[-1]
    values = {e["bl_value"] for e in state.instantly_blocklist.values()}
    return email in values or domain in values


def instantly_add_leads(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    leads = body.get("leads")
    if not isinstance(leads, list):
        raise SandboxError(400, "body must have required property 'leads'")
    if len(leads) > INSTANTLY_MAX_LEADS:
        raise SandboxError(400, f"body/leads must NOT have more than {INSTANTLY_MAX_LEADS} items")
    if not leads:
        raise SandboxError(400, "body/leads must NOT have fewer than 1 items")
    campaign_id, list_id = body.get("campaign_id"), body.get("list_id")
    if not campaign_id and not list_id:
        raise SandboxError(400, "body must have required property 'campaign_id' or 'list_id'")
    counters = dict.fromkeys(
        (
            "in_blocklist",
            "already_in_campaign",
            "skipped_count",
            "invalid_email_count",
            "duplicate_email_count",
        ),
        0,
    )
    created: list[dict[str, Any]] = []
    after: list[Callable[[], Any]] = []
    with state.lock:
        campaign = _in_get_campaign(state, campaign_id) if campaign_id else None
        seen: set[str] = set()
        for index, lead in enumerate(leads):
            email = str((lead or {}).get("email") or "").strip().lower() if isinstance(lead, dict) else ""
            if not _EMAIL_RE.match(email):
                counters["invalid_email_count"] += 1
                continue
            if email in seen:
                counters["duplicate_email_count"] += 1
                continue
            seen.add(email)
            if _in_blocked(state, email):
                counters["in_blocklist"] += 1
                continue
            existing = [x for x in state.instantly_leads.values() if x["email"] == email]
            if campaign_id and any(x["campaign"] == campaign_id for x in existing):
                counters["already_in_campaign"] += 1
                continue
            if existing and body.get("skip_if_in_workspace"):
                counters["skipped_count"] += 1
                continue
            ts = now_iso()
            record = {
                "id": str(uuid.uuid4()),
                "email": email,
                "first_name": lead.get("first_name"),
                "last_name": lead.get("last_name"),
                "company_name": lead.get("company_name"),
                "phone": lead.get("phone"),
                "website": lead.get("website"),
                "personalization": lead.get("personalization"),
                "custom_variables": copy.deepcopy(lead.get("custom_variables") or {}),
                "campaign": campaign_id,
                "list_id": list_id,
                "status": 1,
                "timestamp_created": ts,
                "timestamp_updated": ts,
                "organization": WORKSPACE_ID,
            }
            state.instantly_leads[record["id"]] = record
            created.append({"id": record["id"], "index": index, "email": email})
        auto = bool(state.config["auto_events"]) and campaign is not None and campaign["status"] == 1
    if auto:
        for lead in created:
            after.append(
                lambda email=lead["email"]: state.emit(
                    "email_sent", lead_email=email, campaign_id=campaign_id
                )
            )
    return Response(
        200,
        {
            "status": "success",
            "total_sent": len(leads),
            "leads_uploaded": len(created),
            "blocklist_used": body.get("blocklist_id"),
            **counters,
            "remaining_in_plan": 1_000_000,
            "created_leads": created,
        },
        after=after,
    )


def instantly_emails(state: SandboxState, req: Request) -> Response:
    q = req.query
    type_filter = {"received": {2}, "sent": {1, 3}, "manual": {3}}.get(q.get("email_type", ""))
    with state.lock:
        items = [
            e
            for e in reversed(state.instantly_emails)
            if (not q.get("campaign_id") or e["campaign_id"] == q["campaign_id"])
            and (not q.get("lead") or e["lead"] == q["lead"].lower())
            and (type_filter is None or e["ue_type"] in type_filter)
            and (q.get("is_unread") in (None, "") or e["is_unread"] == int(q["is_unread"] in ("true", "1")))
        ]
        return Response(200, copy.deepcopy(_paginate(items, q)))


def instantly_add_blocklist(state: SandboxState, req: Request) -> Response:
    value = str(req.obj().get("bl_value") or "").strip().lower()
    if not value:
        raise SandboxError(400, "body must have required property 'bl_value'")
    with state.lock:
        existing = next((e for e in state.instantly_blocklist.values() if e["bl_value"] == value), None)
        if existing is not None:
            return Response(200, copy.deepcopy(existing))
        entry = {
            "id": str(uuid.uuid4()),
            "timestamp_created": now_iso(),
            "bl_value": value,
            "is_domain": "@" not in value,
            "organization_id": WORKSPACE_ID,
        }
        state.instantly_blocklist[entry["id"]] = entry
        return Response(200, copy.deepcopy(entry))


def instantly_list_blocklist(state: SandboxState, req: Request) -> Response:
    with state.lock:
        items = list(state.instantly_blocklist.values())
        if req.query.get("search"):
            items = [e for e in items if req.query["search"].lower() in e["bl_value"]]
        if req.query.get("domains_only") in ("true", "1"):
            items = [e for e in items if e["is_domain"]]
        return Response(200, copy.deepcopy(_paginate(items, req.query)))


def instantly_delete_blocklist(state: SandboxState, req: Request) -> Response:
    with state.lock:
        entry = state.instantly_blocklist.pop(req.params["id"], None)
        if entry is None:
            raise SandboxError(404, "Block list entry not found")
        return Response(200, entry)


def instantly_create_webhook(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    url = body.get("target_hook_url")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise SandboxError(400, "body/target_hook_url must be an http(s) URL")
    event_type = body.get("event_type") or "all_events"
    known = INSTANTLY_EVENT_TYPES | set(_SUBSCRIPTION_ALIASES) | {"all_events"}
    if event_type not in known:
        raise SandboxError(400, f"body/event_type must be one of {sorted(known)}")
    headers = body.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise SandboxError(400, "body/headers must be an object of strings")
    hook = {
        "id": str(uuid.uuid4()),
        "name": body.get("name"),
        "target_hook_url": url,
        "event_type": event_type,
        "campaign": body.get("campaign"),
        "headers": dict(headers),
        "status": 1,
        "timestamp_created": now_iso(),
        "organization": WORKSPACE_ID,
        "consecutive_failures": 0,
    }
    with state.lock:
        state.instantly_webhooks[hook["id"]] = hook
        return Response(200, _webhook_public(hook))


def instantly_list_webhooks(state: SandboxState, req: Request) -> Response:
    with state.lock:
        items = [_webhook_public(w) for w in state.instantly_webhooks.values()]
        return Response(200, copy.deepcopy(_paginate(items, req.query)))


def instantly_delete_webhook(state: SandboxState, req: Request) -> Response:
    with state.lock:
        hook = state.instantly_webhooks.pop(req.params["id"], None)
        if hook is None:
            raise SandboxError(404, "Webhook not found")
        return Response(200, _webhook_public(hook))


def instantly_resume_webhook(state: SandboxState, req: Request) -> Response:
    with state.lock:
        hook = state.instantly_webhooks.get(req.params["id"])
        if hook is None:
            raise SandboxError(404, "Webhook not found")
        hook["status"], hook["consecutive_failures"] = 1, 0
        return Response(200, _webhook_public(hook))


# --------------------------------------------------------------------------------------------- Clay


def clay_webhook(state: SandboxState, req: Request) -> Response:
    data = req.data
    if isinstance(data, dict):
        rows = [data]
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        rows = data
    else:
        raise SandboxError(400, "body must be a JSON object (one row) or an array of objects")
    source = req.params["source_id"]
    with state.lock:
        limit = int(state.config["clay_submission_limit"])
        used = state.clay_submissions.get(source, 0)
        if used + len(rows) > limit:
            raise SandboxError(
                422,
                f"This webhook source has reached its limit of {limit} submissions; "
                "create a new webhook source",
            )
        state.clay_submissions[source] = used + len(rows)
        kept = state.clay_rows.setdefault(source, [])
        kept.extend(copy.deepcopy(rows[: max(0, 1000 - len(kept))]))  # keep the first 1000 for inspection
        column = copy.deepcopy(state.config["clay_columns"].get(source))
        timeout = float(state.config["webhook_timeout"])
    after = []
    if column:
        # Clay enriches later and sends the results through the table's HTTP API column
        for row in rows:
            after.append(lambda row=row: state.clay_column_post(source, column, row, timeout))
    return Response(202, {"status": "ok"}, after=after)


def clay_enrichment(row: dict[str, Any]) -> dict[str, Any]:
    """Deterministic enrichment output for a row (seed 001's Clay spec), echoing its mh1_ref."""
    email = str(row.get("email") or "").lower()
    local, _, domain = email.partition("@")
    digest = int(hashlib.sha256(email.encode()).hexdigest()[:8], 16)
    company = (domain.split(".")[0] or "example").replace("-", " ").title()
    titles = ["VP Marketing", "Head of Growth", "Marketing Manager", "CMO", "RevOps Lead"]
    title = titles[digest % len(titles)]
    seniority = "c_suite" if title == "CMO" else ("vp" if title.startswith(("VP", "Head")) else "manager")
    return {
        "mh1_ref": row.get("mh1_ref"),
        "email": email,
        "phone": f"+1415555{digest % 10000:04d}",
        "title": title,
        "company_name": row.get("company") or company,
        "company_domain": domain,
        "company_size": [12, 48, 180, 650, 2400][digest % 5],
        "company_industry": ["Software", "Logistics", "Healthcare", "Retail"][digest % 4],
        "company_revenue": [1_000_000, 8_000_000, 40_000_000, 250_000_000][digest % 4],
        "technologies": ["HubSpot", "Google Workspace"] if digest % 2 else ["Salesforce", "Outreach"],
        "seniority_level": seniority,
        "department": "marketing",
        "data_source": "clay",
        "data_collected_at": now_iso(),
        "legal_basis": "legitimate_interest",
        "first_name": row.get("first_name") or local.split(".")[0].title(),
    }


# --------------------------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[SandboxState, Request], Response]
    area: str
    scope: str


def _r(method: str, path: str, handler: Callable, area: str, scope: str) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(method, re.compile(f"^{regex}$"), handler, area, scope)


_C = "/crm/v3/objects/contacts"
ROUTES: list[Route] = [
    # HubSpot
    _r("GET", _C, hubspot_list, "contacts", "crm.objects.contacts.read"),
    _r("POST", _C, hubspot_create, "contacts", "crm.objects.contacts.write"),
    _r("POST", f"{_C}/search", hubspot_search, "contacts", "crm.objects.contacts.read"),
    _r("POST", f"{_C}/batch/upsert", hubspot_batch_upsert, "contacts", "crm.objects.contacts.write"),
    _r("GET", f"{_C}/{{id}}", hubspot_get, "contacts", "crm.objects.contacts.read"),
    _r("PATCH", f"{_C}/{{id}}", hubspot_patch, "contacts", "crm.objects.contacts.write"),
    # GoHighLevel
    _r("POST", "/contacts/upsert", ghl_upsert, "contacts", "contacts.write"),
    _r("GET", "/contacts/search/duplicate", ghl_duplicate, "contacts", "contacts.readonly"),
    _r("POST", "/contacts/search", ghl_search, "contacts", "contacts.readonly"),
    _r("POST", "/contacts/{id}/tags", ghl_add_tags, "contacts", "contacts.write"),
    _r("DELETE", "/contacts/{id}/tags", ghl_remove_tags, "contacts", "contacts.write"),
    _r("GET", "/contacts/{id}", ghl_get_contact, "contacts", "contacts.readonly"),
    _r("PUT", "/contacts/{id}", ghl_update_contact, "contacts", "contacts.write"),
    _r("GET", "/opportunities/pipelines", ghl_pipelines, "opportunities", "opportunities.readonly"),
    _r("POST", "/opportunities", ghl_create_opportunity, "opportunities", "opportunities.write"),
    _r("GET", "/opportunities/{id}", ghl_get_opportunity, "opportunities", "opportunities.readonly"),
    _r("PUT", "/opportunities/{id}", ghl_update_opportunity, "opportunities", "opportunities.write"),
    # Instantly
    _r("GET", "/api/v2/campaigns", instantly_list_campaigns, "campaigns", "campaigns:read"),
    _r("POST", "/api/v2/campaigns", instantly_create_campaign, "campaigns", "campaigns:create"),
    _r("GET", "/api/v2/campaigns/analytics", instantly_analytics, "campaigns", "campaigns:read"),
    _r("GET", "/api/v2/campaigns/{id}", instantly_get_campaign, "campaigns", "campaigns:read"),
    _r("POST", "/api/v2/campaigns/{id}/activate", instantly_activate, "campaigns", "campaigns:update"),
    _r("POST", "/api/v2/campaigns/{id}/pause", instantly_pause, "campaigns", "campaigns:update"),
    _r("POST", "/api/v2/leads/add", instantly_add_leads, "leads", "leads:create"),
    _r("GET", "/api/v2/emails", instantly_emails, "emails", "emails:read"),
    _r(
        "POST",
        "/api/v2/block-lists-entries",
        instantly_add_blocklist,
        "blocklists",
        "block_list_entries:create",
    ),
    _r(
        "GET",
        "/api/v2/block-lists-entries",
        instantly_list_blocklist,
        "blocklists",
        "block_list_entries:read",
    ),
    _r(
        "DELETE",
        "/api/v2/block-lists-entries/{id}",
        instantly_delete_blocklist,
        "blocklists",
        "block_list_entries:delete",
    ),
    _r("POST", "/api/v2/webhooks", instantly_create_webhook, "webhooks", "webhooks:create"),
    _r("GET", "/api/v2/webhooks", instantly_list_webhooks, "webhooks", "webhooks:read"),
    _r("DELETE", "/api/v2/webhooks/{id}", instantly_delete_webhook, "webhooks", "webhooks:delete"),
    _r("POST", "/api/v2/webhooks/{id}/resume", instantly_resume_webhook, "webhooks", "webhooks:update"),
    # Clay
    _r("POST", "/clay/webhook/{source_id}", clay_webhook, "clay", "webhook"),
]


def vendor_for(path: str) -> str | None:
    if path.startswith("/_sandbox"):
        return CONTROL
    if path.startswith("/crm/"):
        return HUBSPOT
    if path.startswith(("/contacts", "/opportunities")):
        return GHL
    if path.startswith("/api/v2"):
        return INSTANTLY
    if path.startswith("/clay/"):
        return CLAY
    return None


def match_route(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, params, path_known): path_known tells 405 from 404 when no route matched."""
    path_known = False
    for route in ROUTES:
        m = route.pattern.match(path)
        if m is None:
            continue
        path_known = True
        if route.method == method:
            return route, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}, True
    return None, {}, path_known


def _bearer(headers: Any) -> str | None:
    value = headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def check_auth(vendor: str, headers: Any) -> SandboxError | None:
    """401 / 400 (GoHighLevel Version) before routing, like the vendors' gateways."""
    token = _bearer(headers)
    if token is None and vendor == CLAY:
        token = (headers.get("x-clay-webhook-auth") or "").strip() or None
    if token is None or token.startswith("bad-"):
        message = {
            HUBSPOT: "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            GHL: "Invalid JWT",
            INSTANTLY: "Invalid API key",
            CLAY: "Unauthorized",
        }[vendor]
        if token is not None and vendor == HUBSPOT:
            message = "The OAuth token used to make this call expired or is invalid."
        return SandboxError(401, message, category="INVALID_AUTHENTICATION")
    if vendor == GHL and headers.get("Version") != GHL_VERSION:
        return SandboxError(400, f"Version header was not found or is not {GHL_VERSION}")
    return None


def check_scope(vendor: str, headers: Any, route: Route) -> SandboxError | None:
    token = _bearer(headers) or (headers.get("x-clay-webhook-auth") or "")
    missing = set(_NOSCOPE_RE.findall(token.lower()))
    if route.area not in missing and "all" not in missing:
        return None
    if vendor == HUBSPOT:
        return SandboxError(
            403,
            "This app hasn't been granted all required scopes to make this call. Read more about "
            "required scopes here: https://developers.hubspot.com/scopes.",
            category="MISSING_SCOPES",
            body={
                "status": "error",
                "message": "This app hasn't been granted all required scopes to make this call.",
                "correlationId": str(uuid.uuid4()),
                "errors": [
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [route.scope]},
                    }
                ],
                "category": "MISSING_SCOPES",
            },
        )
    if vendor == GHL:
        return SandboxError(403, f"The token is not authorized for this scope: {route.scope}")
    return SandboxError(403, f"Missing required scope: {route.scope} (area {route.area})")


def fault_response(vendor: str | None, fault: dict[str, Any]) -> Response:
    status = fault["status"]
    if fault.get("body") is not None:
        body = fault["body"]
    elif vendor == HUBSPOT and status == 429:
        body = error_body(HUBSPOT, 429, "")
    else:
        message = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}.get(
            status, _reason(status)
        )
        body = error_body(vendor, status, f"{message} (sandbox fault)")
    headers = {str(k): str(v) for k, v in (fault.get("headers") or {}).items()}
    if fault.get("retry_after") is not None:
        retry = fault["retry_after"]
        headers.setdefault("Retry-After", str(int(retry) if float(retry).is_integer() else retry))
    if status == 429 and vendor == HUBSPOT:
        headers.setdefault("X-HubSpot-RateLimit-Remaining", "0")
    if status == 429 and vendor == GHL:
        headers.setdefault("X-RateLimit-Remaining", "0")
    return Response(status, body, headers)


def rate_headers(state: SandboxState, vendor: str) -> dict[str, str]:
    if vendor == HUBSPOT:
        used = state.hit(vendor, 10.0)
        return {
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": str(max(0, 100 - used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        }
    if vendor == GHL:
        used = state.hit(vendor, 10.0)
        return {
            "X-RateLimit-Max": "100",
            "X-RateLimit-Remaining": str(max(0, 100 - used)),
            "X-RateLimit-Interval-Milliseconds": "10000",
            "X-RateLimit-Limit-Daily": "200000",
        }
    return {}


# --------------------------------------------------------------------------------------------- control API


def control(state: SandboxState, method: str, path: str, query: dict[str, str], data: Any) -> Response:
    path = path.rstrip("/") or "/"
    body = data if isinstance(data, dict) else {}
    if data is not None and not isinstance(data, dict):
        raise SandboxError(400, "body must be a JSON object")
    if path == "/_sandbox" and method == "GET":
        return Response(
            200, {"control": CONTROL_HELP, "routes": [f"{r.method} {r.pattern.pattern}" for r in ROUTES]}
        )
    if path == "/_sandbox/state" and method == "GET":
        return Response(200, state.snapshot(include_data=query.get("data") in ("1", "true")))
    if path == "/_sandbox/reset" and method == "POST":
        state.reset()
        return Response(200, {"status": "reset"})
    if path == "/_sandbox/faults":
        if method == "POST":
            return Response(201, {"fault": state.add_fault(**body)})
        if method == "GET":
            with state.lock:
                return Response(200, {"faults": copy.deepcopy(state.faults)})
        if method == "DELETE":
            state.clear_faults()
            return Response(200, {"faults": []})
    if path == "/_sandbox/config":
        if method == "GET":
            with state.lock:
                return Response(200, dict(state.config))
        if method in ("POST", "PATCH", "PUT"):
            return Response(200, state.configure(**body))
    if path == "/_sandbox/emit" and method == "POST":
        fields = {k: v for k, v in body.items() if k != "event_type"}
        return Response(200, state.emit(body.get("event_type"), **fields))
    raise SandboxError(404, f"no control endpoint {method} {path}")


# --------------------------------------------------------------------------------------------- HTTP


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool = False) -> None:
        self.state = state
        self.verbose = verbose
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MH1Sandbox/1.0"
    timeout = 120  # idle keep-alive connections
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing
    def _read_body(self) -> bytes | Response:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            return Response(411, "Length Required: send Content-Length")
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw else 0
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            return Response(400, "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            remaining = length if length <= _DRAIN_LIMIT else 0
            while remaining > 0:  # drain, so the client reads our 413 instead of a reset
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)
            return Response(413, f"Request body exceeds {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response) -> None:
        payload = (
            b"" if response.body is None or response.status == 204 else json.dumps(response.body).encode()
        )
        try:
            self.send_response(response.status)
            if payload:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if payload:
                self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            # the client gave up (e.g. a timeout fault): the effect, if any, stays applied
            self.close_connection = True

    def _handle(self, method: str) -> None:
        state = self.server.state
        started = time.monotonic()
        split = urllib.parse.urlsplit(self.path)
        path = split.path if split.path in ("", "/") else split.path.rstrip("/")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        vendor = vendor_for(path)
        entry: dict[str, Any] = {
            "time": now_iso(),
            "vendor": vendor,
            "method": method,
            "path": path,
            "query": query,
            "json": None,
            "fault": None,
        }
        sleep_after = 0.0
        body = self._read_body()
        if isinstance(body, Response) and vendor == CONTROL:
            self._send(Response(body.status, {"error": body.body}))
            return
        if isinstance(body, Response):
            response = Response(body.status, error_body(vendor, body.status, body.body))
        else:
            data: Any = None
            bad_json = False
            if body:
                try:
                    data = json.loads(body)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    bad_json = True
            entry["json"] = redact(data)
            if vendor == CONTROL:
                try:
                    if bad_json:
                        raise SandboxError(400, "body is not valid JSON")
                    response = control(state, method, path, query, data)
                except SandboxError as exc:
                    response = Response(exc.status, {"error": exc.message})
                except TypeError as exc:  # unexpected keyword in a control body
                    response = Response(400, {"error": str(exc)})
                self._send(response)
                return  # control calls are not part of the request log
            response, sleep_after = self._vendor(
                state, method, path, query, body, data, bad_json, vendor, entry
            )
        entry["status"] = response.status
        entry["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        state.log_request(entry)
        if sleep_after:
            time.sleep(sleep_after)
        self._send(response)
        for action in response.after:
            action()

    def _vendor(
        self,
        state: SandboxState,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        data: Any,
        bad_json: bool,
        vendor: str | None,
        entry: dict[str, Any],
    ) -> tuple[Response, float]:
        if vendor is None:
            return Response(404, error_body(None, 404, f"no sandbox route for {path}")), 0.0
        error = check_auth(vendor, self.headers)
        route, params, path_known = match_route(method, path)
        if error is None and route is None:
            status = 405 if path_known else 404
            message = "Method Not Allowed" if path_known else f"Route {method}:{path} not found"
            error = SandboxError(status, message, category="OBJECT_NOT_FOUND" if status == 404 else None)
        if error is None and route is not None:
            error = check_scope(vendor, self.headers, route)
        if error is not None or route is None:
            return self._error(vendor, error or SandboxError(404, "not found")), 0.0
        headers = rate_headers(state, vendor)
        sleep_after = 0.0
        fault = state.take_fault(method, path)
        if fault is not None:
            entry["fault"] = fault["mode"]
            if fault["mode"] == "status":
                response = fault_response(vendor, fault)
                response.headers = {**headers, **response.headers}
                return response, 0.0
            if fault["mode"] == "timeout":
                time.sleep(fault["delay"])
                if not fault.get("apply", True):
                    return self._error(vendor, SandboxError(504, "Gateway Timeout (sandbox fault)")), 0.0
            else:
                sleep_after = fault["delay"]
        if bad_json:
            return self._error(vendor, SandboxError(400, "Invalid input JSON: body is not valid JSON")), 0.0
        request = Request(method, path, query, self.headers, body, vendor, params, data)
        try:
            response = route.handler(state, request)
        except SandboxError as exc:
            response = self._error(vendor, exc)
        response.headers = {**headers, **response.headers}
        return response, sleep_after

    @staticmethod
    def _error(vendor: str | None, exc: SandboxError) -> Response:
        body = exc.body if exc.body is not None else error_body(vendor, exc.status, exc.message, exc.category)
        return Response(exc.status, body, dict(exc.headers))


class SandboxServer:
    """The sandbox as an object: ``with SandboxServer() as sandbox: httpx.get(sandbox.url + ...)``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state: SandboxState | None = None,
        verbose: bool = False,
    ) -> None:
        self.state = state or SandboxState()
        self._httpd = _HTTPServer((host, port), self.state, verbose=verbose)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Blocking variant for ``python -m connectors.sandbox``."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def reset(self) -> None:
        self.state.reset()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
