"""Tenant admin: leads (with CSV import/export), the lifecycle taxonomy, the field maps and the
versioned messaging pack."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV

from campaigns.import_storage import TenantUploadStorage, UploadNotFound, upload_name_valid
from campaigns.messaging import (
    DEFAULT_PACK,
    PACK_FIELDS,
    messaging_pack_activate,
    messaging_pack_active,
    messaging_pack_save,
    messaging_pack_validate,
)
from campaigns.models import FieldMap, Lead, LifecycleStage, MessagingPack
from campaigns.resources import LeadResource
from mh1.addresses import domain_normalize, email_normalize
from mh1.admin_search import Exact, VolumeAdminMixin, lookup_choices_filter
from mh1.admin_sites import tenant_site


@admin.register(Lead, site=tenant_site)
class LeadAdmin(VolumeAdminMixin, ImportExportModelAdmin):
    resource_classes = [LeadResource]
    import_formats = [CSV]
    export_formats = [CSV]
    # Uploads wait for confirmation in the tenant's own storage, never in the shared temp folder.
    tmp_storage_class = TenantUploadStorage
    import_template_name = "admin/campaigns/lead/import.html"
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
    list_filter = (
        lookup_choices_filter(
            "lifecycle_stage",
            lambda: LifecycleStage.objects.order_by("order", "key").values_list("key", "label"),
            title="lifecycle stage",
        ),
        "source_system",
        "icp_tier",
        "legal_basis",
    )
    # both columns are indexed (unique email, campaigns_lead_domain_idx); the company name is not
    exact_search_fields = (Exact("email", email_normalize), Exact("company_domain", domain_normalize))
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

    # --- import and export: bad input is a 400 with a message, uploads never outlive their use ----

    def get_urls(self):
        info = self.get_model_info()
        cancel = path(
            "cancel_import/",
            self.admin_site.admin_view(self.cancel_import),
            name="{}_{}_cancel_import".format(*info),
        )
        return [cancel, *super().get_urls()]

    @staticmethod
    def _bad_request(message: str) -> HttpResponse:
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")

    def _unknown_format(self, request, formats) -> HttpResponse | None:
        value = request.POST.get("format")
        if request.method != "POST" or value is None or value in {str(i) for i in range(len(formats))}:
            return None
        known = ", ".join(f"{i} ({f().get_title()})" for i, f in enumerate(formats))
        return self._bad_request(f"Unknown format “{value[:20]}”: choose one of {known}.")

    def _upload(self, request) -> TenantUploadStorage:
        return TenantUploadStorage(name=request.POST.get("import_file_name", ""))

    def import_action(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        if refusal := self._unknown_format(request, self.get_import_formats()):
            return refusal
        response = super().import_action(request, **kwargs)
        # A preview that cannot be confirmed (row errors, an unreadable file) keeps no copy.
        context = getattr(response, "context_data", None) or {}
        form = context.get("form")
        upload = getattr(form, "cleaned_data", {}).get("import_file") if form is not None else None
        name = getattr(upload, "tmp_storage_name", None)
        if name and "confirm_form" not in context:
            TenantUploadStorage(name=name).remove()
        return response

    def process_import(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return super().process_import(request, **kwargs)  # answers 405
        if refusal := self._unknown_format(request, self.get_import_formats()):
            return refusal
        # Only a name we issued, of an upload kept in this tenant and not yet used or expired.
        if not self._upload(request).exists():
            return self._bad_request(UploadNotFound.message)
        try:
            return super().process_import(request, **kwargs)
        except UploadNotFound as exc:  # used by a concurrent confirmation in between
            return self._bad_request(exc.message)

    @method_decorator(require_POST)
    def cancel_import(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        name = request.POST.get("import_file_name", "")
        if not upload_name_valid(name):
            return self._bad_request(UploadNotFound.message)
        TenantUploadStorage(name=name).remove()
        self.message_user(request, "Import cancelled: the upload was deleted.", messages.INFO)
        return HttpResponseRedirect(
            reverse("admin:campaigns_lead_changelist", current_app=self.admin_site.name)
        )

    def export_action(self, request):
        if not self.has_export_permission(request):
            raise PermissionDenied
        if refusal := self._unknown_format(request, self.get_export_formats()):
            return refusal
        return super().export_action(request)


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


class MessagingPackForm(forms.ModelForm):
    class Meta:
        model = MessagingPack
        fields = PACK_FIELDS

    def clean(self):
        cleaned = super().clean()
        try:
            messaging_pack_validate(cleaned)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


@admin.register(MessagingPack, site=tenant_site)
class MessagingPackAdmin(admin.ModelAdmin):
    """Every save is a new version (the form starts from the active one); a version is never
    edited, and going back is "Make this version active"."""

    form = MessagingPackForm
    list_display = ("version", "is_active", "company_name", "sender_name", "created_by", "created_at")
    list_filter = ("is_active",)
    search_fields = ("company_name", "value_proposition")
    ordering = ("-version",)
    actions = ("activate_version",)
    readonly_fields = ("version", "is_active", "created_by", "created_at")

    def get_fields(self, request, obj=None):
        return (*PACK_FIELDS, *(self.readonly_fields if obj else ()))

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def has_change_permission(self, request, obj=None) -> bool:
        # a version is a record of what runs wrote from: never edited (save a new one instead)
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changeform_initial_data(self, request):
        active = messaging_pack_active()
        if active is not None:
            return {name: getattr(active, name) for name in PACK_FIELDS}
        return {name: value for name, value in DEFAULT_PACK.items() if name in PACK_FIELDS}

    def save_model(self, request, obj, form, change) -> None:
        values = {name: form.cleaned_data[name] for name in PACK_FIELDS if name in form.cleaned_data}
        pack = messaging_pack_save(acting_user=request.user, **values)
        obj.pk, obj.version, obj.is_active, obj.created_at = pack.pk, pack.version, True, pack.created_at

    @admin.action(description="Make this version active", permissions=["change"])
    def activate_version(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one version to make active.", messages.ERROR)
            return
        pack = messaging_pack_activate(acting_user=request.user, version=queryset.get().version)
        self.message_user(request, f"Messaging pack v{pack.version} is now the active one.", messages.SUCCESS)
