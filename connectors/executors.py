"""Executors of approved actions, plugged into the approvals registry.

Each external write goes through the call ledger: recorded by idempotency key before the call,
its outcome after. A repeat with the same key returns the recorded outcome and makes no call; a
call whose outcome was never recorded (the worker died mid-send) is not repeated blindly.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction

from approvals import executors as registry
from approvals import gates
from approvals.errors import FatalExecutionError, GateClosedError, OutcomeUnknown, RetryableExecutionError
from approvals.models import ActionRequest, Status
from connectors.ledger import action_key, call_finish, call_mark_unknown
from connectors.locks import recipient_lock
from connectors.mail import SMTPOutcomeUnknown, SMTPRefusedBeforeData, message_send
from connectors.models import CallLedger, CallStatus, System
from connectors.sending import reserve_send
from mh1.addresses import Address, AddressInvalid, email_normalize
from tenants.policy.selectors import sending_mailboxes

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "mh1.unsubscribe"


def unsubscribe_token(email: str) -> str:
    return signing.dumps(
        {"e": email_normalize(email), "s": connection.schema_name}, salt=UNSUBSCRIBE_SALT, compress=True
    )


class UnsubscribeLinkInvalid(ValueError):
    """A link we did not sign (forged, cut short, signed with a retired key) or not for this tenant."""

    code = "unsubscribe_link_invalid"


def unsubscribe_email(token: str) -> str:
    """The address an unsubscribe link of the current tenant was made for.

    Django's signing tries SECRET_KEY, then each of SECRET_KEY_FALLBACKS: links in emails sent
    before a key rotation keep working until the old key is retired from the fallbacks.
    """
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, UnicodeError) as exc:  # zlib/base64/JSON of a bad token
        raise UnsubscribeLinkInvalid("This unsubscribe link is not valid.") from exc
    if not isinstance(data, dict) or data.get("s") != connection.schema_name:
        raise UnsubscribeLinkInvalid("This unsubscribe link is not valid here.")
    try:
        email = email_normalize(data.get("e"))
    except AddressInvalid as exc:
        raise UnsubscribeLinkInvalid("This unsubscribe link is not valid.") from exc
    if len(email) > 254:
        raise UnsubscribeLinkInvalid("This unsubscribe link is not valid.")
    return email


def unsubscribe_url(email: str) -> str:
    from connectors.selectors import tenant_url

    return tenant_url(f"/u/{unsubscribe_token(email)}/")


def _begin_call(
    request: ActionRequest,
    system: str,
    operation: str,
    call: dict[str, Any],
    *,
    reconcilable: bool = False,
    before_call=None,
) -> CallLedger | dict:
    """Under the request's row lock: look at the ledger, re-check every gate, record the call.

    Returns the ledger row to complete, or the recorded outcome of an earlier identical call.
    Raises GateClosedError (nothing done), or OutcomeUnknown when an earlier attempt may have
    made the call and it cannot be reconciled.
    """
    key = action_key(request.idempotency_key)
    unknown = ""
    with transaction.atomic():
        current = ActionRequest.objects.select_for_update().filter(pk=request.pk).first()
        if current is None or current.status != Status.EXECUTING:
            status = current.status if current is not None else "gone"
            raise GateClosedError(
                f"The request is no longer executing ({status}); nothing done.", status=None
            )
        ledger = CallLedger.objects.select_for_update().filter(idempotency_key=key).first()
        if ledger is not None and ledger.status == CallStatus.SUCCEEDED:
            return {**(ledger.response or {}), "repeat": True}
        maybe_made = ledger is not None and ledger.status in (CallStatus.STARTED, CallStatus.UNKNOWN)
        gate = gates.closed_gate(current)
        if maybe_made and (gate is not None or not reconcilable):
            # started and never finished: it may have reached the vendor. Never make it twice.
            ledger.status = CallStatus.UNKNOWN
            ledger.save(update_fields=["status"])
            unknown = (
                "An earlier attempt started this call and its outcome is unknown; it is not repeated. "
                "Check the remote system, then re-queue or resolve the request."
            )
            if gate is not None:
                unknown += f" (Also, a gate is now closed: {gate.reason})"
        elif gate is not None:
            raise gate.error()
        else:
            if ledger is None:
                ledger = CallLedger.objects.create(
                    idempotency_key=key, system=system, operation=operation, request=call
                )
            else:
                # failed before (certainly not applied), or reconcilable: the executor reads first
                ledger.status, ledger.error = CallStatus.STARTED, ""
                ledger.save(update_fields=["status", "error"])
            ledger.reconcile_first = maybe_made
            if before_call is not None:
                before_call()  # e.g. count the send; raising rolls the ledger row back too
            return ledger
    # raised after the commit, so the ledger keeps saying "unknown"
    raise OutcomeUnknown(unknown)


def email_send(request: ActionRequest, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one email through Django's email backend (SMTP in production), with RFC 8058 headers."""
    to = payload["to"]  # canonical: made so at proposal (mh1.addresses)
    with recipient_lock(to):
        return _send(request, payload, to)


def email_message(request: ActionRequest, payload: dict[str, Any], to: str) -> EmailMultiAlternatives:
    """The whole message, built before anything is recorded: a header that cannot be built fails
    the action with nothing counted. The approval page previews this same message."""
    link = unsubscribe_url(to)
    sender = payload.get("from_mailbox") or sending_mailboxes()[0]
    message = EmailMultiAlternatives(
        subject=payload["subject"],
        body=f"{payload['body']}\n\n--\nUnsubscribe: {link}",
        from_email=sender,
        to=[Address(email=to, name=payload.get("to_name") or "").header()],
        headers={
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-MH1-Idempotency-Key": request.idempotency_key,
        },
    )
    message.message()  # renders every header now (raises here, not after the ledger row)
    return message


def _send(request: ActionRequest, payload: dict[str, Any], to: str) -> dict[str, Any]:
    try:
        message = email_message(request, payload, to)
    except (ValueError, TypeError) as exc:
        raise FatalExecutionError(f"The email cannot be built: {exc}") from exc
    started = _begin_call(
        request,
        System.SMTP,
        "send",
        {"to": to, "subject": payload["subject"]},
        before_call=lambda: reserve_send(to),
    )
    if isinstance(started, dict):
        return started
    try:
        message_send(message)
    except SMTPRefusedBeforeData as exc:
        call_finish(started, error=str(exc))
        if exc.permanent:
            raise FatalExecutionError(f"SMTP refused the message: {exc}") from exc
        raise RetryableExecutionError(f"SMTP: {exc}") from exc
    except SMTPOutcomeUnknown as exc:
        call_mark_unknown(started, str(exc))
        raise OutcomeUnknown(f"SMTP: {exc}") from exc
    result = {"executor": "smtp", "to": to, "message_id": message.extra_headers.get("Message-ID", "")}
    call_finish(started, response=result)
    return result


# --- CRM and campaign writes ------------------------------------------------------------------


def _write_client(system: str):
    """The tenant's write client; missing or unusable credentials fail the action with the reason."""
    from connectors import clients
    from connectors.errors import ConnectorError

    try:
        return clients.write_client(system)
    except ConnectorError as exc:
        raise exc.as_execution_error() from exc


def _vendor_call(
    request: ActionRequest,
    system: str,
    operation: str,
    call: dict[str, Any],
    run,
    reconcile=None,
    before_call=None,
):
    """Ledger, then the call; an unknown outcome is reconciled by reading the remote state."""
    from connectors.errors import ConnectorError, OutcomeUnknownError

    started = _begin_call(
        request, system, operation, call, reconcilable=reconcile is not None, before_call=before_call
    )
    if isinstance(started, dict):
        return started
    try:
        try:
            # an earlier attempt may have landed: read the remote state before writing again
            result = reconcile() if getattr(started, "reconcile_first", False) else run()
        except OutcomeUnknownError as exc:
            if reconcile is None:
                call_mark_unknown(started, str(exc))
                raise OutcomeUnknown(str(exc)) from exc
            result = reconcile()
    except OutcomeUnknownError as exc:
        # the reconciling read failed too: still unknown, reconciled on the next attempt
        call_mark_unknown(started, str(exc))
        raise RetryableExecutionError(f"{exc} (the reconciling read failed; retried)") from exc
    except ConnectorError as exc:
        call_finish(started, error=str(exc))
        raise exc.as_execution_error() from exc
    call_finish(started, response=result)
    return result


def crm_upsert_contact(request: ActionRequest, payload: dict[str, Any]) -> dict[str, Any]:

    system, email, properties = payload["system"], payload["email"], payload["properties"]
    writer = _write_client(system)

    def run():
        if system == System.HUBSPOT:
            return writer.upsert_contact_by_email(email, properties)
        return writer.upsert_contact(email, properties)

    def reconcile():
        # The write may have landed: read first, and write again only if it did not.
        if system == System.HUBSPOT:
            found = writer.get_contact_by_email(email)
            current = (found or {}).get("properties", {})
        else:
            found = writer.search_contact_by_email(email)
            current = found or {}
        if found and all(str(current.get(k)) == str(v) for k, v in properties.items()):
            return {"id": found.get("id"), "created": None, "reconciled": True}
        return {**run(), "reconciled": True}

    with writer:
        return _vendor_call(request, system, "upsert_contact", {"email": email}, run, reconcile)


def crm_add_tag(request: ActionRequest, payload: dict[str, Any]) -> dict[str, Any]:

    system, email, tag = payload["system"], payload["email"], payload["tag"]
    writer = _write_client(system)

    def run():
        if system == System.HUBSPOT:
            contact = writer.upsert_contact_by_email(email, {"mh1_tags": tag})
            return {"id": contact["id"], "tags": [tag]}
        contact = writer.upsert_contact(email, {})
        return {"id": contact["id"], "tags": writer.add_tags(contact["id"], [tag])}

    with writer:
        # adding a tag twice leaves one tag: reconciling means doing it again
        return _vendor_call(request, system, "add_tag", {"email": email, "tag": tag}, run, reconcile=run)


def campaign_pause(request: ActionRequest, payload: dict[str, Any]) -> dict[str, Any]:

    writer = _write_client(System.INSTANTLY)
    campaign_id = payload["campaign_id"]

    def run():
        writer.pause_campaign(campaign_id)
        return {"campaign_id": campaign_id, "status": "paused"}

    with writer:
        # pausing a paused campaign changes nothing: safe to repeat
        return _vendor_call(
            request, System.INSTANTLY, "pause_campaign", {"campaign_id": campaign_id}, run, run
        )


def enrichment_lookup(request: ActionRequest, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one row to the tenant's Clay table; the results come back later to our results endpoint.

    The row carries ``mh1_ref`` (our Enrichment's ref), which Clay's HTTP API column sends back.
    Each submission is counted against the webhook source's lifetime limit and charged to the
    tenant's budget (``CLAY_USD_PER_ROW``) inside the ledger's transaction. Clay has no API to read
    a row back, so an unknown outcome is never resubmitted (a second row would be enriched, and
    paid for, twice).
    """
    from campaigns.models import Lead
    from connectors.clay import clay_source_reserve
    from connectors.models import Enrichment
    from tenants.budget import budget_charge

    email = payload["email"]  # canonical since the proposal
    writer = _write_client(System.CLAY)
    webhook_url = writer.config.extra.get("webhook_url", "")
    if not webhook_url:
        raise FatalExecutionError(
            "The Clay credentials have no webhook_url: add the table's webhook source URL under Connectors."
        )
    lead = Lead.objects.filter(email=email).first()
    row: dict[str, Any] = {"email": email}
    for key in ("first_name", "last_name", "company", "linkedin_url"):
        value = payload.get(key) or (getattr(lead, key, "") if lead else "")
        if value:
            row[key] = value
    if lead and lead.company_domain:
        row["company_domain"] = lead.company_domain
    if payload.get("fields"):
        row["requested_fields"] = payload["fields"]
    usage: dict[str, int] = {}

    def reserve() -> None:
        # inside the ledger's transaction: a closed gate or a full source leaves no trace
        usage["submissions"] = clay_source_reserve(webhook_url)
        Enrichment.objects.get_or_create(
            request=request,
            defaults={"ref": uuid.uuid4(), "email": email, "requested_fields": payload.get("fields") or []},
        )
        # the row is paid for once submitted: charged here, with the ledger row, once per request
        budget_charge(
            usd=settings.CLAY_USD_PER_ROW,
            skill=request.skill_run.skill if request.skill_run_id else "",
            source="clay",
            key=f"clay:{action_key(request.idempotency_key)}",
        )

    def run():
        ref = str(Enrichment.objects.values_list("ref", flat=True).get(request=request))
        writer.submit_row(webhook_url, {"mh1_ref": ref, **row}, auth_token=writer.config.token or None)
        result = {"executor": "clay", "mh1_ref": ref, "email": email, "status": "submitted"}
        if usage:
            result["source_submissions"] = usage["submissions"]
        return result

    with writer:
        return _vendor_call(
            request,
            System.CLAY,
            "submit_row",
            {"email": email},
            run,
            before_call=reserve,
        )


def register_all() -> None:
    registry.register("email.send", email_send)
    registry.register("crm.upsert_contact", crm_upsert_contact)
    registry.register("crm.add_tag", crm_add_tag)
    registry.register("campaign.pause", campaign_pause)
    registry.register("enrichment.lookup", enrichment_lookup)
