"""Suppression list and inbound events: one source of truth per tenant, effective at once."""

from __future__ import annotations

import logging

from auditlog.context import set_actor
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from approvals import registry
from approvals.errors import IllegalTransition
from approvals.models import ActionRequest, Status
from approvals.services import action_cancel
from connectors.locks import recipient_lock_in_transaction
from connectors.models import Suppression, SuppressionReason, WebhookEvent
from connectors.selectors import suppression_for

logger = logging.getLogger(__name__)


def _contact_kinds() -> list[str]:
    return [kind.name for kind in registry.all_kinds() if kind.contacts_person]


def suppression_add(
    *,
    reason: str,
    source: str,
    email: str = "",
    domain: str = "",
    note: str = "",
    acting_user: User | None = None,
) -> tuple[Suppression, int]:
    """Suppress an address or a domain at once; cancel the open sends to it.

    Returns the entry and the number of cancelled requests. Adding an existing entry is a no-op
    that still cancels whatever is open. Sends already executing are stopped by the executor,
    which checks the list under the same row lock (see connectors.executors).
    """
    email, domain = email.strip().lower(), domain.strip().lower().removeprefix("@")
    if bool(email) == bool(domain):
        raise ValueError("Give an email or a domain, not both.")
    if reason not in SuppressionReason.values:
        raise ValueError(f"Unknown suppression reason {reason!r}.")
    lookup = {"email": email} if email else {"domain": domain}
    try:
        with transaction.atomic(), set_actor(acting_user):
            # waits for a send to this domain that is under way (see connectors.locks)
            recipient_lock_in_transaction(email or domain)
            entry, created = Suppression.objects.get_or_create(
                **lookup, defaults={"reason": reason, "source": source, "note": note[:500]}
            )
            if created:
                _push_after_commit(entry)
    except IntegrityError:
        entry = Suppression.objects.get(**lookup)
    return entry, _cancel_open_sends(entry, acting_user)


def _push_after_commit(entry: Suppression) -> None:
    from connectors.tasks import push_suppression_enqueue

    schema_name, entry_id = connection.schema_name, entry.pk
    # robust: a broker outage must neither fail the committed request nor drop later hooks (pitfall
    # 15); what is not enqueued is pushed by the push_pending_suppressions sweep
    transaction.on_commit(lambda: push_suppression_enqueue(schema_name, entry_id), robust=True)


def _cancel_open_sends(entry: Suppression, acting_user: User | None) -> int:
    targets = Q(target__iexact=entry.email) if entry.email else Q(target__iendswith=f"@{entry.domain}")
    open_ids = ActionRequest.objects.filter(
        targets, kind__in=_contact_kinds(), status__in=(Status.PENDING, Status.APPROVED)
    ).values_list("pk", flat=True)
    cancelled = 0
    reason = f"Recipient suppressed ({entry.get_reason_display().lower()}, from {entry.source})."
    for request_id in open_ids:
        try:
            action_cancel(request_id=request_id, reason=reason, acting_user=acting_user)
            cancelled += 1
        except IllegalTransition:
            continue  # decided or started meanwhile; the executor's own check covers it
    return cancelled


def suppression_gate(request: ActionRequest) -> str | None:
    """Execution-time gate: a request that would contact a suppressed person does not run."""
    kind = registry.get_kind(request.kind)
    if not kind.contacts_person:
        return None
    entry = suppression_for(request.target)
    if entry is None:
        return None
    return f"Recipient suppressed ({entry.get_reason_display().lower()}, from {entry.source})."


def webhook_event_record(
    *, system: str, event_id: str, event_type: str, email: str, payload: dict
) -> tuple[WebhookEvent, bool]:
    """Store an event once by (system, event id); a replay returns the stored one."""
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                system=system,
                event_id=event_id[:200],
                event_type=event_type[:64],
                email=email.lower(),
                payload=payload,
            )
        return event, True
    except IntegrityError:
        return WebhookEvent.objects.get(system=system, event_id=event_id[:200]), False


def webhook_event_ingest(
    *, system: str, event_id: str, event_type: str, email: str, payload: dict, apply=None
) -> tuple[WebhookEvent, bool, str]:
    """Store an event once and act on it in one transaction; returns (event, created, outcome).

    An effect that fails rolls the event back with it, so the sender's retry applies it (a stored
    event whose effect never happened would be answered "duplicate" for ever). ``apply`` defaults
    to ``webhook_event_apply``.
    """
    with transaction.atomic():
        event, created = webhook_event_record(
            system=system, event_id=event_id, event_type=event_type, email=email, payload=payload
        )
        if not created:
            return event, False, event.outcome
        return event, True, (apply or webhook_event_apply)(event)


# Inbound event types that stop outreach to the address at once.
SUPPRESSING_EVENTS = {
    "lead_unsubscribed": SuppressionReason.UNSUBSCRIBED,
    "email_bounced": SuppressionReason.BOUNCED,
    "spam_complaint": SuppressionReason.COMPLAINED,
    "one_click_unsubscribe": SuppressionReason.UNSUBSCRIBED,
    "dnc": SuppressionReason.DNC,
}


# CRM events that carry a whole contact: read into the canonical lead through the field map.
CRM_CONTACT_EVENTS = {("gohighlevel", "ContactCreate"), ("gohighlevel", "ContactUpdate")}


def webhook_event_apply(event: WebhookEvent) -> str:
    """Act on a newly stored event; returns what was done (stored on the event)."""
    reason = SUPPRESSING_EVENTS.get(event.event_type)
    if reason and event.email:
        _, cancelled = suppression_add(email=event.email, reason=reason, source=event.system)
        outcome = f"suppressed {event.email}; cancelled {cancelled} open send(s)"
    elif (event.system, event.event_type) in CRM_CONTACT_EVENTS and isinstance(event.payload, dict):
        from connectors.pull import crm_record_read

        outcome = crm_record_read(event.system, event.payload)
    else:
        outcome = "stored"
    WebhookEvent.objects.filter(pk=event.pk).update(outcome=outcome[:200])
    return outcome


def hubspot_contact_email(object_id: str) -> str:
    """HubSpot's events name the contact by id only: read its email (empty if it cannot be read)."""
    from connectors import clients
    from connectors.errors import ConnectorError

    if not object_id:
        return ""
    try:
        with clients.read_client("hubspot") as reader:
            contact = reader.get_contact(object_id)
    except ConnectorError as exc:
        logger.warning("HubSpot contact %s could not be read: %s", object_id, exc)
        return ""
    return str(((contact or {}).get("properties") or {}).get("email") or "")
