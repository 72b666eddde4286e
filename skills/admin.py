"""Skills in the tenant admin: the contracts, a start form per skill, the runs (read-only, with
steps, cost against the budget, evaluation per dimension, release decision and proposals) and the
schedules RevOps edits."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from mh1.admin_search import Exact, VolumeAdminMixin, fixed_choices_filter, lookup_choices_filter
from mh1.admin_sites import tenant_site
from skills import registry
from skills.errors import InputsInvalid, SkillError
from skills.forms import start_form_class
from skills.models import RunStatus, SkillRun, SkillRunStep, SkillSchedule, Trigger
from skills.services.runner import START_PERMISSION, skill_run_start
from skills.services.schedules import schedule_save


def _digits(term: str) -> int | None:
    term = term.strip().lstrip("#")
    return int(term) if term.isdigit() and len(term) < 19 else None


class SkillRunStepInline(admin.TabularInline):
    model = SkillRunStep
    extra = 0
    can_delete = False
    fields = (
        "order",
        "name",
        "attempt",
        "status",
        "duration_ms",
        "llm_calls",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SkillRun, site=tenant_site)
class SkillRunAdmin(VolumeAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "skill",
        "status",
        "execution_mode",
        "cost_display",
        "evaluation_score",
        "release_decision",
        "trigger",
        "created_at",
    )
    list_filter = (
        fixed_choices_filter("status", RunStatus.choices),
        lookup_choices_filter("skill", registry.skill_choices, title="skill"),
        fixed_choices_filter(
            "release_decision",
            [
                ("auto_deliver", "auto deliver"),
                ("auto_refine", "auto refine"),
                ("human_review", "human review"),
                ("blocked", "blocked"),
            ],
        ),
        fixed_choices_filter("trigger", Trigger.choices),
    )
    exact_search_fields = (
        Exact("pk", _digits),
        Exact("idempotency_key"),
        Exact("correlation_id"),
    )
    ordering = ("-created_at", "-id")
    list_select_related = ()
    inlines = (SkillRunStepInline,)
    fieldsets = (
        (
            "Run",
            {
                "fields": (
                    "skill",
                    "skill_version",
                    "status",
                    "refusal_reason",
                    "error",
                    "execution_mode",
                    "trigger",
                    "requested_by",
                    "schedule",
                    "parent_link",
                    "redo_of_request_link",
                    "instructions",
                    "inputs_pretty",
                )
            },
        ),
        (
            "Cost",
            {"fields": ("budget_display", "tokens_display", "provider", "model", "attempts", "refinements")},
        ),
        (
            "Evaluation and release",
            {"fields": ("evaluation_display", "release_display", "fallback", "validated", "data_warnings")},
        ),
        ("Proposed actions", {"fields": ("proposals_display",)}),
        ("Output", {"fields": ("output_pretty",)}),
        (
            "Keys and times",
            {
                "classes": ("collapse",),
                "fields": (
                    "idempotency_key",
                    "correlation_id",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "deadline_at",
                ),
            },
        ),
    )
    # everything on the run page is read-only: the fields are the fieldsets' own
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    def has_add_permission(self, request) -> bool:
        return False  # runs start from a skill's start form

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    # --- columns and fields ----------------------------------------------------------------------

    @admin.display(description="cost (reserved)")
    def cost_display(self, obj: SkillRun) -> str:
        return f"${obj.cost_usd:.4f} (${obj.reserved_usd:.4f})"

    @admin.display(description="budget")
    def budget_display(self, obj: SkillRun) -> str:
        from tenants.policy.models import QuotaPolicy

        contract = registry.get(obj.skill).contract if obj.skill in dict(registry.skill_choices()) else None
        quota = QuotaPolicy.get_solo()
        parts = [f"spent ${obj.cost_usd:.4f} of ${obj.reserved_usd:.4f} reserved (worst case)"]
        parts.append(f"per-run limit ${quota.per_run_usd_limit}")
        if contract is not None:
            parts.append(f"target ${contract.cost.target_usd}, maximum ${contract.cost.max_usd} per run")
        return "; ".join(parts)

    @admin.display(description="tokens")
    def tokens_display(self, obj: SkillRun) -> str:
        return f"{obj.input_tokens} in, {obj.output_tokens} out, {obj.cached_input_tokens} cached"

    @admin.display(description="parent run")
    def parent_link(self, obj: SkillRun) -> str:
        if not obj.parent_id:
            return "—"
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:skills_skillrun_change", args=[obj.parent_id]),
            obj.parent_id,
        )

    @admin.display(description="redo of request")
    def redo_of_request_link(self, obj: SkillRun) -> str:
        if not obj.redo_of_request_id:
            return "—"
        url = reverse("admin:approvals_actionrequest_change", args=[obj.redo_of_request_id])
        return format_html('<a href="{}">#{}</a>', url, obj.redo_of_request_id)

    @admin.display(description="inputs")
    def inputs_pretty(self, obj: SkillRun) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.inputs, indent=2, sort_keys=True))

    @admin.display(description="output")
    def output_pretty(self, obj: SkillRun) -> str:
        if obj.output is None:
            return "—"
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.output, indent=2, sort_keys=True, default=str)[:20000]
        )

    @admin.display(description="evaluation")
    def evaluation_display(self, obj: SkillRun) -> str:
        from skills.selectors import latest_evaluation

        evaluation = latest_evaluation(obj)
        if evaluation is None:
            return "Not evaluated."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    name,
                    f"{d.get('score', 0):.2f}",
                    f"{d.get('weight', 0):.2f}",
                    "; ".join(d.get("reasons", [])) or "—",
                )
                for name, d in (evaluation.dimensions or {}).items()
            ),
        )
        return format_html(
            "<p>Score {} (used by the release policy: {}), {}.</p>"
            "<table><tr><th>dimension</th><th>score</th><th>weight</th><th>why</th></tr>{}</table>",
            f"{evaluation.score:.3f}",
            f"{evaluation.score_used:.3f}",
            "passed" if evaluation.passed else "below the bar",
            rows,
        )

    @admin.display(description="release decision")
    def release_display(self, obj: SkillRun) -> str:
        if not obj.release_decision:
            return "—"
        reasons = format_html_join("", "<li>{}</li>", ((r,) for r in obj.release_reasons or []))
        return format_html("<strong>{}</strong><ul>{}</ul>", obj.release_decision.replace("_", " "), reasons)

    @admin.display(description="proposed actions")
    def proposals_display(self, obj: SkillRun) -> str:
        proposals = (obj.output or {}).get("_proposals") or []
        if not proposals:
            return "None."
        items = []
        for p in proposals:
            if p.get("request_id"):
                url = reverse("admin:approvals_actionrequest_change", args=[p["request_id"]])
                items.append(
                    format_html(
                        '<li><a href="{}">#{}</a> {} {} ({})</li>',
                        url,
                        p["request_id"],
                        p["kind"],
                        p.get("summary", ""),
                        p.get("status", ""),
                    )
                )
            else:
                items.append(
                    format_html(
                        "<li>{} {}: refused: {}</li>", p["kind"], p.get("summary", ""), p.get("refused", "")
                    )
                )
        return format_html("<ul>{}</ul>", format_html_join("", "{}", ((i,) for i in items)))

    # --- contracts and the start form -----------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("skills/", view(self.contracts_view), name="skills_contracts"),
            path("start/<slug:slug>/", view(self.start_view), name="skills_skillrun_start"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {}), "contracts_url": reverse("admin:skills_contracts")}
        return super().changelist_view(request, extra_context=extra)

    def contracts_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Skills and their contracts",
            "skills": [(s.contract, s.contract.as_dict()) for s in registry.all_skills()],
            "refused": sorted(registry.REFUSED.items()),
            "can_start": request.user.has_perm(START_PERMISSION),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/skills/contracts.html", context)

    def start_view(self, request, slug: str):
        if not request.user.has_perm(START_PERMISSION):
            raise PermissionDenied
        try:
            contract = registry.get(slug).contract
        except SkillError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:skills_contracts"))
        form_class = start_form_class(contract)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = skill_run_start(
                    skill=slug,
                    inputs=form.inputs(),
                    execution_mode=form.cleaned_data["execution_mode"],
                    acting_user=request.user,
                    trigger=Trigger.ADMIN,
                )
            except InputsInvalid as exc:
                for field, errors in exc.errors.items():
                    form.add_error(field if field in form.fields else None, errors)
            except SkillError as exc:
                form.add_error(None, exc.message)
            else:
                url = reverse("admin:skills_skillrun_change", args=[run.pk])
                if run.status == RunStatus.REFUSED:
                    self.message_user(request, f"Run #{run.pk} refused: {run.refusal_reason}", messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"Run #{run.pk} of {contract.name} queued; ${run.reserved_usd:.4f} reserved "
                        "against the budget.",
                        messages.SUCCESS,
                    )
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Start {contract.name}",
            "contract": contract,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/skills/start.html", context)


@admin.register(SkillSchedule, site=tenant_site)
class SkillScheduleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "skill",
        "every",
        "at_hour",
        "at_minute",
        "execution_mode",
        "enabled",
        "next_run_at",
        "last_run_at",
    )
    list_filter = ("enabled", "every")
    search_fields = ("name", "skill")
    readonly_fields = ("next_run_at", "last_run_at", "created_at")
    fields = (
        "name",
        "skill",
        "inputs",
        "execution_mode",
        "every",
        "at_hour",
        "at_minute",
        "enabled",
        "next_run_at",
        "last_run_at",
        "created_at",
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        from django import forms

        if db_field.name == "skill":
            return forms.ChoiceField(choices=registry.skill_choices(), label="Skill")
        if db_field.name == "execution_mode":
            return forms.ChoiceField(
                choices=[(m, m) for m in ("suggest", "preview", "execute")], label="Execution mode"
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        schedule_save(schedule=obj, acting_user=request.user)
