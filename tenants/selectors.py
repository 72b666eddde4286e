"""Reads of platform state that are more than one filter()."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import connection
from django_tenants.utils import tenant_context

from tenants.models import Tenant


@dataclass(frozen=True)
class DeactivationImpact:
    """What deactivating a tenant takes away, said on the confirmation page."""

    tenant: Tenant
    host: str
    active_logins: int


def tenant_deactivation_impact(tenants: list[Tenant]) -> list[DeactivationImpact]:
    """For each tenant: its host and how many active logins its deactivation blocks (one count
    in each tenant's own schema, where its users live)."""
    impacts = []
    for tenant in tenants:
        primary = [d.domain for d in tenant.domains.all() if d.is_primary]
        with tenant_context(tenant):
            logins = User.objects.filter(is_active=True).count()
        impacts.append(
            DeactivationImpact(tenant=tenant, host=primary[0] if primary else "—", active_logins=logins)
        )
    connection.set_schema_to_public()
    return impacts
