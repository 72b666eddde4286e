"""Connection test: a harmless read per capability, reporting which one the credentials lack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from connectors import clients
from connectors.errors import ConnectorError
from connectors.models import Credential, System, WebhookEndpoint


def _probes(system: str, reader) -> dict[str, Callable[[], Any]]:
    if system == System.HUBSPOT:
        return {
            "crm.objects.contacts.read": lambda: reader.search_contacts([], limit=1),
            "crm.objects.contacts.read (by email)": lambda: reader.get_contact_by_email("probe@mh1.invalid"),
        }
    if system == System.GOHIGHLEVEL:
        return {
            "contacts.readonly": lambda: reader.search_contact_by_email("probe@mh1.invalid"),
            "opportunities.readonly": reader.list_pipelines,
        }
    if system == System.INSTANTLY:
        return {
            "campaigns:read": lambda: reader.list_campaigns(limit=1),
            "block_list_entries:read": lambda: reader.list_block_list(limit=1),
            "webhooks:read": reader.list_webhooks,
        }
    return {}


def _clay_check() -> dict[str, str]:
    """Clay sources accept writes only (a test row would be enriched and paid for): check what can
    be checked without one — the source URL's shape and its submissions left."""
    from urllib.parse import urlsplit

    from connectors.clay import source_fingerprint
    from connectors.clients.clay import LOOPBACK_HOSTS, WEBHOOK_SUBMISSIONS_MAX
    from connectors.models import ClaySource

    credential = Credential.objects.filter(system=System.CLAY).first()
    url = ((credential.secret or {}) if credential else {}).get("webhook_url", "")
    if not url:
        return {"webhook source": "failed: no webhook_url in the Clay credentials"}
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
        return {"webhook source": "failed: the webhook source URL must be https"}
    used = ClaySource.objects.filter(fingerprint=source_fingerprint(url)).values_list(
        "submissions", flat=True
    )
    used = used[0] if used else 0
    left = WEBHOOK_SUBMISSIONS_MAX - used
    return {
        "webhook source": "ok" if left > 0 else "failed: all submissions used; create a new source",
        "submissions": f"{used:,} of {WEBHOOK_SUBMISSIONS_MAX:,} used",
        "results endpoint": "ok"
        if WebhookEndpoint.objects.filter(system=System.CLAY, is_active=True).exists()
        else "failed: add a Clay webhook endpoint (its secret goes in the Clay HTTP API column)",
    }


def connection_test(system: str) -> dict[str, str]:
    """Run every probe of ``system``; returns {capability: "ok" | the vendor's refusal}."""
    if system == System.CLAY:
        result = _clay_check()
    elif system in (System.SMTP, System.MH1):
        result = {"connection": "nothing to test without sending"}
    else:
        result = {}
        try:
            with clients.read_client(system) as reader:
                for capability, probe in _probes(system, reader).items():
                    try:
                        probe()
                        result[capability] = "ok"
                    except ConnectorError as exc:
                        result[capability] = f"failed: {exc}"
        except ConnectorError as exc:
            result["connection"] = f"failed: {exc}"
    Credential.objects.filter(system=system).update(last_test_at=timezone.now(), last_test_result=result)
    return result
