"""Tenant admin: policy forms RevOps edit, and the heartbeat record."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.postgres.forms import SimpleArrayField
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from solo.admin import SingletonModelAdmin

from campaigns.icp_choices import GEOGRAPHY_LIST, INDUSTRY_LIST, OTHER, ControlledList
from mh1.admin_sites import tenant_site
from tenants.policy import services as policy_services
from tenants.policy.models import (
    Heartbeat,
    IcpDefinition,
    QuotaPolicy,
    RolloutSettings,
    SendingPolicy,
)
from tenants.policy.tokens import ApiToken, api_token_create


class PolicyAdmin(SingletonModelAdmin):
    readonly_fields = ("updated_at",)


class RolloutSettingsForm(forms.ModelForm):
    class Meta:
        model = RolloutSettings
        fields = ("phase", "agreement_override_reason", "kill_switch", "kill_switch_reason", "safe_mode")

    def clean(self):
        data = super().clean()
        if "phase" in data:
            current = RolloutSettings.get_solo().phase
            policy_services.agreement_gate(
                current=current, phase=data["phase"], reason=data.get("agreement_override_reason", "")
            )
        return data


@admin.register(RolloutSettings, site=tenant_site)
class RolloutSettingsAdmin(PolicyAdmin):
    form = RolloutSettingsForm
    fields = (
        "phase",
        "agreement",
        "agreement_override_reason",
        "kill_switch",
        "kill_switch_reason",
        "safe_mode",
        "updated_at",
    )
    readonly_fields = ("agreement", "updated_at")
    radio_fields = {"phase": admin.VERTICAL}

    @admin.display(description="Agreement in the parallel phase")
    def agreement(self, obj):
        from approvals.selectors import AGREEMENT_TARGET, agreement_by_skill, agreement_rate

        overall = agreement_rate()
        if not overall["decided"]:
            return "No decision compared yet: the parallel phase compares the AI's decision with people's."
        rows = [("All skills", overall)] + [
            (r["skill"] or "Manual proposals", r) for r in agreement_by_skill()
        ]
        return format_html(
            '<table id="agreement"><tr><th>Skill</th><th>Agreed</th><th>Decided</th><th>Rate</th></tr>{}'
            '</table><p class="help">Target before assisted: {}.</p>',
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                (
                    (
                        name,
                        r["agreed"],
                        r["decided"],
                        f"{r['rate']:.0%}",
                        " (below target)" if r["rate"] < AGREEMENT_TARGET else "",
                    )
                    for name, r in rows
                ),
            ),
            f"{AGREEMENT_TARGET:.0%}",
        )

    def save_model(self, request, obj, form, change):
        # the form validated through the model; the service validates again under the row lock
        saved = policy_services.rollout_update(
            acting_user=request.user,
            **{name: form.cleaned_data[name] for name in self.fields if name in form.cleaned_data},
        )
        obj.pk, obj.updated_at = saved.pk, saved.updated_at


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


class WrappedFilteredSelectMultiple(FilteredSelectMultiple):
    """The two-box picker in a wrapper of its own. Django's SelectFilter2.js puts the boxes first
    in the select's parent element: a model's many-to-many field has the related-widget wrapper
    there, a form field's select sits beside its label, so the boxes landed left of the label
    ("Industries:" shown to their right)."""

    def render(self, name, value, attrs=None, renderer=None):
        return format_html('<div class="mh1-picker">{}</div>', super().render(name, value, attrs, renderer))


def _controlled_field(label: str, controlled: ControlledList) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=[*controlled.choices, (OTHER, "Other (type below)")],
        required=False,
        label=label,
        widget=WrappedFilteredSelectMultiple(label.lower(), is_stacked=False),
    )


def _other_field(label: str, noun: str) -> SimpleArrayField:
    return LinesField(
        forms.CharField(max_length=253),
        delimiter="\n",
        required=False,
        label=label,
        help_text=f"Only with “Other” chosen above: {noun} not on the list, one per line.",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


class IcpDefinitionForm(forms.ModelForm):
    industries = _controlled_field("Industries", INDUSTRY_LIST)
    industries_other = _other_field("Other industries", "industries")
    geographies = _controlled_field("Geographies", GEOGRAPHY_LIST)
    geographies_other = _other_field("Other geographies", "countries or regions")
    titles = _list_field("Titles", "E.g. Head of Growth.")
    seniorities = _list_field("Seniorities", "E.g. VP, Director.")
    competitor_domains = _list_field("Competitor domains", "Never targeted.")
    customer_domains = _list_field("Customer domains", "Existing customers, excluded from outbound.")

    CONTROLLED = (("industries", INDUSTRY_LIST), ("geographies", GEOGRAPHY_LIST))

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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Stored values outside the list (saved before it existed, or through the API) show as
        # "Other" values and save again unchanged.
        for name, controlled in self.CONTROLLED:
            listed, others = controlled.split(getattr(self.instance, name, None) or [])
            self.initial[name] = [*listed, OTHER] if others else listed
            self.initial[f"{name}_other"] = others

    def clean(self):
        data = super().clean()
        for name, _ in self.CONTROLLED:
            chosen = data.get(name) or []
            others = data.get(f"{name}_other") or []
            if others and OTHER not in chosen:
                self.add_error(
                    f"{name}_other",
                    "Choose “Other” in the list to add values that are not on it, or clear this box.",
                )
            elif OTHER in chosen and not others:
                self.add_error(f"{name}_other", "Type the other values, one per line, or unselect “Other”.")
            # what the model stores; IcpDefinition.clean makes it canonical (list spelling,
            # duplicates merged), the same code the API's serializer runs
            data[name] = [value for value in chosen if value != OTHER] + list(others)
        return data

    # Domains are validated and made canonical by IcpDefinition.clean (run by the form's
    # full_clean), the same code the API's serializer runs.


@admin.register(IcpDefinition, site=tenant_site)
class IcpDefinitionAdmin(PolicyAdmin):
    form = IcpDefinitionForm
    fieldsets = (
        (
            "Company",
            {
                "fields": (
                    ("company_size_min", "company_size_max"),
                    "industries",
                    "industries_other",
                    "geographies",
                    "geographies_other",
                )
            },
        ),
        ("People", {"fields": ("titles", "seniorities")}),
        ("Exclusions", {"fields": ("competitor_domains", "customer_domains")}),
        (None, {"fields": ("updated_at",)}),
    )

    def save_model(self, request, obj, form, change):
        # through the service: validated again under the row lock, audited under the acting
        # user, and every lead re-scored against the new ICP once it commits
        saved = policy_services.policy_update(
            acting_user=request.user,
            policy=IcpDefinition,
            **{name: form.cleaned_data[name] for name in IcpDefinitionForm.Meta.fields},
        )
        obj.pk, obj.updated_at = saved.pk, saved.updated_at


@admin.register(QuotaPolicy, site=tenant_site)
class QuotaPolicyAdmin(PolicyAdmin):
    fieldsets = (
        ("Tokens and runs", {"fields": ("monthly_token_budget", "daily_run_limit")}),
        ("Money (USD)", {"fields": ("daily_usd_limit", "monthly_usd_limit", "per_run_usd_limit")}),
        ("Alerts", {"fields": ("alert_thresholds",)}),
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


@admin.register(ApiToken, site=tenant_site)
class ApiTokenAdmin(admin.ModelAdmin):
    """My API tokens: everyone sees and creates only their own; the key is shown once, at creation.

    A token only works on its own tenant's host (each schema has its own table).
    """

    fields = ("name",)
    list_display = ("name", "prefix", "created_at", "last_used_at")
    ordering = ("-created_at",)
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).filter(user=request.user)

    def has_change_permission(self, request, obj=None):
        return False  # a token is created or deleted, never edited

    def save_model(self, request, obj, form, change):
        token, key = api_token_create(acting_user=request.user, name=form.cleaned_data["name"])
        obj.pk, obj.user, obj.prefix, obj.digest = token.pk, token.user, token.prefix, token.digest
        request._new_api_key = key

    def response_add(self, request, obj, post_url_continue=None):
        # Shown in this one answer only: never in a message (stored in the session or a cookie),
        # never again afterwards.
        context = {
            **self.admin_site.each_context(request),
            "title": "Your new API token",
            "opts": self.model._meta,
            "token": obj,
            "key": request._new_api_key,
        }
        response = TemplateResponse(request, "admin/policy/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response
