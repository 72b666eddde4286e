"""Tenant admin: leads (with CSV import/export), the lifecycle taxonomy and the field maps."""

from __future__ import annotations

from django.contrib import admin, messages
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV

from campaigns.models import FieldMap, Lead, LifecycleStage
from campaigns.resources import LeadResource
from mh1.admin_sites import tenant_site


@admin.register(Lead, site=tenant_site)
class LeadAdmin(ImportExportModelAdmin):
    resource_classes = [LeadResource]
    import_formats = [CSV]
    export_formats = [CSV]
    list_display = (
        "email",
        "first_name",
        "last_name",
        "company",
        "title",
        "lifecycle_stage",
        "icp_tier",
        "icp_score",
        "source_system",
        "legal_basis",
        "updated_at",
    )
    list_filter = ("lifecycle_stage", "source_system", "icp_tier", "legal_basis")
    search_fields = ("email", "company", "company_domain")
    list_per_page = 100
    ordering = ("-created_at",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("email", "first_name", "last_name", "title", "seniority")}),
        ("Company", {"fields": ("company", "company_domain", "industry", "company_size", "country")}),
        ("Lifecycle and scoring", {"fields": ("lifecycle_stage", "icp_score", "icp_tier")}),
        (
            "Source and provenance",
            {"fields": ("source_system", "source_id", "data_source", "collected_at", "legal_basis")},
        ),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    actions = ("propose_hubspot_upsert", "propose_gohighlevel_upsert")
    PROPOSE_MAX = 500  # leads per action: a bigger batch belongs to a skill run, not a click

    @admin.action(
        description="Propose writing to HubSpot (goes to the approval queue)", permissions=["change"]
    )
    def propose_hubspot_upsert(self, request, queryset):
        self._propose(request, queryset, "hubspot")

    @admin.action(
        description="Propose writing to GoHighLevel (goes to the approval queue)", permissions=["change"]
    )
    def propose_gohighlevel_upsert(self, request, queryset):
        self._propose(request, queryset, "gohighlevel")

    def _propose(self, request, queryset, system: str) -> None:
        from approvals.errors import ApprovalError
        from campaigns.mapping import MappingError
        from campaigns.services import lead_crm_upsert_propose

        proposed = repeated = 0
        problems: list[str] = []
        for lead in queryset[: self.PROPOSE_MAX]:
            try:
                _, created = lead_crm_upsert_propose(lead=lead, system=system, acting_user=request.user)
            except (ValueError, MappingError, ApprovalError) as exc:
                problems.append(f"{lead.email}: {exc}")
                continue
            proposed, repeated = proposed + created, repeated + (not created)
        summary = f"{proposed} CRM write(s) to {system} proposed for approval"
        if repeated:
            summary += f"; {repeated} already proposed with the same values"
        self.message_user(
            request, summary + ".", messages.SUCCESS if proposed or repeated else messages.WARNING
        )
        if queryset.count() > self.PROPOSE_MAX:
            self.message_user(
                request, f"Only the first {self.PROPOSE_MAX} selected leads were proposed.", messages.WARNING
            )
        for problem in problems[:10]:
            self.message_user(request, problem, messages.ERROR)

    # import-export lets every admin user import and export unless told otherwise: import needs
    # both add and change (an import creates and updates), and a bulk export of personal data
    # needs the same, not mere view.
    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_import_permission(request)


@admin.register(LifecycleStage, site=tenant_site)
class LifecycleStageAdmin(admin.ModelAdmin):
    list_display = ("key", "label", "crm_value", "order", "is_terminal")
    list_editable = ("label", "crm_value", "order", "is_terminal")
    ordering = ("order", "key")
    search_fields = ("key", "label")


@admin.register(FieldMap, site=tenant_site)
class FieldMapAdmin(admin.ModelAdmin):
    list_display = ("system", "canonical_field", "remote_field", "direction", "transform")
    list_filter = ("system", "direction")
    search_fields = ("canonical_field", "remote_field")
    ordering = ("system", "canonical_field")
