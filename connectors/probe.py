"""Connection test: a harmless read per capability, reporting which one the credentials lack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from connectors import clients
from connectors.errors import ConnectorError
from connectors.models import Credential, System


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


def connection_test(system: str) -> dict[str, str]:
    """Run every probe of ``system``; returns {capability: "ok" | the vendor's refusal}."""
    if system in (System.CLAY, System.SMTP, System.MH1):
        result = {"connection": "nothing to test without sending (Clay sources accept writes only)"}
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
