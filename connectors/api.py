"""Inbound webhooks and the one-click unsubscribe link.

Instantly does not sign webhooks: each tenant registers a secret header with its subscription
and we compare it in constant time. Events are stored once (replays acknowledged and ignored);
unsubscribes, bounces and complaints suppress the address at once.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import NamedTuple

from django.core import signing
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from connectors.executors import UNSUBSCRIBE_SALT
from connectors.models import SuppressionReason, System, WebhookEndpoint
from connectors.services import (
    hubspot_contact_email,
    suppression_add,
    webhook_event_ingest,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
SECRET_HEADER = "X-MH1-Webhook-Secret"  # noqa: S105 - a header name, not a secret
INSTANTLY_EVENTS = {
    "email_sent",
    "email_opened",
    "reply_received",
    "auto_reply_received",
    "link_clicked",
    "email_bounced",
    "lead_unsubscribed",
    "lead_interested",
    "lead_not_interested",
    "lead_out_of_office",
    "lead_meeting_booked",
    "lead_meeting_completed",
    "lead_closed",
    "campaign_completed",
    "account_error",
}


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def _secret_header_valid(request, system: str) -> bool:
    """The tenant's active endpoint for ``system`` exists and the secret header matches it
    (constant time): the only proof of origin for vendors that sign nothing."""
    endpoint = WebhookEndpoint.objects.filter(system=system, is_active=True).first()
    given = request.headers.get(SECRET_HEADER, "")
    return endpoint is not None and hmac.compare_digest(given.encode(), str(endpoint.secret).encode())


class InstantlyEvent(NamedTuple):
    """One Instantly event as it is stored (before webhook_event_record's truncation)."""

    event_type: str
    event_id: str
    email: str
    payload: dict


def instantly_event(body: bytes) -> tuple[InstantlyEvent | None, str]:
    """Read an Instantly webhook body: the event, or None and why it is refused (answered 400).

    Shared by the view below and the lean accept path (connectors.ingest), so both derive the
    same event id and give the same messages.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, "Body is not valid JSON."
    if not isinstance(data, dict):
        return None, "Body must be a JSON object."
    event_type = data.get("event_type")
    if event_type not in INSTANTLY_EVENTS:
        return None, f"Unknown event_type {event_type!r}."
    email = str(data.get("lead_email") or data.get("email") or "")
    # Instantly sends no idempotency key: the event type with its email id (or lead and time).
    ref = data.get("email_id") or f"{email}|{data.get('timestamp', '')}|{data.get('campaign_id', '')}"
    return InstantlyEvent(event_type, f"{event_type}:{ref}", email, data), ""


@csrf_exempt
@require_http_methods(["POST"])
def instantly_webhook(request):
    """Instantly webhooks; the reference for connectors.ingest, which answers them in production."""
    if not _secret_header_valid(request, System.INSTANTLY):
        return _error(401, f"Missing or wrong {SECRET_HEADER} header.")
    if int(request.headers.get("Content-Length") or 0) > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        return _error(413, f"Body larger than {MAX_BODY_BYTES} bytes.")
    parsed, refusal = instantly_event(request.body)
    if parsed is None:
        return _error(400, refusal)
    event, created, outcome = webhook_event_ingest(
        system=System.INSTANTLY,
        event_id=parsed.event_id,
        event_type=parsed.event_type,
        email=parsed.email,
        payload=parsed.payload,
    )
    if not created:
        return JsonResponse({"status": "duplicate", "id": event.pk})
    return JsonResponse({"status": "stored", "id": event.pk, "outcome": outcome})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def one_click_unsubscribe(request, token: str):
    """RFC 8058: the mailbox provider POSTs List-Unsubscribe=One-Click; people may GET a page."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return HttpResponse("This unsubscribe link is not valid.", status=400, content_type="text/plain")
    if data.get("s") != connection.schema_name:
        return HttpResponse("This unsubscribe link is not valid here.", status=400, content_type="text/plain")
    email = data["e"]
    if request.method == "GET":
        return render(request, "connectors/unsubscribe.html", {"email": email, "done": False})
    _, created, _ = webhook_event_ingest(
        system=System.MH1,
        event_id=f"one_click_unsubscribe:{email}",
        event_type="one_click_unsubscribe",
        email=email,
        payload={"body": request.POST.dict()},
    )
    if not created:  # clicked again: make sure, it costs nothing
        suppression_add(email=email, reason=SuppressionReason.UNSUBSCRIBED, source=System.MH1)
    return render(request, "connectors/unsubscribe.html", {"email": email, "done": True})


def _json_body(request) -> tuple[object | None, JsonResponse | None]:
    if len(request.body) > MAX_BODY_BYTES:
        return None, _error(413, f"Body larger than {MAX_BODY_BYTES} bytes.")
    try:
        return json.loads(request.body), None
    except (ValueError, UnicodeDecodeError):
        return None, _error(400, "Body is not valid JSON.")


@csrf_exempt
@require_http_methods(["POST"])
def hubspot_webhook(request):
    """HubSpot CRM webhooks (signature v3; the body is a JSON array of events)."""
    from connectors.signatures import hubspot_v3_valid

    endpoint = WebhookEndpoint.objects.filter(system=System.HUBSPOT, is_active=True).first()
    if endpoint is None or not hubspot_v3_valid(
        secret=str(endpoint.secret),
        method=request.method,
        uri=request.build_absolute_uri(),
        body=request.body,
        timestamp=request.headers.get("X-HubSpot-Request-Timestamp", ""),
        signature=request.headers.get("X-HubSpot-Signature-v3", ""),
    ):
        return _error(401, "Missing, wrong or expired X-HubSpot-Signature-v3.")
    data, error = _json_body(request)
    if error:
        return error
    if not isinstance(data, list) or not all(isinstance(e, dict) and "eventId" in e for e in data):
        return _error(400, "Body must be a JSON array of events with an eventId.")
    stored = duplicates = 0
    for item in data:
        opted_out = (
            item.get("propertyName") == "hs_email_optout" and str(item.get("propertyValue")).lower() == "true"
        )
        event_type = "dnc" if opted_out else str(item.get("subscriptionType", "unknown"))
        email = str(item.get("email") or "")
        if opted_out and not email:
            email = hubspot_contact_email(str(item.get("objectId", "")))
        _, created, _ = webhook_event_ingest(
            system=System.HUBSPOT,
            event_id=str(item["eventId"]),
            event_type=event_type,
            email=email,
            payload=item,
        )
        stored, duplicates = stored + created, duplicates + (not created)
    return JsonResponse({"status": "ok", "stored": stored, "duplicates": duplicates})


@csrf_exempt
@require_http_methods(["POST"])
def gohighlevel_webhook(request):
    """GoHighLevel webhooks: Ed25519 signature, 5-minute timestamp window, one event per webhookId."""
    from datetime import datetime

    from django.conf import settings
    from django.utils import timezone

    from connectors.signatures import MAX_AGE_SECONDS, ghl_ed25519_valid

    if not settings.GHL_WEBHOOK_PUBLIC_KEY or not ghl_ed25519_valid(
        public_key_pem=settings.GHL_WEBHOOK_PUBLIC_KEY,
        body=request.body,
        signature=request.headers.get("x-ghl-signature", ""),
    ):
        return _error(401, "Missing or wrong x-ghl-signature.")
    data, error = _json_body(request)
    if error:
        return error
    if not isinstance(data, dict) or not data.get("webhookId") or not data.get("type"):
        return _error(400, "Body must be a JSON object with type and webhookId.")
    try:
        sent = datetime.fromisoformat(str(data.get("timestamp", "")).replace("Z", "+00:00"))
    except ValueError:
        return _error(400, "timestamp must be an ISO 8601 time.")
    if abs((timezone.now() - sent).total_seconds()) > MAX_AGE_SECONDS:
        return _error(401, "timestamp outside the 5-minute window: refused as a replay.")
    dnd = data.get("type") == "ContactDndUpdate" and (
        data.get("dnd") is True or (data.get("dndSettings") or {}).get("Email", {}).get("status") == "active"
    )
    event, created, outcome = webhook_event_ingest(
        system=System.GOHIGHLEVEL,
        event_id=str(data["webhookId"]),
        event_type="dnc" if dnd else str(data["type"]),
        email=str(data.get("email") or ""),
        payload=data,
    )
    if not created:
        return JsonResponse({"status": "duplicate", "id": event.pk})
    return JsonResponse({"status": "stored", "id": event.pk, "outcome": outcome})


@csrf_exempt
@require_http_methods(["POST"])
def clay_results(request):
    """Clay's HTTP API column posts a row's enrichment results here (Clay signs nothing: the
    tenant's secret travels in the column's ``X-MH1-Webhook-Secret`` header). One result per
    ``mh1_ref``; a repeat is acknowledged and ignored."""
    from connectors.clay import enrichment_result_apply, result_ref

    if not _secret_header_valid(request, System.CLAY):
        return _error(401, f"Missing or wrong {SECRET_HEADER} header.")
    data, error = _json_body(request)
    if error:
        return error
    if not isinstance(data, dict):
        return _error(400, "Body must be a JSON object: one row's results.")
    try:
        ref = result_ref(data)
    except ValueError as exc:
        return _error(400, str(exc))
    email = data.get("email") if isinstance(data.get("email"), str) else ""
    event, created, outcome = webhook_event_ingest(
        system=System.CLAY,
        event_id=f"result:{ref}",
        event_type="enrichment_result",
        email=email if "@" in email and len(email) <= 254 else "",
        payload=data,
        apply=enrichment_result_apply,
    )
    if not created:
        return JsonResponse({"status": "duplicate", "id": event.pk})
    return JsonResponse({"status": "stored", "id": event.pk, "outcome": outcome})
