"""Evaluations of skill outputs and of people's edits, and the tenant's judge setting; all in the
tenant's schema."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from solo.models import SingletonModel

from approvals.models import ReleaseDecision
from evaluation.dimensions import AiWashing

JUDGE_RUNS_MIN = 1
JUDGE_RUNS_MAX = 7  # more samples cost more than they narrow the bound: the 7th moves it little


class SubjectKind(models.TextChoices):
    OUTPUT = "output", "Skill output"
    EDIT = "edit", "A person's edit before approval"


class EvaluationSettings(SingletonModel):
    """How the tenant's LLM judge is asked. The pass threshold is deliberately not here: it is one
    number for every tenant (``evaluation.dimensions.PASS_THRESHOLD``), so a tenant cannot lower
    the bar its own outputs must clear."""

    judge_runs = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(JUDGE_RUNS_MIN), MaxValueValidator(JUDGE_RUNS_MAX)],
        help_text=(
            f"How many times the judge scores each output ({JUDGE_RUNS_MIN}-{JUDGE_RUNS_MAX}). The release "
            "policy uses the lowest of these scores; more runs cost more model calls."
        ),
    )
    judge_model = models.CharField(
        max_length=100,
        blank=True,
        help_text="The model that judges (e.g. claude-sonnet-4-5); empty: the provider's default.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "evaluation settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(judge_runs__gte=JUDGE_RUNS_MIN, judge_runs__lte=JUDGE_RUNS_MAX),
                name="%(app_label)s_%(class)s_judge_runs_range",
            ),
        ]

    def __str__(self) -> str:
        return "Evaluation settings"


class Evaluation(models.Model):
    """One evaluation of a skill's output (or of a person's edit of it): every dimension's score
    and why, the judge's runs, and everything needed to replay it."""

    run = models.ForeignKey(
        "skills.SkillRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluations"
    )
    request = models.ForeignKey(
        "approvals.ActionRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="evaluations",
        help_text="The request whose edit this evaluates.",
    )
    original = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="edits",
        help_text="An edit's evaluation: the evaluation of the AI output it changed.",
    )
    subject_kind = models.CharField(max_length=8, choices=SubjectKind.choices, default=SubjectKind.OUTPUT)
    content_kind = models.CharField(max_length=16, help_text="emails, scores, report or reply.")

    # what was evaluated, kept whole for replay
    subject = models.JSONField(default=dict, help_text="Items, facts per item, expected count.")
    output = models.JSONField(null=True, blank=True)
    output_schema = models.JSONField(default=dict, blank=True)
    voice_rules = models.JSONField(default=dict, blank=True, help_text="The messaging pack as applied.")
    messaging_pack_version = models.PositiveIntegerField(null=True, blank=True)
    tokens_used = models.PositiveIntegerField(default=0)
    token_budget = models.PositiveIntegerField(default=0)

    # the verdict
    dimensions = models.JSONField(
        default=dict, help_text="Per dimension: score, weight, reasons, deterministic and judge scores."
    )
    score = models.DecimalField(max_digits=5, decimal_places=4, help_text="Weighted score (mean judge).")
    score_used = models.DecimalField(
        max_digits=5, decimal_places=4, help_text="The lower bound the release policy uses."
    )
    passed = models.BooleanField()
    issues = models.JSONField(default=list, blank=True)
    suggestions = models.JSONField(default=list, blank=True)
    srac = models.JSONField(default=dict, blank=True, help_text="SRAC criteria, 1-5 each.")
    srac_score = models.DecimalField(max_digits=3, decimal_places=2)
    srac_passed = models.BooleanField()
    ai_washing = models.JSONField(default=dict, blank=True)
    ai_washing_severity = models.CharField(
        max_length=8, choices=[(v.value, v.value) for v in AiWashing], default=AiWashing.NONE
    )
    pii_found = models.JSONField(
        default=list, blank=True, help_text="Kinds and masked values, never the data."
    )
    risk_flags = models.JSONField(default=list, blank=True)

    # the judge
    judge_provider = models.CharField(max_length=32, blank=True)
    judge_model = models.CharField(max_length=100, blank=True)
    judge_runs = models.PositiveSmallIntegerField(default=0, help_text="Runs asked.")
    judge_scores = models.JSONField(default=list, blank=True, help_text="Weighted score of each run.")
    judge_spread = models.DecimalField(max_digits=5, decimal_places=4, default=0)
    judge_errors = models.JSONField(default=list, blank=True)
    judge_input_tokens = models.PositiveIntegerField(default=0)
    judge_output_tokens = models.PositiveIntegerField(default=0)
    rubric_version = models.CharField(max_length=16)
    rubric_hash = models.CharField(max_length=64)
    rubric = models.TextField(help_text="The rubric text the judge was given.")
    judge_prompt = models.TextField(blank=True)
    prompt_hash = models.CharField(max_length=64, db_index=True)

    # the release policy's outcome (release.release_decide)
    decision = models.CharField(max_length=16, choices=ReleaseDecision.choices, blank=True)
    decision_reasons = models.JSONField(default=list, blank=True)

    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["run", "-created_at"], name="evaluation_run_recent"),
            models.Index(fields=["request", "-created_at"], name="evaluation_request_recent"),
            models.Index(fields=["decision", "-created_at"], name="evaluation_decision_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=0, score__lte=1, score_used__gte=0, score_used__lte=1),
                name="%(app_label)s_%(class)s_score_range",
            ),
            models.CheckConstraint(
                condition=Q(score_used__lte=models.F("score")),
                name="%(app_label)s_%(class)s_lower_bound_not_above_score",
            ),
            models.CheckConstraint(
                condition=Q(srac_score__gte=1, srac_score__lte=5), name="%(app_label)s_%(class)s_srac_range"
            ),
            models.CheckConstraint(
                condition=Q(subject_kind=SubjectKind.OUTPUT) | Q(request__isnull=False),
                name="%(app_label)s_%(class)s_edit_has_request",
            ),
            models.CheckConstraint(
                condition=Q(decision="") | Q(decision__in=ReleaseDecision.values),
                name="%(app_label)s_%(class)s_decision_valid",
            ),
        ]

    def __str__(self) -> str:
        what = f"run #{self.run_id}" if self.run_id else f"request #{self.request_id}"
        return f"Evaluation #{self.pk} of {what} ({self.subject_kind})"

    @property
    def has_pii(self) -> bool:
        return bool(self.pii_found)
