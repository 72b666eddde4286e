"""Fault injection: what a fault spec may say, which request or message it hits, and what the
client sees. HTTP faults answer a status or stall; SMTP faults break a mail transaction at the
step where a real server could (before DATA, after DATA, on QUIT).

Both kinds are kept in :class:`~connectors.sandbox.state.SandboxState` and set through the
control API (``/_sandbox/faults``, ``/_sandbox/smtp/faults``) or the state's methods."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from connectors.sandbox.common import GHL, HUBSPOT, Response, SandboxError, error_body, reason

HTTP_FAULT_MODES = ("status", "timeout", "timeout_after_apply")
# drop_after_data: the message is delivered, the connection closes before the 250
# withhold_reply:  the message is delivered, the 250 never comes (the client times out)
# refuse_before_data: MAIL FROM or RCPT TO is answered with an error (nothing delivered)
# fail_quit: the message is delivered and answered 250, the connection closes on QUIT
SMTP_FAULT_KINDS = ("drop_after_data", "withhold_reply", "refuse_before_data", "fail_quit")
# a withheld reply keeps the connection this long at most, so a client without a time-out
# does not pin a thread forever
SMTP_WITHHOLD_MAX_SECONDS = 600.0


def take(faults: list[dict[str, Any]], matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The first fault that matches, counted down (and forgotten when used up); a copy."""
    for fault in faults:
        if not matches(fault):
            continue
        if fault["times"] is not None:
            fault["times"] -= 1
            if fault["times"] <= 0:
                faults.remove(fault)
        return dict(fault)
    return None


def _times(spec: dict[str, Any]) -> int | None:
    times = spec.get("times", 1)
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise SandboxError(400, "times must be a positive integer or null (every matching request)")
    return times


# --------------------------------------------------------------------------------------------- HTTP


def http_fault_matches(fault: dict[str, Any], method: str, path: str) -> bool:
    return fault["method"] in (None, method) and path.startswith(fault["path_prefix"])


def validate_http_fault(spec: dict[str, Any]) -> dict[str, Any]:
    mode = spec.get("mode") or "status"
    if mode not in HTTP_FAULT_MODES:
        raise SandboxError(400, "mode must be status, timeout or timeout_after_apply")
    method = spec.get("method")
    if method is not None and not isinstance(method, str):
        raise SandboxError(400, "method must be a string or null")
    path_prefix = spec.get("path_prefix") or "/"
    if not isinstance(path_prefix, str) or not path_prefix.startswith("/"):
        raise SandboxError(400, "path_prefix must start with /")
    times = _times(spec)
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


def http_fault_response(vendor: str | None, fault: dict[str, Any]) -> Response:
    status = fault["status"]
    if fault.get("body") is not None:
        body = fault["body"]
    elif vendor == HUBSPOT and status == 429:
        body = error_body(HUBSPOT, 429, "")
    else:
        message = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}.get(
            status, reason(status)
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


# --------------------------------------------------------------------------------------------- SMTP

_SMTP_SPEC_KEYS = frozenset({"kind", "recipient", "times", "stage", "code", "message", "hold_seconds"})


def validate_smtp_fault(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"kind": ..., "times": 1 | null, "recipient": "<glob>"}``, plus for ``refuse_before_data``
    ``"stage": "rcpt" | "mail"``, ``"code"`` and ``"message"``, for ``withhold_reply``
    ``"hold_seconds"``. Unknown keys are refused: a misspelt ``recipient`` would hit every message."""
    unknown = sorted(set(spec) - _SMTP_SPEC_KEYS)
    if unknown:
        raise SandboxError(400, f"unknown SMTP fault keys: {unknown}; known: {sorted(_SMTP_SPEC_KEYS)}")
    kind = spec.get("kind")
    if kind not in SMTP_FAULT_KINDS:
        raise SandboxError(400, f"kind must be one of {list(SMTP_FAULT_KINDS)}")
    recipient = spec.get("recipient") or "*"
    if not isinstance(recipient, str):
        raise SandboxError(400, 'recipient must be a glob such as "bob@*" or "*@acme.example"')
    fault: dict[str, Any] = {
        "kind": kind,
        "recipient": recipient.lower(),
        "times": _times(spec),
        "stage": "data",
    }
    if kind != "refuse_before_data" and any(k in spec for k in ("stage", "code", "message")):
        raise SandboxError(400, "stage, code and message belong to refuse_before_data")
    if kind != "withhold_reply" and "hold_seconds" in spec:
        raise SandboxError(400, "hold_seconds belongs to withhold_reply")
    if kind == "refuse_before_data":
        stage = spec.get("stage") or "rcpt"
        if stage not in ("mail", "rcpt"):
            raise SandboxError(400, 'stage must be "mail" (MAIL FROM) or "rcpt" (RCPT TO)')
        if stage == "mail" and fault["recipient"] != "*":
            raise SandboxError(400, "MAIL FROM comes before the recipients: match a recipient at stage rcpt")
        code = spec.get("code", 451)
        if not isinstance(code, int) or isinstance(code, bool) or not 400 <= code <= 599:
            raise SandboxError(400, "code must be an SMTP error reply (400-599)")
        message = spec.get("message") or (
            "4.3.0 Sandbox fault: try again later" if code < 500 else "5.7.1 Sandbox fault: refused"
        )
        if not isinstance(message, str) or "\r" in message or "\n" in message:
            raise SandboxError(400, "message must be one line of text")
        fault.update(stage=stage, code=code, message=message)
    if kind == "withhold_reply":
        hold = spec.get("hold_seconds", 120.0)
        if (
            not isinstance(hold, int | float)
            or isinstance(hold, bool)
            or not 0 < hold <= SMTP_WITHHOLD_MAX_SECONDS
        ):
            raise SandboxError(400, f"hold_seconds must be above 0 and at most {SMTP_WITHHOLD_MAX_SECONDS:g}")
        fault["hold_seconds"] = float(hold)
    return fault


def smtp_fault_matches(fault: dict[str, Any], stage: str, recipients: list[str]) -> bool:
    """Whether the fault acts at this step (``mail``, ``rcpt`` or ``data``, the end of DATA) for
    these recipients. The after-DATA kinds share one step: one message meets at most one of them."""
    if fault["stage"] != stage:
        return False
    return fault["recipient"] == "*" or any(
        fnmatch.fnmatchcase(r.lower(), fault["recipient"]) for r in recipients
    )
