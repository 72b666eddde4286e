"""Errors of the vendor clients, classified so a caller knows whether a retry can help.

``kind`` is the whole contract: ``retryable`` (429, 5xx, time-outs, connection failures, our own
circuit breaker and rate limiter), ``validation`` (the vendor refused what we sent: 400, 422) and
``fatal`` (credentials, permissions, missing objects, conflicts a client does not resolve itself).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from mh1.errors import DomainError

RETRYABLE = "retryable"
FATAL = "fatal"
VALIDATION = "validation"

# The longest vendor message we keep: enough to act on. Only the message field of a JSON error is
# kept; a body in any other shape (an HTML page, whatever a wrong host answers) is never echoed.
MAX_VENDOR_MESSAGE = 500


class ConnectorError(DomainError):
    """A vendor call failed; ``str()`` reads as a sentence an operator can act on.

    ``status_code`` is the vendor's HTTP answer (None when there was none); what our API answers
    when one reaches it is ``http_status``: 502, the upstream failed.
    """

    kind = FATAL
    code = "vendor_error"

    def __init__(
        self,
        system: str,
        vendor_message: str = "",
        *,
        status_code: int | None = None,
        vendor_code: str = "",
        retry_after: float | None = None,
    ):
        self.system = system
        self.vendor_message = vendor_message
        self.status_code = status_code
        # HubSpot's category, Instantly's ``error``: the machine-readable half of the message.
        self.vendor_code = vendor_code
        # Seconds the vendor (Retry-After) or our own limiter asks us to wait, when known.
        self.retry_after = retry_after
        super().__init__(self.message)

    @property
    def message(self) -> str:
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no response"
        text = self.vendor_message or "no message from the vendor"
        code = f" [{self.vendor_code}]" if self.vendor_code else ""
        return f"{self.system} {self.kind} error ({status}){code}: {text}"

    def __str__(self) -> str:
        return self.message

    @property
    def http_status(self) -> int:
        return 502

    def as_execution_error(self) -> Exception:
        """The approvals error an executor raises: retryable stays retryable, the rest fails for good."""
        from approvals.errors import FatalExecutionError, RetryableExecutionError

        if self.kind == RETRYABLE:
            return RetryableExecutionError(self.message)
        return FatalExecutionError(self.message)


class RetryableError(ConnectorError):
    kind = RETRYABLE
    code = "vendor_retryable"


class FatalError(ConnectorError):
    kind = FATAL
    code = "vendor_fatal"


class VendorValidationError(ConnectorError):
    kind = VALIDATION
    code = "vendor_validation"


class OutcomeUnknownError(ConnectorError):
    """A write that may have reached the vendor timed out: never repeat it blindly; reconcile by
    reading the remote state (e.g. look the contact up by email), then decide."""

    kind = "unknown"
    code = "outcome_unknown"


class CircuitOpenError(RetryableError):
    """Our circuit breaker for this tenant and vendor is open: nothing was sent."""

    code = "vendor_circuit_open"


class RateLimitedLocally(RetryableError):
    """Our own shared rate limit for this tenant and vendor is spent: nothing was sent."""

    code = "vendor_rate_limited_locally"

    def __init__(self, system: str, retry_after: float, vendor_message: str = ""):
        super().__init__(
            system,
            vendor_message or f"local rate limit reached, retry in {retry_after:.1f}s",
            retry_after=retry_after,
        )


def kind_for_status(status_code: int) -> str:
    if status_code in (408, 429) or status_code >= 500:
        return RETRYABLE
    if status_code in (400, 413, 422):
        return VALIDATION
    return FATAL


_ERROR_CLASSES: dict[str, type[ConnectorError]] = {
    RETRYABLE: RetryableError,
    FATAL: FatalError,
    VALIDATION: VendorValidationError,
}


def _text(value: Any) -> str:
    # NestJS-style validation errors (GoHighLevel) send ``message`` as a list of strings.
    if isinstance(value, list):
        return "; ".join(str(item) for item in value if item)
    if value is None:
        return ""
    return str(value)


def parse_vendor_message(system: str, response: httpx.Response) -> tuple[str, str]:
    """Return ``(message, vendor_code)`` from an error response, per each vendor's error shape.

    Instantly: ``{statusCode, error, message}``; HubSpot: ``{status, message, category, errorType}``;
    GoHighLevel: ``{message}`` or ``{msg}``. Anything else falls back to the HTTP reason phrase: a body
    we cannot parse is not shown, so an answer from the wrong host cannot be read through our errors.
    """
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        if system == "hubspot":
            message = _text(body.get("message"))
            code = _text(body.get("errorType") or body.get("category"))
            if body.get("policyName"):
                message = f"{message} (policy {body['policyName']})"
        elif system == "instantly":
            message = _text(body.get("message") or body.get("error"))
            code = _text(body.get("error")) if body.get("message") else ""
        else:
            message = _text(body.get("message") or body.get("msg") or body.get("error"))
            code = _text(body.get("error")) if body.get("message") or body.get("msg") else ""
        if message:
            return message[:MAX_VENDOR_MESSAGE], code[:100]
    return response.reason_phrase or f"HTTP {response.status_code}", ""


def error_from_response(
    system: str, response: httpx.Response, *, retry_after: float | None = None
) -> ConnectorError:
    message, vendor_code = parse_vendor_message(system, response)
    error_class = _ERROR_CLASSES[kind_for_status(response.status_code)]
    return error_class(
        system,
        message,
        status_code=response.status_code,
        vendor_code=vendor_code,
        retry_after=retry_after,
    )
