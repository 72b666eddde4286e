"""Tenant admin: leads (with CSV import/export), the lifecycle taxonomy, the field maps and the
versioned messaging pack."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV

from campaigns.errors import ImportConflict, ImportFileInvalid, ImportMappingInvalid
from campaigns.import_storage import TenantUploadStorage, UploadNotFound, upload_name_valid
from campaigns.lead_import import (
    IGNORE,
    MAX_ROWS,
    MAX_UPLOAD_BYTES,
    column_label,
    csv_table_read,
    leads_import_check,
    mapping_check,
    mapping_default,
    target_choices,
    upload_size_check,
)
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
from campaigns.services import leads_import
from mh1.addresses import domain_normalize, email_normalize
from mh1.admin_search import Exact, VolumeAdminMixin, lookup_choices_filter
from mh1.admin_sites import tenant_site

# Skipped lines named in the message after an import (the preview lists them all).
IMPORT_SKIPPED_REPORTED = 5


def upload_file_name(name: str) -> str:
    """The uploaded file's own name, for messages and provenance: no folders, no control characters."""
    base = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:100] or "upload.csv"


class LeadImportForm(forms.Form):
    import_file = forms.FileField(
        label="CSV file",
        help_text="Comma, semicolon or tab separated, UTF-8, with a header row.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )


class LeadImportMappingForm(forms.Form):
    """One choice per column of the file: the lead field it fills, or "ignore"."""

    import_file_name = forms.CharField(widget=forms.HiddenInput)
    format = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, header, samples, **kwargs):
        super().__init__(*args, **kwargs)
        self.header = tuple(header)
        choices = target_choices()
        for index in range(len(self.header)):
            self.fields[f"map_{index}"] = forms.ChoiceField(
                choices=choices,
                required=False,
                label=column_label(self.header, index),
                help_text=", ".join(samples[index]) if samples[index] else "(empty in every row)",
            )

    def column_fields(self):
        return [self[f"map_{index}"] for index in range(len(self.header))]

    def mapping(self) -> list[str]:
        return [self.cleaned_data.get(f"map_{index}") or IGNORE for index in range(len(self.header))]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                mapping_check(self.header, self.mapping())
            except ImportMappingInvalid as exc:
                raise ValidationError(exc.message) from None
        return cleaned


@admin.register(Lead, site=tenant_site)
class LeadAdmin(VolumeAdminMixin, ImportExportModelAdmin):
    resource_classes = [LeadResource]
    import_formats = [CSV]
    export_formats = [CSV]
    # nine columns fit a 1366 px screen (the legal basis is a filter)
    list_display = (
        "email",
        "name",
        "company",
        "title",
        "lifecycle_stage",
        "icp_tier",
        "icp_score",
        "source_system",
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
    # 50 a page as the queue: 12 columns x 100 rows made the page render-bound (bench/admin_pages.py)
    list_per_page = 50
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

    @admin.display(description="name", ordering="last_name")
    def name(self, obj: Lead) -> str:
        return " ".join(part for part in (obj.first_name, obj.last_name) if part) or "—"

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

    # --- import: upload → map the columns → preview → import the good rows (or cancel) ---------
    #
    # import-export's stock import is replaced (its URLs and buttons are kept): the file is read
    # and every row checked by campaigns.lead_import, written by campaigns.services.leads_import.
    # Bad input is a 4xx with a message; the upload lives in this tenant's storage, belongs to
    # the person who uploaded it and is deleted once imported, cancelled, or unusable.

    IMPORT_TEMPLATE = "admin/campaigns/lead/import.html"
    PREVIEW_TEMPLATE = "admin/campaigns/lead/import_preview.html"

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

    def _import_context(self, request, **context) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import leads from a CSV file",
            "max_rows": MAX_ROWS,
            "max_megabytes": MAX_UPLOAD_BYTES // 1024 // 1024,
            "targets": [label for value, label in target_choices() if value],
            **context,
        }

    def _upload_page(self, request, form, *, status: int = 200) -> TemplateResponse:
        context = self._import_context(request, form=form)
        return TemplateResponse(request, self.IMPORT_TEMPLATE, context, status=status)

    def _owned_upload(self, request) -> tuple[TenantUploadStorage, dict]:
        """The upload named in the request, if it is this tenant's and this person's; else
        UploadNotFound (the same answer whether it never existed or is someone else's)."""
        storage = TenantUploadStorage(name=request.POST.get("import_file_name", ""), read_mode="rb")
        if not upload_name_valid(storage.name):
            raise UploadNotFound
        meta = storage.read_meta()
        if meta.get("user") != request.user.pk or not storage.exists():
            raise UploadNotFound
        return storage, meta

    def _preview_page(
        self, request, storage, meta: dict, table, *, form=None, notice: str = ""
    ) -> TemplateResponse:
        """The mapping and, when the mapping is usable, the preview of what importing would do."""
        mapping = meta["mapping"]
        if form is None or not form.errors:  # a valid mapping is shown as stored (what imports)
            form = LeadImportMappingForm(
                header=table.header,
                samples=[table.samples(i) for i in range(len(table.header))],
                initial={"import_file_name": storage.name, "format": "0"}
                | {f"map_{i}": name for i, name in enumerate(mapping)},
            )
        check, mapping_error = None, ""
        if not form.is_bound or form.is_valid():  # else the form shows what to change
            try:
                check = leads_import_check(table, mapping, file_name=meta["file_name"])
            except ImportMappingInvalid as exc:
                mapping_error = exc.message
        context = {
            "form": form,
            "check": check,
            "mapping_error": mapping_error,
            "file_name": meta["file_name"],
            "rows": len(table.rows),
            "notice": notice,
        }
        if check is not None and not check.good:
            # nothing can be imported: the upload is not kept (fix the file, upload it again)
            storage.remove()
            context["form"] = None
            context["upload_form"] = LeadImportForm()
        elif check is not None:
            context["confirm_form"] = form
        return TemplateResponse(request, self.PREVIEW_TEMPLATE, self._import_context(request, **context))

    def import_action(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        if refusal := self._unknown_format(request, self.get_import_formats()):
            return refusal
        if request.method == "POST" and "import_file_name" in request.POST:
            return self._import_remap(request)
        if request.method != "POST":
            return self._upload_page(request, LeadImportForm())
        form = LeadImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self._upload_page(request, form, status=400)
        upload = form.cleaned_data["import_file"]
        try:
            upload_size_check(upload.size)
            data = upload.read()
            table = csv_table_read(data)
        except ImportFileInvalid as exc:
            form.add_error("import_file", exc.message)
            return self._upload_page(request, form, status=400)
        storage = TenantUploadStorage(read_mode="rb")
        storage.save(data)
        meta = {
            "user": request.user.pk,
            "file_name": upload_file_name(upload.name),
            "mapping": mapping_default(table.header),
        }
        storage.save_meta(meta)
        return self._preview_page(request, storage, meta, table)

    def _import_remap(self, request):
        try:
            storage, meta = self._owned_upload(request)
            table = csv_table_read(storage.read())
        except UploadNotFound as exc:
            return self._bad_request(exc.message)
        form = LeadImportMappingForm(
            request.POST, header=table.header, samples=[table.samples(i) for i in range(len(table.header))]
        )
        if form.is_valid():
            meta["mapping"] = form.mapping()
            storage.save_meta(meta)
        return self._preview_page(request, storage, meta, table, form=form)

    def process_import(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if refusal := self._unknown_format(request, self.get_import_formats()):
            return refusal
        try:
            storage, meta = self._owned_upload(request)
            table = csv_table_read(storage.read())
        except UploadNotFound as exc:
            return self._bad_request(exc.message)
        if any(key.startswith("map_") for key in request.POST):
            # what is imported is what was previewed: a mapping changed since is previewed first
            form = LeadImportMappingForm(
                request.POST,
                header=table.header,
                samples=[table.samples(i) for i in range(len(table.header))],
            )
            if not form.is_valid():
                return self._preview_page(request, storage, meta, table, form=form)
            if form.mapping() != meta["mapping"]:
                meta["mapping"] = form.mapping()
                storage.save_meta(meta)
                notice = "The mapping changed since the preview: check the rows below, then import."
                return self._preview_page(request, storage, meta, table, notice=notice)
        try:
            data = storage.claim()  # a second confirmation of this upload now finds it gone
        except UploadNotFound as exc:
            return self._bad_request(exc.message)
        done = False
        try:
            outcome = leads_import(
                acting_user=request.user,
                table=csv_table_read(data),
                mapping=meta["mapping"],
                file_name=meta["file_name"],
            )
            done = True
        except (ImportConflict, ImportMappingInvalid) as exc:
            storage.give_back(data)
            self.message_user(request, exc.message, messages.ERROR)
            return self._preview_page(request, storage, meta, table)
        finally:
            if done:
                storage.remove()
            elif not storage.exists():
                storage.give_back(data)  # an unexpected error: the person may try again
        self._report_import(request, outcome, meta["file_name"])
        return HttpResponseRedirect(
            reverse("admin:campaigns_lead_changelist", current_app=self.admin_site.name)
        )

    def _report_import(self, request, outcome, file_name: str) -> None:
        written = outcome.created + outcome.updated
        if written:
            self.message_user(
                request,
                f"Imported {written} lead(s) from {file_name} ({outcome.created} new, {outcome.updated} "
                "updated) and scored them against the ICP.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, f"Nothing was imported from {file_name}: no row is valid.", messages.WARNING
            )
        if outcome.skipped:
            # each reason is a sentence of its own; joined, only the list ends with a full stop
            shown = "; ".join(reason.rstrip(".") for reason in outcome.skipped[:IMPORT_SKIPPED_REPORTED])
            more = len(outcome.skipped) - IMPORT_SKIPPED_REPORTED
            self.message_user(
                request,
                f"Skipped {len(outcome.skipped)} row(s): {shown}"
                + (f"; and {more} more." if more > 0 else "."),
                messages.WARNING,
            )

    @method_decorator(require_POST)
    def cancel_import(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        try:
            storage, _ = self._owned_upload(request)
        except UploadNotFound as exc:
            return self._bad_request(exc.message)
        storage.remove()
        self.message_user(
            request, "Import cancelled: the upload was deleted, nothing was imported.", messages.INFO
        )
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
