"""Connector admin: write-only credentials, the suppression list, inbound events, the call ledger,
enrichments and Clay sources."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db import connection, models
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from connectors.api import INSTANTLY_EVENTS
from connectors.clients.clay import WEBHOOK_SUBMISSIONS_MAX
from connectors.models import (
    CallLedger,
    ClaySource,
    Credential,
    CrmPull,
    Enrichment,
    Suppression,
    SuppressionReason,
    System,
    WebhookDeadLetter,
    WebhookEndpoint,
    WebhookEvent,
)
from connectors.services import (
    CRM_CONTACT_EVENTS,
    LIFT_PERMISSION,
    SUPPRESSING_EVENTS,
    SuppressionLiftRefused,
    suppression_add,
    suppression_lift,
)
from mh1.addresses import domain_normalize, email_normalize
from mh1.admin_search import (
    Exact,
    VolumeAdminMixin,
    domain_of_email,
    fixed_choices_filter,
    uuid_exact,
)
from mh1.admin_sites import tenant_site


class CredentialForm(forms.ModelForm):
    base_url = forms.URLField(
        required=False, assume_scheme="https", help_text="Empty: the vendor's real API."
    )
    new_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="Token / secret",
        help_text="Write-only: never shown back. Leave empty to keep the stored one. "
        "For Clay: the webhook source's auth token, if it has one.",
    )
    webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        widget=forms.PasswordInput(render_value=False),
        label="Clay webhook source URL",
        help_text="Clay only. Write-only (the URL is a credential). Leave empty to keep the stored one.",
    )
    location_id = forms.CharField(
        required=False,
        max_length=100,
        label="GoHighLevel location id",
        help_text="GoHighLevel only: the sub-account the token acts in.",
    )

    class Meta:
        model = Credential
        fields = ("system", "base_url", "timeout_seconds")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["location_id"].initial = ((self.instance.secret or {}).get("extra") or {}).get(
                "location_id", ""
            )

    def clean(self):
        data = super().clean()
        system = data.get("system")
        stored = (self.instance.secret or {}) if self.instance.pk else {}
        if system == "clay":
            if not data.get("webhook_url") and not stored.get("webhook_url"):
                self.add_error("webhook_url", "Clay needs the table's webhook source URL.")
        elif not self.instance.pk and not data.get("new_secret"):
            self.add_error("new_secret", "A new credential needs its token.")
        if system == "gohighlevel" and not data.get("location_id"):
            self.add_error("location_id", "GoHighLevel needs the location id of the sub-account.")
        return data

    def save(self, commit=True):
        credential = super().save(commit=False)
        secret = dict(credential.secret or {}) if credential.pk else {}
        changed = False
        if self.cleaned_data.get("new_secret"):
            secret["token"] = self.cleaned_data["new_secret"]
            changed = True
        if self.cleaned_data.get("webhook_url"):
            secret["webhook_url"] = self.cleaned_data["webhook_url"]
            changed = True
        location_id = self.cleaned_data.get("location_id") or ""
        if location_id != (secret.get("extra") or {}).get("location_id", ""):
            secret["extra"] = {**(secret.get("extra") or {}), "location_id": location_id}
        credential.secret = secret
        if changed:
            credential.rotated_at = timezone.now()
        if commit:
            credential.save()
        return credential


@admin.register(Credential, site=tenant_site)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("system", "base_url", "timeout_seconds", "rotated_at", "last_test_at")
    readonly_fields = ("rotated_at", "last_test_at", "last_test_result")
    actions = ("test_connection", "pull_leads")

    @admin.action(description="Test connection (what these credentials can do)")
    def test_connection(self, request, queryset):
        from connectors.probe import connection_test

        for credential in queryset:
            result = connection_test(credential.system)
            failed = {k: v for k, v in result.items() if str(v).startswith("failed")}
            level = messages.ERROR if failed else messages.SUCCESS
            summary = "; ".join(f"{k}: {v}" for k, v in result.items())
            self.message_user(request, f"{credential.get_system_display()}: {summary}", level)

    @admin.action(description="Pull leads now (HubSpot, GoHighLevel)")
    def pull_leads(self, request, queryset):
        from connectors.pull import CRM_SYSTEMS
        from connectors.tasks import pull_crm_leads

        if not request.user.has_perm("campaigns.add_lead"):
            self.message_user(request, "Pulling leads needs permission to add leads.", messages.ERROR)
            return
        for credential in queryset:
            if credential.system not in CRM_SYSTEMS:
                self.message_user(
                    request,
                    f"{credential.get_system_display()} is not a CRM: no leads to pull.",
                    messages.WARNING,
                )
                continue
            pull_crm_leads.delay(connection.schema_name, credential.system)
            self.message_user(
                request,
                f"Lead pull from {credential.get_system_display()} queued: see Connectors → CRM lead pulls.",
                messages.SUCCESS,
            )

    def get_fields(self, request, obj=None):
        return (
            "system",
            "base_url",
            "timeout_seconds",
            "new_secret",
            "webhook_url",
            "location_id",
            *self.readonly_fields,
        )


# Where suppressions come from (``suppression_add(source=...)``): the systems, and the admin.
SUPPRESSION_SOURCES = (*System.choices, ("admin", "Admin"))
# Event types worth filtering on; vendors send others too (stored alike, found by search).
WEBHOOK_EVENT_TYPES = sorted(
    {
        *INSTANTLY_EVENTS,
        *SUPPRESSING_EVENTS,
        *(t for _, t in CRM_CONTACT_EVENTS),
        "enrichment_result",
        "rejected",
    }
)


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ("email", "domain", "reason", "note")

    def clean(self):
        data = super().clean()
        if bool(data.get("email")) == bool(data.get("domain")):
            raise forms.ValidationError("Give an email address or a domain, not both.")
        return data


class LiftForm(forms.Form):
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text="Why it is wrong."
    )


@admin.register(Suppression, site=tenant_site)
class SuppressionAdmin(VolumeAdminMixin, admin.ModelAdmin):
    form = SuppressionForm
    list_display = ("__str__", "reason", "source", "created_at")
    list_filter = (
        "reason",
        fixed_choices_filter("source", SUPPRESSION_SOURCES),
        ("created_at", admin.DateFieldListFilter),
    )
    # an address also finds the entry of its domain, which covers it
    exact_search_fields = (
        Exact("email", email_normalize),
        Exact("domain", domain_normalize),
        Exact("domain", domain_of_email),
    )
    list_per_page = 100

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a wrong entry is lifted with a reason (the action below), never deleted

    actions = ("lift_selected",)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm(LIFT_PERMISSION):
            actions.pop("lift_selected", None)
        return actions

    @admin.action(description="Lift selected suppressions (with a reason)")
    def lift_selected(self, request, queryset):
        if "apply" in request.POST:
            form = LiftForm(request.POST)
            if form.is_valid():
                for entry in queryset.order_by("pk"):
                    try:
                        suppression_lift(
                            entry_id=entry.pk, acting_user=request.user, reason=form.cleaned_data["reason"]
                        )
                        self.message_user(
                            request,
                            f"{entry} lifted. If it is on a vendor's block list too (Instantly), remove it "
                            "there, or the next block-list pull brings it back.",
                            messages.SUCCESS,
                        )
                    except SuppressionLiftRefused as exc:
                        self.message_user(request, str(exc), messages.ERROR)
                return None
        else:
            form = LiftForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Lift suppressions",
            "form": form,
            "queryset": queryset,
            "action": "lift_selected",
            "opts": self.model._meta,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/connectors/suppression/lift_form.html", context)

    def save_model(self, request, obj, form, change):
        entry, cancelled = suppression_add(
            email=obj.email,
            domain=obj.domain,
            reason=obj.reason or SuppressionReason.MANUAL,
            source="admin",
            note=obj.note,
            acting_user=request.user,
        )
        obj.pk = entry.pk
        self.message_user(
            request, f"{entry} suppressed; {cancelled} open send(s) cancelled.", messages.SUCCESS
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookEvent, site=tenant_site)
class WebhookEventAdmin(VolumeAdminMixin, ReadOnlyAdmin):
    list_display = ("received_at", "system", "event_type", "email", "outcome")
    list_filter = (
        "system",
        fixed_choices_filter("event_type", WEBHOOK_EVENT_TYPES, title="event type"),
        ("received_at", admin.DateFieldListFilter),
    )
    # (system, event_id) is the unique index: name every system so the index serves the search
    exact_search_fields = (
        Exact("email", email_normalize),
        Exact("event_id", also={"system__in": tuple(System.values)}),
    )


@admin.register(CallLedger, site=tenant_site)
class CallLedgerAdmin(VolumeAdminMixin, ReadOnlyAdmin):
    list_display = ("started_at", "system", "operation", "idempotency_key", "status", "finished_at")
    list_filter = ("system", "status", ("started_at", admin.DateFieldListFilter))
    exact_search_fields = (Exact("idempotency_key"),)


# Systems whose webhooks prove their origin with a secret the vendor holds (HubSpot signs with the
# app's client secret): it is entered here, write-only. The others get a secret we generate and
# register with them as a header; GoHighLevel signs with its published key (settings).
VENDOR_HELD_SECRETS = {"hubspot": "the HubSpot app's client secret (it signs v3 and v1 webhooks)"}
SIGNED_WITH_PUBLISHED_KEY = {"gohighlevel"}


class WebhookEndpointForm(forms.ModelForm):
    new_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="App secret",
        help_text="HubSpot only: the app's client secret, which signs its webhooks. Write-only: never "
        "shown back. Leave empty to keep the stored one.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("system", "is_active")

    def clean(self):
        data = super().clean()
        system = data.get("system")
        if system in VENDOR_HELD_SECRETS:
            if not data.get("new_secret") and not self.instance.pk:
                self.add_error("new_secret", f"Enter {VENDOR_HELD_SECRETS[system]}.")
            if self.instance.pk and self.instance.system != system and not data.get("new_secret"):
                self.add_error("new_secret", f"Enter {VENDOR_HELD_SECRETS[system]}.")
        elif data.get("new_secret"):
            self.add_error("new_secret", "Only HubSpot's secret is entered here; this one is generated.")
        return data

    def save(self, commit=True):
        endpoint = super().save(commit=False)
        if self.cleaned_data.get("new_secret"):
            endpoint.secret = self.cleaned_data["new_secret"].strip()
        if commit:
            endpoint.save()
        return endpoint


@admin.register(WebhookEndpoint, site=tenant_site)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("system", "is_active", "created_at")
    fields = ("system", "is_active", "new_secret", "registration")
    readonly_fields = ("registration",)

    @admin.display(description="register with the vendor")
    def registration(self, obj: WebhookEndpoint) -> str:
        if obj.system in VENDOR_HELD_SECRETS:
            state = "stored" if obj.pk else "not stored yet"
            return f"Signed by the vendor with {VENDOR_HELD_SECRETS[obj.system]}: enter it above ({state})."
        if obj.system in SIGNED_WITH_PUBLISHED_KEY:
            return "Signed with GoHighLevel's published key (GHL_WEBHOOK_PUBLIC_KEY): nothing to register."
        if not obj.pk:
            return "Save first: a secret is generated."
        return json.dumps({"headers": {"X-MH1-Webhook-Secret": obj.secret}})


@admin.register(Enrichment, site=tenant_site)
class EnrichmentAdmin(VolumeAdminMixin, ReadOnlyAdmin):
    list_display = ("submitted_at", "provider", "email", "status", "received_at", "request_link")
    list_filter = ("provider", "status", ("submitted_at", admin.DateFieldListFilter))
    exact_search_fields = (Exact("email", email_normalize), Exact("ref", uuid_exact))
    fields = (
        "ref",
        "provider",
        "email",
        "request_link",
        "requested_fields",
        "status",
        "submitted_at",
        "received_at",
        "applied_changes",
        "result",
    )
    readonly_fields = fields

    @admin.display(description="action request")
    def request_link(self, obj: Enrichment):
        if obj.request_id is None:
            return "—"
        url = reverse(
            "admin:approvals_actionrequest_change", args=[obj.request_id], current_app=tenant_site.name
        )
        return format_html('<a href="{}">#{}</a>', url, obj.request_id)

    @admin.display(description="lead changes (before → after)")
    def applied_changes(self, obj: Enrichment):
        if not obj.applied:
            return "—"
        return format_html_join(
            mark_safe("<br>"), "{}: {} → {}", ((k, v[0] or "∅", v[1]) for k, v in obj.applied.items())
        )


@admin.register(ClaySource, site=tenant_site)
class ClaySourceAdmin(ReadOnlyAdmin):
    list_display = ("label", "submissions", "remaining", "first_used_at", "last_used_at")

    @admin.display(description="remaining")
    def remaining(self, obj: ClaySource) -> int:
        return max(0, WEBHOOK_SUBMISSIONS_MAX - obj.submissions)


@admin.register(CrmPull, site=tenant_site)
class CrmPullAdmin(ReadOnlyAdmin):
    list_display = ("system", "last_run_at", "last_sweep_completed_at", "leads_pulled", "summary")
    fields = ("system", "cursor", "last_run_at", "last_sweep_completed_at", "leads_pulled", "last_result")
    readonly_fields = fields

    @admin.display(description="last run")
    def summary(self, obj: CrmPull) -> str:
        result = obj.last_result or {}
        if "error" in result:
            return f"failed: {result['error']}"
        if not result:
            return "—"
        return (
            f"{result.get('pages', 0)} page(s): {result.get('created', 0)} new, {result.get('updated', 0)} "
            f"updated, {result.get('skipped', 0)} skipped, {result.get('suppressed', 0)} suppressed"
        )


class WebhookDeadLetterAdmin(ReadOnlyAdmin):
    """Webhook bodies answered 4xx although their sender was proven (connectors.api): read-only,
    for whoever may read the webhook events."""

    list_display = ("received_at", "system", "reason", "body_bytes", "content_type")
    list_filter = ("system",)
    search_fields = ("reason", "body")
    date_hierarchy = "received_at"
    readonly_fields = ("system", "received_at", "reason", "body_bytes", "content_type", "body")
    # Few rows (only refused bodies from proven senders); no full count on filtered pages.
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        allowed = request.user.has_perm("connectors.view_webhookevent")
        return allowed or super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return self.has_view_permission(request)


tenant_site.register(WebhookDeadLetter, WebhookDeadLetterAdmin)
