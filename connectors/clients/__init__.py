"""Client factories: credentials from the current tenant's schema, limits from its policy.

Write clients are built here for the executors (connectors.executors) and nowhere else.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from connectors.errors import FatalError
from connectors.http import ClientConfig, VendorClient


def client_config(system: str) -> ClientConfig:
    from connectors.models import Credential
    from tenants.policy.models import QuotaPolicy

    credential = Credential.objects.filter(system=system).first()
    if credential is None:
        raise FatalError(system, f"No {system} credentials for this tenant: add them under Connectors.")
    secret = credential.secret or {}
    extra = dict(secret.get("extra") or {})
    if secret.get("webhook_url"):  # Clay: the table's webhook source URL is the credential
        extra["webhook_url"] = secret["webhook_url"]
    return ClientConfig(
        system=system,
        base_url=credential.base_url,
        token=secret.get("token", ""),
        tenant_key=connection.schema_name,
        timeout=float(credential.timeout_seconds),
        requests_per_minute=QuotaPolicy.get_solo().crm_requests_per_minute if system != "clay" else None,
        redis_url=settings.REDIS_URL,
        extra=extra,
    )


def _classes():
    from connectors.clients.clay import ClayWriteClient
    from connectors.clients.gohighlevel import GoHighLevelReadClient, GoHighLevelWriteClient
    from connectors.clients.hubspot import HubSpotReadClient, HubSpotWriteClient
    from connectors.clients.instantly import InstantlyReadClient, InstantlyWriteClient

    return {
        "hubspot": (HubSpotReadClient, HubSpotWriteClient),
        "gohighlevel": (GoHighLevelReadClient, GoHighLevelWriteClient),
        "instantly": (InstantlyReadClient, InstantlyWriteClient),
        "clay": (None, ClayWriteClient),
    }


def read_client(system: str) -> VendorClient:
    reader = _classes()[system][0]
    if reader is None:
        raise FatalError(system, f"{system} has no read client.")
    return reader(client_config(system))


def write_client(system: str) -> VendorClient:
    return _classes()[system][1](client_config(system))
