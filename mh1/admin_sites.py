"""Two admin sites: the platform operators' on the public host, and each tenant's on its host."""

from __future__ import annotations

from django.contrib import admin
from django.db import connection


class PublicAdminSite(admin.AdminSite):
    site_header = "MH1 Console — platform"
    site_title = "MH1 platform"
    index_title = "Tenants, schedules and platform switches"
    index_template = "admin/operator_index.html"

    def index(self, request, extra_context=None):
        """The operator's home: the global kill switch, then one row per tenant, trouble first."""
        from mh1.home import operator_home
        from tenants.models import PlatformSettings, Tenant

        rows = []
        if request.user.has_perm("tenants.view_tenant"):
            rows = operator_home(
                list(Tenant.objects.active().prefetch_related("domains").order_by("name")), request=request
            )
        extra_context = {
            **(extra_context or {}),
            "platform": PlatformSettings.get_solo(),
            "tenant_rows": rows,
        }
        return super().index(request, extra_context)


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
        """The tenant's home, by role: what each person acts on first, each number a link to the
        list behind it; the app list below."""
        from mh1.home import tenant_home, tenant_home_links
        from tenants.services import user_role

        role = user_role(request.user)
        links = tenant_home_links()
        home = tenant_home(request.user, role.value if role else "", links)
        extra_context = {
            **(extra_context or {}),
            "home": home,
            "links": links,
            "sections": HOME_SECTIONS.get(role, HOME_SECTIONS[None]),
            "role": role,
            "chart_data": {
                "labels": home.chart["labels"],
                "series": home.chart["series"],
            },
        }
        return super().index(request, extra_context)


# The home page's sections in the order each role reads them (all roles see all of them; the
# first ones are what the role acts on).
HOME_SECTIONS = {
    "ae": ("queue", "activity", "state", "budget", "sends"),
    "revops": ("budget", "sends", "activity", "state", "queue"),
    "tenant_admin": ("state", "queue", "budget", "sends", "activity"),
    None: ("state", "queue", "activity", "budget", "sends"),
}


public_site = PublicAdminSite(name="admin")
tenant_site = TenantAdminSite(name="admin")
