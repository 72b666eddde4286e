"""Tenant admin: leads (with CSV import/export), the lifecycle taxonomy and the field maps."""

from __future__ import annotations

from django.contrib import admin
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
