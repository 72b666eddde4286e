"""Suppression list and inbound events: one source of truth per tenant, effective at once."""

from __future__ import annotations

import logging
from typing import Any

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
from mh1.addresses import domain_normalize, email_normalize
from mh1.errors import DomainError
from mh1.parsers import json_storable

logger = logging.getLogger(__name__)


def _contact_kinds(reason: str) -> list[str]:
    """The kinds a suppression stops: contact (email, enrichment); an erasure stops every kind
    that touches the person (CRM writes and tags too)."""
    if reason == SuppressionReason.GDPR_ERASURE:
        return [kind.name for kind in registry.all_kinds() if kind.touches_person]
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
    if bool((email or "").strip()) == bool((domain or "").strip()):
        raise ValueError("Give an email or a domain, not both.")
    # one normaliser (mh1.addresses): the entry is stored as every later check compares it
    email = email_normalize(email) if (email or "").strip() else ""
    domain = domain_normalize(domain) if (domain or "").strip() else ""
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


LIFT_PERMISSION = "connectors.delete_suppression"


class SuppressionLiftRefused(DomainError, ValueError):
    """The entry cannot be lifted (no permission, no reason, an erasure); the message says why."""

    code = "suppression_lift_refused"


def suppression_lift(*, entry_id: int, acting_user: User, reason: str) -> Suppression:
    """Lift a wrong suppression (a tenant admin, with a reason; audited). An erasure is a
    person's legal request and is never lifted here. The push records for the address are
    forgotten, so a later suppression of it is pushed again."""
    from auditlog.models import LogEntry

    from connectors.ledger import push_absent_key, push_key
    from connectors.models import CallLedger, System

    if not acting_user.has_perm(LIFT_PERMISSION):
        raise SuppressionLiftRefused("Only a tenant admin can lift a suppression.")
    reason = (reason or "").strip()
    if not reason:
        raise SuppressionLiftRefused("Say why the suppression is wrong.")
    with transaction.atomic(), set_actor(acting_user):
        entry = Suppression.objects.select_for_update().filter(pk=entry_id).first()
        if entry is None:
            raise SuppressionLiftRefused(f"Suppression #{entry_id} does not exist (already lifted?).")
        if entry.reason == SuppressionReason.GDPR_ERASURE:
            raise SuppressionLiftRefused(f"{entry} was erased at the person's request: it cannot be lifted.")
        value = entry.email or entry.domain
        recipient_lock_in_transaction(value)
        LogEntry.objects.log_create(
            entry,
            action=LogEntry.Action.DELETE,
            changes={"lifted": [str(entry), None], "reason": [entry.reason, reason[:500]]},
            force_log=True,
        )
        keys = [
            key
            for system in System.values
            for key in (push_key(system, value), push_absent_key(system, value))
        ]
        CallLedger.objects.filter(idempotency_key__in=keys).delete()
        entry.delete()
    logger.info("suppression of %s lifted by %s: %s", value, acting_user, reason)
    return entry


def _push_after_commit(entry: Suppression) -> None:
    from connectors.tasks import push_suppression_enqueue

    schema_name, entry_id = connection.schema_name, entry.pk
    # robust: a broker outage must neither fail the committed request nor drop later hooks (pitfall
    # 15); what is not enqueued is pushed by the push_pending_suppressions sweep
    transaction.on_commit(lambda: push_suppression_enqueue(schema_name, entry_id), robust=True)


def _cancel_open_sends(entry: Suppression, acting_user: User | None) -> int:
    # targets are canonical (made so at proposal): exact comparisons, served by the index
    targets = Q(target=entry.email) if entry.email else Q(target__endswith=f"@{entry.domain}")
    open_ids = ActionRequest.objects.filter(
        targets, kind__in=_contact_kinds(entry.reason), status__in=(Status.PENDING, Status.APPROVED)
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


def webhook_event_record(
    *, system: str, event_id: str, event_type: str, email: str, payload: Any, outcome: str = ""
) -> tuple[WebhookEvent, bool]:
    """Store an event once by (system, event id); a replay returns the stored one.

    ``email`` is canonical already (``mh1.addresses.email_normalize`` at the boundary) or empty.
    """
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                system=system,
                event_id=event_id[:200],
                event_type=event_type[:64],
                email=email,
                payload=json_storable(payload),
                outcome=outcome[:200],
            )
        return event, True
    except IntegrityError:
        return WebhookEvent.objects.get(system=system, event_id=event_id[:200]), False


def webhook_event_ingest(
    *,
    system: str,
    event_id: str,
    event_type: str,
    email: str,
    payload: Any,
    apply=None,
    pending: str = "",
) -> tuple[WebhookEvent, bool, str]:
    """Store an event once and act on it in one transaction; returns (event, created, outcome).

    An effect that fails rolls the event back with it, so the sender's retry applies it (a stored
    event whose effect never happened would be answered "duplicate" for ever). ``apply`` defaults
    to ``webhook_event_apply``. With ``pending`` (why it must wait), the event is stored pending
    and not applied: ``webhook_event_resolve`` applies it once what it lacks can be read.
    """
    with transaction.atomic():
        event, created = webhook_event_record(
            system=system,
            event_id=event_id,
            event_type=event_type,
            email=email,
            payload=payload,
            outcome=f"pending: {pending}" if pending else "",
        )
        if not created:
            return event, False, event.outcome
        if pending:
            WebhookEvent.objects.filter(pk=event.pk).update(pending=True)
            event.pending = True
            return event, True, event.outcome
        return event, True, (apply or webhook_event_apply)(event)


def webhook_event_reject(
    *, system: str, event_id: str, payload: Any, reason: str
) -> tuple[WebhookEvent, bool]:
    """Record an event that can never be applied, with why (answered 2xx: the vendor would
    retry a refusal for ever); a replay returns the recorded one."""
    return webhook_event_record(
        system=system,
        event_id=event_id,
        event_type="rejected",
        email="",
        payload=payload,
        outcome=f"rejected: {reason}",
    )


# Inbound event types that stop outreach to the address at once. A CRM's do-not-contact is read
# by connectors.dnc from the event itself, whatever its type.
SUPPRESSING_EVENTS = {
    "lead_unsubscribed": SuppressionReason.UNSUBSCRIBED,
    "email_bounced": SuppressionReason.BOUNCED,
    "spam_complaint": SuppressionReason.COMPLAINED,
    "one_click_unsubscribe": SuppressionReason.UNSUBSCRIBED,
}


# Replies: classified at once (an unsubscribe is suppressed in the event's transaction, like the
# events above), then handed to the reply-handler skill, which proposes the next action.
REPLY_EVENTS = {"reply_received", "auto_reply_received"}
# Events the accept path applies through the services rather than only storing.
APPLIED_EVENTS = set(SUPPRESSING_EVENTS) | REPLY_EVENTS


# CRM events that carry a whole contact: read into the canonical lead through the field map
# (which suppresses it too when the CRM says do-not-contact).
CRM_CONTACT_EVENTS = {("gohighlevel", "ContactCreate"), ("gohighlevel", "ContactUpdate")}


def webhook_event_suppression(event: WebhookEvent) -> tuple[str, str] | None:
    """(reason, note) of the suppression this event asks for, or None."""
    from connectors.dnc import do_not_contact

    reason = SUPPRESSING_EVENTS.get(event.event_type)
    if reason:
        return reason, ""
    why = do_not_contact(event.system, event.payload)
    return (SuppressionReason.DNC, why) if why else None


def webhook_event_apply(event: WebhookEvent) -> str:
    """Act on a newly stored event; returns what was done (stored on the event)."""
    suppression = webhook_event_suppression(event)
    if (event.system, event.event_type) in CRM_CONTACT_EVENTS and isinstance(event.payload, dict):
        from connectors.pull import crm_record_read

        outcome = crm_record_read(event.system, event.payload)
    elif event.event_type in REPLY_EVENTS and event.system == "instantly":
        outcome = reply_event_apply(event)
    elif suppression and event.email:
        reason, note = suppression
        _, cancelled = suppression_add(email=event.email, reason=reason, source=event.system, note=note)
        outcome = f"suppressed {event.email}; cancelled {cancelled} open send(s)"
    elif suppression:
        outcome = "not applied: no valid email in the event"
    else:
        outcome = "stored"
    WebhookEvent.objects.filter(pk=event.pk).update(outcome=outcome[:200], pending=False)
    return outcome


def reply_event_apply(event: WebhookEvent) -> str:
    """A reply: an unsubscribe is suppressed now (the open sends cancelled), then a reply-handler
    run is started for it (enqueued after commit; a refusal, e.g. an exhausted budget, is recorded
    on the run and never fails the webhook)."""
    from skills.builtin.reply_handler import reply_classify_event, reply_fields
    from skills.builtin.reply_rules import Category

    if not event.email:
        return "stored: the reply names no valid sender"
    fields = reply_fields(event)
    if not fields["text"].strip() and not fields["auto_reply"]:
        return "stored: the reply has no text"
    found = reply_classify_event(event)
    outcome = f"reply: {found.category}"
    if found.category == Category.UNSUBSCRIBE:
        _, cancelled = suppression_add(
            email=event.email,
            reason=SuppressionReason.UNSUBSCRIBED,
            source=event.system,
            note=f"asked in a reply ({'; '.join(found.reasons)})"[:200],
        )
        outcome = f"reply: unsubscribe; suppressed {event.email}; cancelled {cancelled} open send(s)"
    return f"{outcome}; {_reply_run_start(event)}"


def _reply_run_start(event: WebhookEvent) -> str:
    from skills.errors import SkillError
    from skills.models import Trigger
    from skills.services.runner import skill_run_start

    try:
        with transaction.atomic():
            run = skill_run_start(
                skill="reply-handler",
                inputs={"event_id": event.pk},
                trigger=Trigger.WEBHOOK,
                idempotency_key=f"reply:{event.system}:{event.pk}",
            )
    except SkillError as exc:
        logger.warning("reply-handler not started for event %s: %s", event.pk, exc)
        return f"reply-handler not started: {exc}"
    # not the run's id: the run names the event in its inputs (and ids differ between schemas)
    if run.status == "refused":
        return f"reply-handler refused: {run.refusal_reason}"
    return "reply-handler started"


def webhook_event_needs_contact(system: str, email: str, payload: Any) -> bool:
    """Whether the event asks for a suppression but names the contact by id only (HubSpot)."""
    from connectors.dnc import do_not_contact

    return system == "hubspot" and not email and bool(do_not_contact(system, payload))


def webhook_event_resolve(*, event_pk: int) -> str:
    """Apply a pending event once what it lacked is read (a HubSpot contact's email).

    Raises the client's ConnectorError while it still cannot be read (the event stays pending,
    with the error in its outcome). The read runs outside any transaction; the row is locked and
    checked again before the effect, so a second run (task and sweep together) does nothing.
    """
    from connectors.errors import ConnectorError

    event = WebhookEvent.objects.filter(pk=event_pk, pending=True).first()
    if event is None:
        return "not pending"
    email, final = event.email, ""
    try:
        if event.system == "hubspot" and not email:  # the only kind of pending event so far
            email = hubspot_contact_email(str((event.payload or {}).get("objectId", "")))
    except ConnectorError as exc:
        outcome = f"pending: contact not read ({exc})"
        WebhookEvent.objects.filter(pk=event_pk, pending=True).update(outcome=outcome[:200])
        raise
    except ValueError as exc:  # no such contact, or no usable email: never applicable
        final = f"not applied: {exc}"
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_pk, pending=True).first()
        if event is None:
            return "not pending"
        if final:
            WebhookEvent.objects.filter(pk=event_pk).update(outcome=final[:200], pending=False)
            return final
        event.email = email
        event.save(update_fields=["email"])
        return webhook_event_apply(event)


def webhook_event_defer(event: WebhookEvent) -> None:
    """Resolve a pending event later: a retrying task, enqueued after commit without ever
    failing or holding up the webhook's answer (the sweep resolves what was never enqueued)."""
    from mh1.tenancy import enqueue_quietly

    schema_name, event_pk = connection.schema_name, event.pk

    def enqueue() -> None:
        from connectors.tasks import resolve_webhook_event_task

        enqueue_quietly(
            resolve_webhook_event_task, (schema_name, event_pk), what=f"pending webhook event {event_pk}"
        )

    transaction.on_commit(enqueue, robust=True)


# Pending events resolved per sweep run: one contact read each (~50 ms at HubSpot), so a run
# stays within a few seconds and within HubSpot's 100 calls / 10 s.
PENDING_SWEEP_BATCH = 50


def webhook_events_pending_sweep(*, limit: int = PENDING_SWEEP_BATCH) -> dict[str, int]:
    """Resolve the oldest pending events (those whose task was lost or gave up); each on its own,
    so one that fails does not stop the others."""
    from connectors.errors import ConnectorError

    resolved = still_pending = 0
    pending = WebhookEvent.objects.filter(pending=True).order_by("received_at")
    for event_pk in pending.values_list("pk", flat=True)[:limit]:
        try:
            outcome = webhook_event_resolve(event_pk=event_pk)
        except ConnectorError as exc:
            logger.warning("Webhook event %s still pending: %s", event_pk, exc)
            still_pending += 1
            continue
        except Exception:
            logger.exception("Webhook event %s could not be resolved", event_pk)
            still_pending += 1
            continue
        resolved += outcome != "not pending"
    return {"resolved": resolved, "still_pending": still_pending}


def hubspot_contact_email(object_id: str) -> str:
    """HubSpot's events name the contact by id only: read its canonical email.

    Raises the client's ConnectorError when HubSpot cannot be read now (retry later), and
    ValueError (``AddressInvalid`` included) when the contact does not exist or has no usable email.
    """
    from connectors import clients

    if not object_id:
        raise ValueError("the event names no HubSpot contact (objectId)")
    with clients.read_client("hubspot") as reader:
        contact = reader.get_contact(object_id)
    if contact is None:
        raise ValueError(f"HubSpot contact {object_id} not found")
    raw = ((contact or {}).get("properties") or {}).get("email")
    if not raw:
        raise ValueError(f"HubSpot contact {object_id} has no email")
    return email_normalize(raw)
