"""Reads of connector state."""

from __future__ import annotations

from django.db.models import Q

from connectors.models import Suppression
from mh1.addresses import domain_of, email_normalize


def suppression_for(email: str) -> Suppression | None:
    """The entry that forbids contacting ``email`` (the address or its domain), or None.

    Raises AddressInvalid for a value that is not one address (callers fail closed)."""
    if not (email or "").strip():
        return None
    email = email_normalize(email)
    return (
        Suppression.objects.filter(Q(email=email) | Q(domain=domain_of(email))).order_by("created_at").first()
    )


def tenant_url(path: str) -> str:
    """Absolute URL of ``path`` on the current tenant's primary host (http and the demo port in
    development, https otherwise)."""
    from django.db import connection

    from mh1.links import host_url

    tenant = getattr(connection, "tenant", None)
    # read with the tenant by the request's middleware (mh1.middleware); elsewhere (a task) asked
    host = getattr(tenant, "primary_domain_name", None)
    if host is None and tenant is not None and hasattr(tenant, "get_primary_domain"):
        domain = tenant.get_primary_domain()
        host = domain.domain if domain else None
    return host_url(host or "localhost", path)
