"""Set-up shared by the benchmark scripts: Django in this process, a bench tenant, a login."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mh1.settings")
    # DEBUG is switched off for measurements; the start-up guards refuse the dev key then.
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789abcdef")
    import django

    django.setup()


def bench_tenant(slug: str, name: str, *, assisted: bool = True):
    """The bench's tenant, created on first use; in assisted phase with its kill switch off."""
    from django.db import connection
    from django_tenants.utils import tenant_context

    from tenants.models import Tenant
    from tenants.policy.models import RolloutPhase, RolloutSettings
    from tenants.services import tenant_create

    connection.set_schema_to_public()
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        tenant = tenant_create(
            acting_user=None,
            name=name,
            slug=slug,
            admin_email=f"admin@{slug}.example",
            admin_password="bench-password",  # noqa: S106
        ).tenant
    if assisted:
        with tenant_context(tenant):
            rollout = RolloutSettings.get_solo()
            if rollout.phase != RolloutPhase.ASSISTED or rollout.kill_switch:
                rollout.phase, rollout.kill_switch, rollout.kill_switch_reason = (
                    RolloutPhase.ASSISTED,
                    False,
                    "",
                )
                rollout.save()
    return tenant


def ae_user(tenant, email: str):
    """An account executive's login in the bench tenant."""
    from django.contrib.auth.models import User
    from django_tenants.utils import tenant_context

    from tenants.roles import Role
    from tenants.services import access_grant

    access_grant(acting_user=None, email=email, tenants=[tenant], role=Role.AE)
    with tenant_context(tenant):
        return User.objects.get(username=email)
