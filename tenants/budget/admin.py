"""Budget admin: model prices in the platform admin; in each tenant, the read-only ledger and the
Spend page (by day, by skill against its cost target, open reservations, alerts)."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse

from mh1.admin_search import Exact, VolumeAdminMixin, lookup_choices_filter
from mh1.admin_sites import public_site, tenant_site
from tenants.budget import selectors
from tenants.budget.models import BudgetAlert, BudgetCharge, BudgetCounter, BudgetReservation
from tenants.models import ModelPrice

SPEND_PERMISSION = "budget.view_budgetcounter"


@admin.register(ModelPrice, site=public_site)
class ModelPriceAdmin(admin.ModelAdmin):
    """A price change is a new row with its own effective date: past runs keep their price."""

    list_display = (
        "model",
        "effective_from",
        "input_usd_per_mtok",
        "output_usd_per_mtok",
        "cached_input_usd_per_mtok",
        "note",
    )
    list_filter = ("model",)
    ordering = ("model", "-effective_from")
    fields = (
        "model",
        "effective_from",
        "input_usd_per_mtok",
        "output_usd_per_mtok",
        "cached_input_usd_per_mtok",
        "note",
    )

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger's history was priced by these rows


class LedgerAdmin(admin.ModelAdmin):
    """Written by the budget services only."""

    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {}), "spend_url": reverse("admin:budget_spend")}
        return super().changelist_view(request, extra_context=extra)


def _skill_choices():
    from skills import registry

    return registry.skill_choices()


@admin.register(BudgetCounter, site=tenant_site)
class BudgetCounterAdmin(LedgerAdmin):
    list_display = (
        "period_start",
        "kind",
        "usd_spent",
        "usd_reserved",
        "tokens_spent",
        "tokens_reserved",
        "runs",
    )
    list_filter = ("kind", ("period_start", admin.DateFieldListFilter))
    ordering = ("-period_start", "kind")

    def get_urls(self):
        return [
            path("spend/", self.admin_site.admin_view(self.spend_view), name="budget_spend"),
            *super().get_urls(),
        ]

    def spend_view(self, request):
        if not request.user.has_perm(SPEND_PERMISSION):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Spend",
            "status": selectors.budget_status(),
            "days": selectors.spend_by_day(30),
            "skills": selectors.spend_by_skill(),
            "reservations": list(selectors.open_reservations()),
            "alerts": list(selectors.recent_alerts()),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/budget/spend.html", context)


@admin.register(BudgetReservation, site=tenant_site)
class BudgetReservationAdmin(VolumeAdminMixin, LedgerAdmin):
    list_display = (
        "key",
        "skill",
        "model",
        "status",
        "reserved_usd",
        "spent_usd",
        "spent_tokens",
        "created_at",
        "expires_at",
        "ended_at",
    )
    list_filter = (
        "status",
        lookup_choices_filter("skill", _skill_choices),
        ("created_at", admin.DateFieldListFilter),
    )
    exact_search_fields = (Exact("key"),)
    ordering = ("-created_at",)


@admin.register(BudgetCharge, site=tenant_site)
class BudgetChargeAdmin(VolumeAdminMixin, LedgerAdmin):
    list_display = ("at", "key", "source", "skill", "usd", "tokens")
    list_filter = (
        lookup_choices_filter("skill", _skill_choices),
        ("at", admin.DateFieldListFilter),
    )
    exact_search_fields = (Exact("key"),)
    ordering = ("-at",)


@admin.register(BudgetAlert, site=tenant_site)
class BudgetAlertAdmin(LedgerAdmin):
    list_display = ("created_at", "limit", "threshold", "period_start", "used", "allowed")
    list_filter = ("limit", ("created_at", admin.DateFieldListFilter))
    ordering = ("-created_at",)
