"""The control API under ``/_sandbox/`` (no auth): inspect and reset the state, set HTTP and SMTP
faults, change settings, emit Instantly events. Control calls are not part of the request log."""

from __future__ import annotations

import copy
from typing import Any

from connectors.sandbox.common import Response, SandboxError
from connectors.sandbox.faults import SMTP_FAULT_KINDS
from connectors.sandbox.routing import ROUTES
from connectors.sandbox.state import DEFAULT_CONFIG, SandboxState

CONTROL_HELP = {
    "GET /_sandbox/state": "counts, request log (method/path/query/status/json), deliveries, faults, config; "
    "?data=1 adds every record",
    "POST /_sandbox/reset": "forget everything (seed data is recreated)",
    "POST /_sandbox/faults": '{"method": "PATCH"|null, "path_prefix": "/crm/v3/...", "status": 429, '
    '"times": 2, "retry_after": 1, "body": {...}} or '
    '{"mode": "timeout"|"timeout_after_apply", "delay": 2.0, ...}',
    "GET /_sandbox/faults": "pending faults",
    "DELETE /_sandbox/faults": "clear faults",
    "POST /_sandbox/smtp/faults": f'{{"kind": {"|".join(SMTP_FAULT_KINDS)}, "times": 1|null, '
    '"recipient": "bob@*"}; refuse_before_data also takes "stage": "rcpt"|"mail", "code": 451|550, '
    '"message"; withhold_reply "hold_seconds": 120',
    "GET /_sandbox/smtp/faults": "pending SMTP faults",
    "DELETE /_sandbox/smtp/faults": "clear SMTP faults",
    "GET /_sandbox/smtp/messages": "every mail transaction, delivered or not (?delivered=1|0 to filter)",
    "GET|POST /_sandbox/config": f"read / merge settings {sorted(DEFAULT_CONFIG)}",
    "POST /_sandbox/emit": '{"event_type": "email_bounced", "lead_email": "...", "campaign_id": ...} -> '
    "Instantly-style webhook to every matching registration",
}


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
    if path == "/_sandbox/smtp/faults":
        if method == "POST":
            return Response(201, {"fault": state.add_smtp_fault(**body)})
        if method == "GET":
            with state.lock:
                return Response(200, {"faults": copy.deepcopy(state.smtp_faults)})
        if method == "DELETE":
            state.clear_smtp_faults()
            return Response(200, {"faults": []})
    if path == "/_sandbox/smtp/messages" and method == "GET":
        delivered = query.get("delivered")
        wanted = None if delivered in (None, "") else delivered in ("1", "true")
        return Response(200, {"messages": state.smtp_messages(delivered=wanted)})
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
