"""Inbound webhooks and the one-click unsubscribe link.

Instantly does not sign webhooks: each tenant registers a secret header with its subscription
and we compare it in constant time. Events are stored once (replays acknowledged and ignored);
unsubscribes, bounces and complaints suppress the address at once.
"""

from __future__ import annotations

import hmac
import json
import logging

from django.core import signing
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from connectors.executors import UNSUBSCRIBE_SALT
from connectors.models import SuppressionReason, System, WebhookEndpoint
from connectors.services import suppression_add, webhook_event_apply, webhook_event_record

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


@csrf_exempt
@require_http_methods(["POST"])
def instantly_webhook(request):
    endpoint = WebhookEndpoint.objects.filter(system=System.INSTANTLY, is_active=True).first()
    given = request.headers.get(SECRET_HEADER, "")
    if endpoint is None or not hmac.compare_digest(given.encode(), str(endpoint.secret).encode()):
        return _error(401, f"Missing or wrong {SECRET_HEADER} header.")
    if int(request.headers.get("Content-Length") or 0) > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        return _error(413, f"Body larger than {MAX_BODY_BYTES} bytes.")
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "Body is not valid JSON.")
    if not isinstance(data, dict):
        return _error(400, "Body must be a JSON object.")
    event_type = data.get("event_type")
    if event_type not in INSTANTLY_EVENTS:
        return _error(400, f"Unknown event_type {event_type!r}.")
    email = str(data.get("lead_email") or data.get("email") or "")
    # Instantly sends no idempotency key: the event type with its email id (or lead and time).
    ref = data.get("email_id") or f"{email}|{data.get('timestamp', '')}|{data.get('campaign_id', '')}"
    event, created = webhook_event_record(
        system=System.INSTANTLY,
        event_id=f"{event_type}:{ref}",
        event_type=event_type,
        email=email,
        payload=data,
    )
    if not created:
        return JsonResponse({"status": "duplicate", "id": event.pk})
    outcome = webhook_event_apply(event)
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
    event, created = webhook_event_record(
        system=System.MH1,
        event_id=f"one_click_unsubscribe:{email}",
        event_type="one_click_unsubscribe",
        email=email,
        payload={"body": request.POST.dict()},
    )
    if created:
        webhook_event_apply(event)
    else:
        suppression_add(email=email, reason=SuppressionReason.UNSUBSCRIBED, source=System.MH1)
    return render(request, "connectors/unsubscribe.html", {"email": email, "done": True})
