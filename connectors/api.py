"""Inbound webhooks and the one-click unsubscribe link.

Instantly does not sign webhooks: each tenant registers a secret header with its subscription
and we compare it in constant time. Events are stored once (replays acknowledged and ignored);
unsubscribes, bounces and complaints suppress the address at once.

Vendors retry what we refuse, and disable a webhook that keeps failing: every well-formed event
is answered 2xx and stored, including the ones we do not act on (Instantly's lead labels, types
added later); 4xx only for what can never be accepted (no proof of origin, not JSON, no event
type); never 5xx for bad input. Emails are made canonical with ``mh1.addresses``; an invalid one
is stored as none. A CRM's do-not-contact is read by ``connectors.dnc``, for every event type.

Bodies are read by ``mh1.parsers`` (NaN, Infinity, out-of-range numbers and deep nesting are not
JSON we can store; NUL and lone surrogates are replaced). A body whose origin is proven but that can
never be stored is answered 4xx, so the vendor stops retrying it, and kept as a dead letter
(``WebhookDeadLetter``, in the admin) with why: nothing a vendor sent us is lost silently.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime
from typing import NamedTuple

from django.db import DatabaseError, DataError, transaction
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from connectors.executors import UnsubscribeLinkInvalid, unsubscribe_email
from connectors.models import SuppressionReason, System, WebhookDeadLetter, WebhookEndpoint
from connectors.services import (
    suppression_add,
    webhook_event_defer,
    webhook_event_ingest,
    webhook_event_needs_contact,
    webhook_event_reject,
    webhook_event_resolve,
)
from mh1.addresses import AddressInvalid, email_normalize
from mh1.parsers import JsonRefused, json_strict_loads

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
SECRET_HEADER = "X-MH1-Webhook-Secret"  # noqa: S105 - a header name, not a secret
# The event types Instantly documents. Not a filter: labels (lead_neutral, lead_wrong_person,
# lead_no_show, each workspace's own) and types added later arrive too and are stored alike.
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
    "lead_neutral",
    "lead_wrong_person",
    "lead_no_show",
    "campaign_completed",
    "account_error",
}
NOT_JSON = "Body is not valid JSON."
BAD_CONTENT_LENGTH = "Content-Length must be a whole number of bytes."
# What a dead letter keeps of the body: enough to see what the vendor sent and to replay it by hand.
DEAD_LETTER_BODY_BYTES = 64 * 1024
_DIGITS = re.compile(r"[0-9]+")
# Opt-outs whose HubSpot contact is read while the batch is answered; more wait for the task, so
# a batch of opt-outs is still answered within HubSpot's time-out.
HUBSPOT_CONTACT_READS_PER_REQUEST = 10


def email_or_empty(raw: object) -> str:
    """The canonical address in a webhook field, or "" when it holds none (stored as no email)."""
    try:
        return email_normalize(raw)
    except AddressInvalid:
        return ""


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def webhook_json(body: bytes) -> tuple[object | None, str]:
    """A webhook body read strictly and made storable: (value, "") or (None, why it is refused)."""
    try:
        return json_strict_loads(body, storable=True), ""
    except JsonRefused as exc:
        return None, NOT_JSON if exc.code == "json_syntax" else f"{NOT_JSON[:-1]}: {exc.message}"


def content_length(raw: str | None) -> int | None:
    """The declared body size; None when the header is not a whole number (answered 400)."""
    value = (raw or "").strip()
    if not value:
        return 0
    if not _DIGITS.fullmatch(value):
        return None
    return int(value) if len(value) <= 19 else 2**63  # no int() of a thousand digits


def webhook_dead_letter_add(
    *, system: str, body: bytes, reason: str, content_type: str = "", size: int | None = None
) -> None:
    """Keep a body we answered 4xx although its origin was proven (it can never be stored as an
    event), with why. In the current schema; never fails the answer (logged instead)."""
    text = body[:DEAD_LETTER_BODY_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    try:
        with transaction.atomic():
            WebhookDeadLetter.objects.create(
                system=system,
                reason=reason[:500],
                body=text,
                body_bytes=min(len(body) if size is None else size, 2**31 - 1),
                content_type=(content_type or "")[:100],
            )
    except DatabaseError:
        logger.exception("Dead letter for a %s webhook not kept (%s)", system, reason)


def _refuse_body(
    request, system: str, status: int, message: str, body: bytes | None = None, size: int | None = None
) -> JsonResponse:
    """Answer 4xx for a body that can never be stored, keeping it as a dead letter."""
    webhook_dead_letter_add(
        system=system,
        body=request.body if body is None else body,
        reason=message,
        content_type=request.content_type or "",
        size=size,
    )
    return _error(status, message)


def _body_head(request) -> bytes:
    """The start of a body too large to read whole (for its dead letter)."""
    if hasattr(request, "_body"):
        return request.body[:DEAD_LETTER_BODY_BYTES]
    return request.read(DEAD_LETTER_BODY_BYTES)


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
    data, refusal = webhook_json(body)
    if refusal:
        return None, refusal
    if not isinstance(data, dict):
        return None, "Body must be a JSON object."
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type.strip():
        return None, "event_type must be a non-empty string."
    raw_email = data.get("lead_email") or data.get("email") or ""
    email = email_or_empty(raw_email)
    # Instantly sends no idempotency key: the event type with its email id (or lead and time).
    lead = email or raw_email
    ref = data.get("email_id") or f"{lead}|{data.get('timestamp', '')}|{data.get('campaign_id', '')}"
    return InstantlyEvent(event_type, f"{event_type}:{ref}", email, data), ""


@csrf_exempt
@require_http_methods(["POST"])
def instantly_webhook(request):
    """Instantly webhooks; the reference for connectors.ingest, which answers them in production."""
    if not _secret_header_valid(request, System.INSTANTLY):
        return _error(401, f"Missing or wrong {SECRET_HEADER} header.")
    length = content_length(request.headers.get("Content-Length"))
    if length is None:
        return _error(400, BAD_CONTENT_LENGTH)
    if length > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        message = f"Body larger than {MAX_BODY_BYTES} bytes."
        return _refuse_body(request, System.INSTANTLY, 413, message, _body_head(request), length)
    parsed, refusal = instantly_event(request.body)
    if parsed is None:
        return _refuse_body(request, System.INSTANTLY, 400, refusal)
    try:
        event, created, outcome = webhook_event_ingest(
            system=System.INSTANTLY,
            event_id=parsed.event_id,
            event_type=parsed.event_type,
            email=parsed.email,
            payload=parsed.payload,
        )
    except DataError as exc:
        return _refuse_body(request, System.INSTANTLY, 400, unstorable_message(exc))
    if not created:
        return JsonResponse({"status": "duplicate", "id": event.pk})
    return JsonResponse({"status": "stored", "id": event.pk, "outcome": outcome})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def one_click_unsubscribe(request, token: str):
    """RFC 8058: the mailbox provider POSTs List-Unsubscribe=One-Click; people may GET a page."""
    try:
        email = unsubscribe_email(token)
    except UnsubscribeLinkInvalid as exc:
        return render(request, "connectors/unsubscribe.html", {"invalid": str(exc)}, status=400)
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


def unstorable_message(exc: DataError) -> str:
    """Why the database refused a value of the event (too long, out of range), for the sender."""
    reason = (str(exc).strip().splitlines() or ["invalid value"])[0][:200]
    return f"The event holds a value that cannot be stored: {reason}."


def _json_body(request, system: str) -> tuple[object | None, JsonResponse | None]:
    """The body of a webhook whose origin is proven: refused ones are kept as dead letters."""
    length = content_length(request.headers.get("Content-Length"))
    if length is None:
        return None, _error(400, BAD_CONTENT_LENGTH)
    if length > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        message = f"Body larger than {MAX_BODY_BYTES} bytes."
        return None, _refuse_body(request, system, 413, message, _body_head(request), length)
    data, refusal = webhook_json(request.body)
    if refusal:
        return None, _refuse_body(request, system, 400, refusal)
    return data, None


def _hubspot_signed(request, secret: str) -> bool:
    """v3 when the app sends it; v1 (older apps) otherwise, as VENDORS.md describes."""
    from connectors.signatures import hubspot_v1_valid, hubspot_v3_valid

    if request.headers.get("X-HubSpot-Signature-v3"):
        return hubspot_v3_valid(
            secret=secret,
            method=request.method,
            uri=request.build_absolute_uri(),
            body=request.body,
            timestamp=request.headers.get("X-HubSpot-Request-Timestamp", ""),
            signature=request.headers.get("X-HubSpot-Signature-v3", ""),
        )
    version = request.headers.get("X-HubSpot-Signature-Version", "v1").strip().lower()
    return version == "v1" and hubspot_v1_valid(
        secret=secret, body=request.body, signature=request.headers.get("X-HubSpot-Signature", "")
    )


class HubSpotEvent(NamedTuple):
    """One event of a HubSpot batch, as it is stored."""

    event_id: str
    event_type: str
    email: str
    payload: dict


def hubspot_event(item: object) -> tuple[HubSpotEvent | None, str, str]:
    """Read one event of a batch: (the event, its id, "") or (None, the id to record it by, why it
    is rejected). An event without a usable id is recorded by a digest of itself."""
    digest = "rejected:" + hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()[:40]
    if not isinstance(item, dict):
        return None, digest, "an event must be a JSON object."
    event_id = item.get("eventId")
    if isinstance(event_id, bool) or not isinstance(event_id, int | str) or not str(event_id).strip():
        return None, digest, "eventId must be a number or a string."
    event_id = str(event_id).strip()
    if len(event_id) > 200:
        return None, digest, "eventId is longer than 200 characters."
    event_type = item.get("subscriptionType", "unknown")
    if not isinstance(event_type, str) or not event_type.strip():
        return None, event_id, "subscriptionType must be a non-empty string."
    email = ""
    if item.get("email") not in (None, ""):  # HubSpot's CRM events carry none; some app events do
        try:
            email = email_normalize(item["email"])
        except AddressInvalid as exc:
            return None, event_id, f"email: {exc}"
    return HubSpotEvent(event_id, event_type, email, item), event_id, ""


def _hubspot_resolve_or_defer(event, *, now: bool) -> None:
    """Read a pending opt-out's contact now if we may; otherwise, or if HubSpot cannot be read,
    leave it to the retrying task."""
    from connectors.errors import ConnectorError

    if now:
        try:
            webhook_event_resolve(event_pk=event.pk)
            return
        except ConnectorError as exc:
            logger.warning("HubSpot event %s kept pending: %s", event.event_id, exc)
    webhook_event_defer(event)


@csrf_exempt
@require_http_methods(["POST"])
def hubspot_webhook(request):
    """HubSpot CRM webhooks (signature v3, or v1 from older apps; the body is a JSON array).

    Each event is stored, applied or recorded as rejected on its own transaction, so one that is
    malformed neither stops nor undoes the others; the batch is answered 2xx once all are recorded.
    An opt-out names its contact by id only: when the contact cannot be read, the event is kept
    pending and a retrying task applies it (connectors.services.webhook_event_resolve).
    """
    from django.db import DataError

    if content_length(request.headers.get("Content-Length")) is None:  # before the signature reads the body
        return _error(400, BAD_CONTENT_LENGTH)
    endpoint = WebhookEndpoint.objects.filter(system=System.HUBSPOT, is_active=True).first()
    if endpoint is None or not _hubspot_signed(request, str(endpoint.secret)):
        return _error(401, "Missing, wrong or expired X-HubSpot-Signature-v3 (or v1 X-HubSpot-Signature).")
    data, error = _json_body(request, System.HUBSPOT)
    if error:
        return error
    if not isinstance(data, list):
        return _refuse_body(request, System.HUBSPOT, 400, "Body must be a JSON array of events.")
    counts = {"stored": 0, "duplicates": 0, "rejected": 0}
    reads_left = HUBSPOT_CONTACT_READS_PER_REQUEST
    for item in data:
        parsed, event_id, refusal = hubspot_event(item)
        if parsed is not None:
            needs_contact = webhook_event_needs_contact(System.HUBSPOT, parsed.email, parsed.payload)
            try:
                event, created, _ = webhook_event_ingest(
                    system=System.HUBSPOT,
                    event_id=parsed.event_id,
                    event_type=parsed.event_type,
                    email=parsed.email,
                    payload=parsed.payload,
                    pending="contact not read yet" if needs_contact else "",
                )
            except (ValueError, DataError) as exc:  # this event's data, never the next one's
                logger.warning("HubSpot event %s rejected: %s", event_id, exc)
                refusal = f"{exc.__class__.__name__}: {exc}"
            else:
                counts["stored" if created else "duplicates"] += 1
                if created and event.pending:
                    reads_left -= 1
                    _hubspot_resolve_or_defer(event, now=reads_left >= 0)
                continue
        _, created = webhook_event_reject(
            system=System.HUBSPOT, event_id=event_id, payload=item, reason=refusal
        )
        counts["rejected" if created else "duplicates"] += 1
    return JsonResponse({"status": "ok", **counts})


def ghl_sent_at(raw: object) -> datetime:
    """A GoHighLevel payload's ``timestamp``: an ISO 8601 time with its UTC offset (GoHighLevel
    sends ``…Z``). Without an offset the replay window cannot be checked: ValueError, as for
    anything else that is not such a time."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("timestamp is required: an ISO 8601 time with its UTC offset.")
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("timestamp must be an ISO 8601 time.") from None
    if moment.utcoffset() is None:
        raise ValueError(f"timestamp {raw[:40]!r} has no UTC offset (e.g. 2026-01-05T10:00:00Z).")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp must be an ISO 8601 time.") from None


@csrf_exempt
@require_http_methods(["POST"])
def gohighlevel_webhook(request):
    """GoHighLevel webhooks: Ed25519 signature, 5-minute timestamp window, one event per webhookId."""
    from django.conf import settings
    from django.utils import timezone

    from connectors.signatures import MAX_AGE_SECONDS, ghl_ed25519_valid

    if content_length(request.headers.get("Content-Length")) is None:  # before the signature reads the body
        return _error(400, BAD_CONTENT_LENGTH)
    if not settings.GHL_WEBHOOK_PUBLIC_KEY or not ghl_ed25519_valid(
        public_key_pem=settings.GHL_WEBHOOK_PUBLIC_KEY,
        body=request.body,
        signature=request.headers.get("x-ghl-signature", ""),
    ):
        return _error(401, "Missing or wrong x-ghl-signature.")
    data, error = _json_body(request, System.GOHIGHLEVEL)
    if error:
        return error
    if (
        not isinstance(data, dict)
        or isinstance(data.get("webhookId"), bool)
        or not isinstance(data.get("webhookId"), str | int)
        or not str(data.get("webhookId")).strip()
        or not isinstance(data.get("type"), str)
        or not data["type"].strip()
    ):
        message = "Body must be a JSON object with type and webhookId."
        return _refuse_body(request, System.GOHIGHLEVEL, 400, message)
    try:
        sent = ghl_sent_at(data.get("timestamp"))
    except ValueError as exc:
        return _refuse_body(request, System.GOHIGHLEVEL, 400, str(exc))
    if abs((timezone.now() - sent).total_seconds()) > MAX_AGE_SECONDS:
        return _error(401, "timestamp outside the 5-minute window: refused as a replay.")
    # a do-not-contact in any type (ContactDndUpdate, ContactTagUpdate, ContactUpdate, …) is read
    # by connectors.dnc when the event is applied
    try:
        event, created, outcome = webhook_event_ingest(
            system=System.GOHIGHLEVEL,
            event_id=str(data["webhookId"]),
            event_type=data["type"],
            email=email_or_empty(data.get("email")),
            payload=data,
        )
    except DataError as exc:
        return _refuse_body(request, System.GOHIGHLEVEL, 400, unstorable_message(exc))
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
    data, error = _json_body(request, System.CLAY)
    if error:
        return error
    if not isinstance(data, dict):
        return _refuse_body(request, System.CLAY, 400, "Body must be a JSON object: one row's results.")
    try:
        ref = result_ref(data)
    except ValueError as exc:
        return _refuse_body(request, System.CLAY, 400, str(exc))
    try:
        event, created, outcome = webhook_event_ingest(
            system=System.CLAY,
            event_id=f"result:{ref}",
            event_type="enrichment_result",
            email=email_or_empty(data.get("email")),
            payload=data,
            apply=enrichment_result_apply,
        )
    except DataError as exc:
        return _refuse_body(request, System.CLAY, 400, unstorable_message(exc))
    if not created:
        return JsonResponse({"status": "duplicate", "id": event.pk})
    return JsonResponse({"status": "stored", "id": event.pk, "outcome": outcome})
