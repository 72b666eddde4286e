"""Suppression sync, both ways.

Push: a new entry goes to Instantly's block list and tags the CRM contact (DNC), each write once
through the call ledger. Pull: Instantly's block list comes back into ours on a schedule; CRM DNC
changes arrive by webhook.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from connectors import clients
from connectors.errors import (
    CircuitOpenError,
    ConnectorError,
    OutcomeUnknownError,
    RateLimitedLocally,
    RetryableError,
)
from connectors.ledger import call_once, call_record_absent, push_key, push_settled
from connectors.models import Credential, Suppression, SuppressionReason, System
from connectors.services import suppression_add

logger = logging.getLogger(__name__)

DNC_TAG = "DNC"
# Block-list entries fetched per page (Instantly's documented maximum is 100).
PULL_PAGE_SIZE = 100
PULL_MAX_PAGES = 50
# Pages read when looking one value up in the block list (a search by value: one page in practice).
RECONCILE_MAX_PAGES = 5
CRM_SYSTEMS = (System.HUBSPOT, System.GOHIGHLEVEL)
PUSH_SYSTEMS = (System.INSTANTLY, *CRM_SYSTEMS)
# A suppression younger than this is left to the push task enqueued at its commit (which retries
# with backoff); the sweep takes only what that task never got to, or gave up on.
PUSH_SWEEP_GRACE = timedelta(minutes=10)
# Suppressions pushed per sweep run: each costs at most a write and a read per system (about
# 0.3 s against a vendor), so a run stays well inside its 5-minute slot; the rest waits a run.
PUSH_SWEEP_BATCH = 50


def push_targets(entry: Suppression, configured: set[str]) -> list[str]:
    """The systems this suppression goes to: every configured one it did not come from (CRMs
    only take addresses: they tag a contact)."""
    return [
        system
        for system in PUSH_SYSTEMS
        if system in configured and entry.source != system and (entry.email or system not in CRM_SYSTEMS)
    ]


def push_suppression(suppression_id: int) -> dict[str, str]:
    """Send one suppression to every system this tenant has credentials for.

    Each system is pushed on its own: one failing does not keep the others from being pushed. The
    first failure worth retrying (or else the first failure) is raised after the others ran.
    """
    entry = Suppression.objects.filter(pk=suppression_id).first()
    if entry is None:
        return {}
    value = entry.email or entry.domain
    configured = set(Credential.objects.values_list("system", flat=True))
    done: dict[str, str] = {}
    failures: list[ConnectorError] = []
    for system in push_targets(entry, configured):
        try:
            pushed = _push_instantly(value) if system == System.INSTANTLY else _tag_crm_contact(system, value)
        except ConnectorError as exc:
            logger.warning("suppression push to %s failed: %s", system, exc)
            failures.append(exc)
            continue
        if pushed:
            done[system] = timezone.now().isoformat()
    if done:
        Suppression.objects.filter(pk=entry.pk).update(pushed_to={**entry.pushed_to, **done})
    if failures:
        retryable = [exc for exc in failures if isinstance(exc, (RetryableError, OutcomeUnknownError))]
        raise (retryable or failures)[0]
    return done


def _push_instantly(value: str) -> bool:
    with clients.write_client(System.INSTANTLY) as writer:
        call_once(
            push_key(System.INSTANTLY, value),
            System.INSTANTLY,
            "block_list_add",
            {"bl_value": value},
            lambda: {"id": writer.add_block_list_entry(value).get("id")},
            # an add whose answer never came may have landed: read the block list before adding again
            reconcile=lambda: _block_list_entry(writer, value),
        )
    return True


def _block_list_entry(reader, value: str) -> dict[str, Any] | None:
    """Instantly's block-list entry for ``value`` (``{"id"}``), or None when it is not there."""
    cursor = None
    for _ in range(RECONCILE_MAX_PAGES):
        page = reader.list_block_list(limit=PULL_PAGE_SIZE, starting_after=cursor, search=value) or {}
        for item in page.get("items", []):
            if str(item.get("bl_value", "")).strip().lower() == value:
                return {"id": item.get("id")}
        cursor = page.get("next_starting_after")
        if not cursor:
            break
    return None


def _tag_crm_contact(system: str, email: str) -> bool:
    """Tag an existing CRM contact as do-not-contact; never create one just to tag it."""
    with clients.write_client(system) as writer:
        if system == System.HUBSPOT:
            contact = writer.get_contact_by_email(email)
            if contact is None:
                call_record_absent(system, email, "dnc")
                return False
            call_once(
                push_key(system, email),
                system,
                "dnc",
                {"email": email},
                lambda: {"id": writer.set_properties(contact["id"], {"hs_email_optout": "true"})["id"]},
            )
            return True
        contact = writer.search_contact_by_email(email)
        if contact is None:
            call_record_absent(system, email, "dnc")
            return False
        call_once(
            push_key(system, email),
            system,
            "dnc",
            {"email": email},
            lambda: {"id": contact["id"], "tags": writer.add_tags(contact["id"], [DNC_TAG])},
        )
        return True


def suppressions_not_pushed(now: datetime | None = None) -> QuerySet[Suppression]:
    """Suppressions older than the grace period that some configured system still lacks."""
    now = now or timezone.now()
    configured = set(Credential.objects.filter(system__in=PUSH_SYSTEMS).values_list("system", flat=True))
    missing = Q()
    annotations = {}
    for system in PUSH_SYSTEMS:
        if system not in configured:
            continue
        annotations[f"settled_{system}"] = push_settled(system)
        condition = ~Q(source=system) & ~Q(pushed_to__has_key=system) & Q(**{f"settled_{system}": False})
        if system in CRM_SYSTEMS:
            condition &= ~Q(email="")
        missing |= condition
    if not annotations:
        return Suppression.objects.none()
    return (
        Suppression.objects.annotate(**annotations)
        .filter(missing, created_at__lte=now - PUSH_SWEEP_GRACE)
        # newest first: a fresh opt-out matters most, and an entry that keeps failing does not
        # hold up the ones behind it
        .order_by("-created_at", "-pk")
    )


def push_not_pushed(now: datetime | None = None) -> dict[str, int]:
    """Sweep: push every suppression whose push was never enqueued, or gave up (a batch a run)."""
    pushed = failed = 0
    for entry_id in list(suppressions_not_pushed(now).values_list("pk", flat=True)[:PUSH_SWEEP_BATCH]):
        try:
            push_suppression(entry_id)
        except ConnectorError as exc:
            failed += 1
            logger.warning("suppression sweep: push of #%s failed: %s", entry_id, exc)
            if isinstance(exc, (CircuitOpenError, RateLimitedLocally)):
                break  # the vendor is down or our budget spent: the next run goes on
            continue
        pushed += 1
    return {"pushed": pushed, "failed": failed}


def pull_instantly_block_list() -> int:
    """Bring Instantly's block list into ours; returns how many entries were new here."""
    if not Credential.objects.filter(system=System.INSTANTLY).exists():
        return 0
    new = 0
    with clients.read_client(System.INSTANTLY) as reader:
        cursor = None
        for _ in range(PULL_MAX_PAGES):
            page = reader.list_block_list(limit=PULL_PAGE_SIZE, starting_after=cursor)
            for item in page.get("items", []):
                value = str(item.get("bl_value", "")).strip().lower()
                if not value:
                    continue
                field = "email" if "@" in value else "domain"
                if Suppression.objects.filter(**{field: value}).exists():
                    continue
                suppression_add(
                    **{field: value},
                    reason=SuppressionReason.DNC,
                    source=System.INSTANTLY,
                    note="Instantly block list",
                )
                new += 1
            cursor = page.get("next_starting_after")
            if not cursor:
                break
    return new


def ensure_instantly_webhook() -> str:
    """Keep this tenant's webhook subscribed and enabled at Instantly; returns what was done.

    Instantly disables a webhook after repeated failed deliveries, and then unsubscribes stop
    arriving: a disabled one is resumed, a missing one created, one registered with a secret
    header we no longer accept (the endpoint's secret was rotated) replaced. Each repair is
    logged as a warning, the alert that deliveries were being lost.
    """
    from connectors.api import SECRET_HEADER
    from connectors.models import WebhookEndpoint
    from connectors.selectors import tenant_url

    endpoint = WebhookEndpoint.objects.filter(system=System.INSTANTLY, is_active=True).first()
    if endpoint is None or not Credential.objects.filter(system=System.INSTANTLY).exists():
        return "not configured"
    target, headers = tenant_url("/api/v1/webhooks/instantly/"), {SECRET_HEADER: str(endpoint.secret)}
    with clients.write_client(System.INSTANTLY) as writer:
        ours = [hook for hook in writer.list_webhooks() if hook.get("target_hook_url") == target]
        # a listing without the headers cannot tell a stale secret: such a hook counts as current
        current = [
            hook
            for hook in ours
            if hook.get("headers") is None or hook["headers"].get(SECRET_HEADER) == headers[SECRET_HEADER]
        ]
        for stale in (hook for hook in ours if hook not in current):
            # its deliveries carry a secret we no longer accept (rotated): they would all be refused
            writer.delete_webhook(stale["id"])
            logger.warning("Instantly webhook %s for %s carried an old secret: deleted", stale["id"], target)
        if not current:
            writer.register_webhook(target, headers)
            if ours:
                return f"re-subscribed {target}"
            logger.warning("Instantly had no webhook subscribed for %s: subscribed it", target)
            return f"subscribed {target}"
        hook = current[0]
        if hook.get("status") == 1:
            return "already subscribed"
        writer.resume_webhook(hook["id"])
    logger.warning(
        "Instantly webhook %s for %s was disabled (status %s, last error %s): resumed; events "
        "sent meanwhile were not delivered",
        hook["id"],
        target,
        hook.get("status"),
        hook.get("timestamp_error") or "unknown",
    )
    return f"resumed disabled webhook {hook['id']}"
