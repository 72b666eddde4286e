"""Admin for evaluations (read-only: they are records of what was judged) and the tenant's judge
settings."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from solo.admin import SingletonModelAdmin

from approvals.models import ReleaseDecision
from evaluation.display import dimensions_table
from evaluation.models import Evaluation, EvaluationSettings, SubjectKind
from mh1.admin_search import Exact, VolumeAdminMixin, fixed_choices_filter
from mh1.admin_sites import tenant_site


def _digits(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 19 else None


@admin.register(Evaluation, site=tenant_site)
class EvaluationAdmin(VolumeAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "run_link",
        "request_link",
        "subject_kind",
        "content_kind",
        "score_used",
        "score",
        "passed",
        "srac_score",
        "decision",
        "created_at",
    )
    list_filter = (
        fixed_choices_filter("decision", ReleaseDecision.choices),
        fixed_choices_filter("subject_kind", SubjectKind.choices),
        "passed",
        "srac_passed",
        fixed_choices_filter("ai_washing_severity", ["none", "low", "medium", "high"]),
    )
    exact_search_fields = (Exact("pk", _digits), Exact("run_id", _digits), Exact("request_id", _digits))
    ordering = ("-created_at", "-id")
    fieldsets = (
        (
            "Verdict",
            {
                "fields": (
                    "run_link",
                    "request_link",
                    "original",
                    "subject_kind",
                    "content_kind",
                    "score",
                    "score_used",
                    "passed",
                    "decision",
                    "decision_reasons",
                    "dimensions_display",
                    "srac_score",
                    "srac_passed",
                    "ai_washing_severity",
                    "risk_flags",
                    "pii_found",
                )
            },
        ),
        ("Issues and suggestions", {"fields": ("issues_display", "suggestions")}),
        (
            "Judge (for a replay)",
            {
                "classes": ("collapse",),
                "fields": (
                    "judge_provider",
                    "judge_model",
                    "judge_runs",
                    "judge_scores",
                    "judge_spread",
                    "judge_errors",
                    "judge_input_tokens",
                    "judge_output_tokens",
                    "rubric_version",
                    "rubric_hash",
                    "prompt_hash",
                    "messaging_pack_version",
                    "tokens_used",
                    "token_budget",
                    "created_at",
                ),
            },
        ),
        ("What was evaluated", {"classes": ("collapse",), "fields": ("output_pretty",)}),
    )
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="run")
    def run_link(self, obj: Evaluation):
        if not obj.run_id:
            return "—"
        return format_html(
            '<a href="{}">run #{}</a>', reverse("admin:skills_skillrun_change", args=[obj.run_id]), obj.run_id
        )

    @admin.display(description="request")
    def request_link(self, obj: Evaluation):
        if not obj.request_id:
            return "—"
        url = reverse("admin:approvals_actionrequest_change", args=[obj.request_id])
        return format_html('<a href="{}">request #{}</a>', url, obj.request_id)

    @admin.display(description="dimensions")
    def dimensions_display(self, obj: Evaluation):
        return dimensions_table(obj.dimensions)

    @admin.display(description="issues")
    def issues_display(self, obj: Evaluation):
        if not obj.issues:
            return "None."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><strong>{}</strong> · {} · {}</li>",
                ((i.get("severity", ""), i.get("dimension", ""), i.get("message", "")) for i in obj.issues),
            ),
        )

    @admin.display(description="output")
    def output_pretty(self, obj: Evaluation):
        return format_html("<pre>{}</pre>", json.dumps(obj.output, indent=2, ensure_ascii=False, default=str))


@admin.register(EvaluationSettings, site=tenant_site)
class EvaluationSettingsAdmin(SingletonModelAdmin):
    fields = ("judge_runs", "judge_model", "updated_at")
    readonly_fields = ("updated_at",)
