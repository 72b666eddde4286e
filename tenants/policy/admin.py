"""Tenant admin: policy forms RevOps edit, and the heartbeat record."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.postgres.forms import SimpleArrayField
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy
from solo.admin import SingletonModelAdmin

from mh1.admin_sites import tenant_site
from tenants.policy.models import (
    Heartbeat,
    IcpDefinition,
    QuotaPolicy,
    RolloutSettings,
    SendingPolicy,
)


class PolicyAdmin(SingletonModelAdmin):
    readonly_fields = ("updated_at",)


@admin.register(RolloutSettings, site=tenant_site)
class RolloutSettingsAdmin(PolicyAdmin):
    fields = ("phase", "kill_switch", "kill_switch_reason", "safe_mode", "updated_at")
    radio_fields = {"phase": admin.VERTICAL}


class LinesField(SimpleArrayField):
    """One value per line; blank lines and surrounding spaces are ignored."""

    def to_python(self, value):
        if isinstance(value, str):
            value = "\n".join(line.strip() for line in value.splitlines() if line.strip())
        return super().to_python(value)


def _list_field(label: str, help_text: str) -> SimpleArrayField:
    return LinesField(
        forms.CharField(max_length=253),
        delimiter="\n",
        required=False,
        label=label,
        help_text=f"{help_text} One per line.",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
    )


class IcpDefinitionForm(forms.ModelForm):
    industries = _list_field("Industries", "E.g. SaaS, Fintech.")
    titles = _list_field("Titles", "E.g. Head of Growth.")
    seniorities = _list_field("Seniorities", "E.g. VP, Director.")
    geographies = _list_field("Geographies", "Countries or regions.")
    competitor_domains = _list_field("Competitor domains", "Never targeted.")
    customer_domains = _list_field("Customer domains", "Existing customers, excluded from outbound.")

    class Meta:
        model = IcpDefinition
        fields = (
            "company_size_min",
            "company_size_max",
            "industries",
            "titles",
            "seniorities",
            "geographies",
            "competitor_domains",
            "customer_domains",
        )

    # Domains are validated and made canonical by IcpDefinition.clean (run by the form's
    # full_clean), the same code the API's serializer runs.


@admin.register(IcpDefinition, site=tenant_site)
class IcpDefinitionAdmin(PolicyAdmin):
    form = IcpDefinitionForm
    fieldsets = (
        ("Company", {"fields": (("company_size_min", "company_size_max"), "industries", "geographies")}),
        ("People", {"fields": ("titles", "seniorities")}),
        ("Exclusions", {"fields": ("competitor_domains", "customer_domains")}),
        (None, {"fields": ("updated_at",)}),
    )


@admin.register(QuotaPolicy, site=tenant_site)
class QuotaPolicyAdmin(PolicyAdmin):
    fieldsets = (
        ("Tokens and runs", {"fields": ("monthly_token_budget", "daily_run_limit")}),
        ("Money (USD)", {"fields": ("daily_usd_limit", "per_run_usd_limit")}),
        ("CRM", {"fields": ("crm_requests_per_minute",)}),
        (None, {"fields": ("updated_at",)}),
    )


@admin.register(SendingPolicy, site=tenant_site)
class SendingPolicyAdmin(PolicyAdmin):
    fieldsets = (
        ("Volume", {"fields": ("monthly_limit", "daily_limit", "hourly_limit")}),
        ("Pacing", {"fields": ("per_domain_hourly_limit", "min_delay_seconds")}),
        ("Senders", {"fields": ("sending_mailboxes",)}),
        (None, {"fields": ("updated_at",)}),
    )


@admin.register(Heartbeat, site=tenant_site)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("ran_at", "worker", "task_id")
    date_hierarchy = "ran_at"
    search_fields = ("worker", "task_id")
    list_per_page = 50

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# API tokens: a tenant admin issues them; a token only works on its own tenant's host.
tenant_site.register(TokenProxy, TokenAdmin)
