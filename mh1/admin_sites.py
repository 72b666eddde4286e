"""Two admin sites: the platform operators' on the public host, and each tenant's on its host."""

from __future__ import annotations

from django.contrib import admin
from django.db import connection


class PublicAdminSite(admin.AdminSite):
    site_header = "MH1 Console — platform"
    site_title = "MH1 platform"
    index_title = "Tenants, schedules and platform switches"


class TenantAdminSite(admin.AdminSite):
    site_header = "MH1 Console"
    site_title = "MH1 Console"
    index_template = "admin/tenant_index.html"

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None) or getattr(connection, "tenant", None)
        context["site_header"] = f"MH1 Console — {tenant.name}" if tenant else self.site_header
        context["tenant"] = tenant
        return context

    def index(self, request, extra_context=None):
        from tenants.policy.models import RolloutSettings
        from tenants.policy.selectors import last_heartbeat
        from tenants.services import global_kill_switch_on

        extra_context = {
            **(extra_context or {}),
            "last_heartbeat": last_heartbeat(),
            "rollout": RolloutSettings.get_solo(),
            "global_kill_switch": global_kill_switch_on(),
        }
        return super().index(request, extra_context)


public_site = PublicAdminSite(name="admin")
tenant_site = TenantAdminSite(name="admin")
