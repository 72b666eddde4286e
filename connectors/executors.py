"""Executors of approved actions, plugged into the approvals registry.

Each external write goes through the call ledger: recorded by idempotency key before the call,
its outcome after. A repeat with the same key returns the recorded outcome and makes no call; a
call whose outcome was never recorded (the worker died mid-send) is not repeated blindly.
"""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.utils import timezone

from approvals import executors as registry
from approvals.errors import FatalExecutionError, GateClosedError, RetryableExecutionError
from approvals.models import ActionRequest
from connectors.locks import recipient_lock
from connectors.models import CallLedger, CallStatus, System
from tenants.policy.selectors import tenant_kill_switch_on
from tenants.services import global_kill_switch_on

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "mh1.unsubscribe"


def unsubscribe_token(email: str) -> str:
    return signing.dumps(
        {"e": email.lower(), "s": connection.schema_name}, salt=UNSUBSCRIBE_SALT, compress=True
    )


def unsubscribe_url(email: str) -> str:
    tenant = getattr(connection, "tenant", None)
    host = tenant.get_primary_domain().domain if tenant and tenant.get_primary_domain() else "localhost"
    scheme = "http" if settings.DEBUG else "https"
    port = f":{settings.DEMO_PORT}" if settings.DEBUG and getattr(settings, "DEMO_PORT", "") else ""
    return f"{scheme}://{host}{port}/u/{unsubscribe_token(email)}/"


def _begin_call(
    request: ActionRequest, system: str, operation: str, call: dict[str, Any]
) -> CallLedger | dict:
    """Under the request's row lock: re-check the gates, then record the call before making it.

    Returns the ledger row to complete, or the recorded outcome of an earlier identical call.
    """
    from connectors.services import suppression_gate

    with transaction.atomic():
        ActionRequest.objects.select_for_update().filter(pk=request.pk).first()
        if global_kill_switch_on():
            raise GateClosedError("The global kill switch is on.")
        if tenant_kill_switch_on():
            raise GateClosedError("The tenant kill switch is on.")
        reason = suppression_gate(request)
        if reason:
            raise GateClosedError(reason)
        ledger, created = CallLedger.objects.get_or_create(
            idempotency_key=request.idempotency_key,
            defaults={"system": system, "operation": operation, "request": call},
        )
        if created:
            return ledger
        if ledger.status == CallStatus.SUCCEEDED:
            return {**(ledger.response or {}), "repeat": True}
        if ledger.status == CallStatus.FAILED:
            ledger.status, ledger.error = CallStatus.STARTED, ""
            ledger.save(update_fields=["status", "error"])
            return ledger
        # started and never finished: the message may have left. Never send it twice.
        ledger.status = CallStatus.UNKNOWN
        ledger.save(update_fields=["status"])
    # raised after the commit, so the ledger keeps saying "unknown"
    raise FatalExecutionError(
        "An earlier attempt started this call and its outcome is unknown; it is not repeated. "
        "Check the remote system before proposing it again."
    )


def _finish_call(ledger: CallLedger, *, response: dict | None = None, error: str = "") -> None:
    ledger.status = CallStatus.FAILED if error else CallStatus.SUCCEEDED
    ledger.response = response
    ledger.error = error[:5000]
    ledger.finished_at = timezone.now()
    ledger.save(update_fields=["status", "response", "error", "finished_at"])


def email_send(request: ActionRequest, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one email through Django's email backend (SMTP in production), with RFC 8058 headers."""
    to = payload["to"]
    with recipient_lock(to):
        return _send(request, payload, to)


def _send(request: ActionRequest, payload: dict[str, Any], to: str) -> dict[str, Any]:
    started = _begin_call(request, System.SMTP, "send", {"to": to, "subject": payload["subject"]})
    if isinstance(started, dict):
        return started
    link = unsubscribe_url(to)
    message = EmailMultiAlternatives(
        subject=payload["subject"],
        body=f"{payload['body']}\n\n--\nUnsubscribe: {link}",
        from_email=payload.get("from_mailbox") or settings.DEFAULT_FROM_EMAIL,
        to=[f"{payload.get('to_name', '')} <{to}>" if payload.get("to_name") else to],
        headers={
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-MH1-Idempotency-Key": request.idempotency_key,
        },
    )
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        _finish_call(started, error=f"{exc.__class__.__name__}: {exc}")
        raise RetryableExecutionError(f"SMTP: {exc}") from exc
    result = {"executor": "smtp", "to": to, "message_id": message.extra_headers.get("Message-ID", "")}
    _finish_call(started, response=result)
    return result


def register_all() -> None:
    registry.register("email.send", email_send)
