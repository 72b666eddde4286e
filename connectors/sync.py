"""Suppression sync, both ways.

Push: a new entry goes to Instantly's block list and tags the CRM contact (DNC), each write once
through the call ledger. Pull: Instantly's block list comes back into ours on a schedule; CRM DNC
changes arrive by webhook.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from connectors import clients
from connectors.ledger import call_once, push_key
from connectors.models import Credential, Suppression, SuppressionReason, System
from connectors.services import suppression_add

logger = logging.getLogger(__name__)

DNC_TAG = "DNC"
# Block-list entries fetched per page (Instantly's documented maximum is 100).
PULL_PAGE_SIZE = 100
PULL_MAX_PAGES = 50


def _once(system: str, operation: str, key: str, call: dict[str, Any], run) -> dict[str, Any]:
    return call_once(key, system, operation, call, run)


def push_suppression(suppression_id: int) -> dict[str, str]:
    """Send one suppression to every system this tenant has credentials for."""
    entry = Suppression.objects.filter(pk=suppression_id).first()
    if entry is None:
        return {}
    value = entry.email or entry.domain
    configured = set(Credential.objects.values_list("system", flat=True))
    done: dict[str, str] = {}
    if System.INSTANTLY in configured and entry.source != System.INSTANTLY:
        with clients.write_client(System.INSTANTLY) as writer:
            _once(
                System.INSTANTLY,
                "block_list_add",
                push_key(System.INSTANTLY, value),
                {"bl_value": value},
                lambda: {"id": writer.add_block_list_entry(value).get("id")},
            )
        done[System.INSTANTLY] = timezone.now().isoformat()
    if entry.email:
        for system in (System.HUBSPOT, System.GOHIGHLEVEL):
            if system in configured and entry.source != system and _tag_crm_contact(system, entry.email):
                done[system] = timezone.now().isoformat()
    if done:
        Suppression.objects.filter(pk=entry.pk).update(pushed_to={**entry.pushed_to, **done})
    return done


def _tag_crm_contact(system: str, email: str) -> bool:
    """Tag an existing CRM contact as do-not-contact; never create one just to tag it."""
    with clients.write_client(system) as writer:
        if system == System.HUBSPOT:
            contact = writer.get_contact_by_email(email)
            if contact is None:
                return False
            _once(
                system,
                "dnc",
                push_key(system, email),
                {"email": email},
                lambda: {"id": writer.set_properties(contact["id"], {"hs_email_optout": "true"})["id"]},
            )
            return True
        contact = writer.search_contact_by_email(email)
        if contact is None:
            return False
        _once(
            system,
            "dnc",
            push_key(system, email),
            {"email": email},
            lambda: {"id": contact["id"], "tags": writer.add_tags(contact["id"], [DNC_TAG])},
        )
        return True


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
    """Subscribe this tenant's webhook endpoint at Instantly, unless it already is."""
    from connectors.models import WebhookEndpoint
    from connectors.selectors import tenant_url

    endpoint = WebhookEndpoint.objects.filter(system=System.INSTANTLY, is_active=True).first()
    if endpoint is None or not Credential.objects.filter(system=System.INSTANTLY).exists():
        return "not configured"
    target = tenant_url("/api/v1/webhooks/instantly/")
    with clients.write_client(System.INSTANTLY) as writer:
        if any(hook.get("target_hook_url") == target for hook in writer.list_webhooks()):
            return "already subscribed"
        writer.register_webhook(target, {"X-MH1-Webhook-Secret": endpoint.secret})
    return f"subscribed {target}"
