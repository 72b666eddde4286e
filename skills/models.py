"""Skill runs, their steps and the schedules RevOps edits; all in the tenant's schema."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partial (time-out or a failed step: the last good result)"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused (nothing ran, nothing was spent)"


OPEN_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class Trigger(models.TextChoices):
    ADMIN = "admin", "Admin form"
    API = "api", "API"
    SCHEDULE = "schedule", "Schedule"
    REDO = "redo", "Redo after a rejection"
    EDIT = "edit", "Re-evaluation of an edit"
    CANARY = "canary", "Canary"
    WEBHOOK = "webhook", "Vendor webhook"
    SYSTEM = "system", "System"


class SkillRun(models.Model):
    """One run of one skill: inputs, steps, cost, output, its evaluation and release decision."""

    skill = models.CharField(max_length=64, db_index=True)
    skill_version = models.CharField(max_length=32)
    inputs = models.JSONField(default=dict)
    execution_mode = models.CharField(max_length=16)
    idempotency_key = models.CharField(max_length=200, unique=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.ADMIN)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    schedule = models.ForeignKey(
        "SkillSchedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    # a redo after a rejection (with the AE's instructions) or an auto-refine keeps its lineage
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    redo_of_request = models.ForeignKey(
        "approvals.ActionRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="redo_runs"
    )
    instructions = models.TextField(blank=True, help_text="Redo instructions or the evaluator's suggestions.")

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    refusal_reason = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    refinements = models.PositiveSmallIntegerField(default=0)
    fallback = models.CharField(
        max_length=32, blank=True, help_text="The contract's failure mode applied, if any."
    )
    validated = models.BooleanField(default=True, help_text="False: raw output flagged UNVALIDATED.")
    data_warnings = models.JSONField(default=list, blank=True)

    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=100, blank=True)
    reserved_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)

    output = models.JSONField(null=True, blank=True)
    evaluation_score = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    release_decision = models.CharField(max_length=16, blank=True)
    release_reasons = models.JSONField(default=list, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True, help_text="Started + the SLA's maximum.")

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["status", "deadline_at"], name="skills_run_open_deadline"),
            models.Index(fields=["skill", "-created_at"], name="skills_run_skill_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="%(app_label)s_%(class)s_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(cost_usd__gte=0), name="%(app_label)s_%(class)s_cost_not_negative"
            ),
        ]
        permissions = [("start_skillrun", "Can start skill runs")]

    def __str__(self) -> str:
        return f"{self.skill} #{self.pk} ({self.status})"

    @property
    def budget_key(self) -> str:
        return f"run:{self.pk}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class SkillRunStep(models.Model):
    """One step of a run, with its timing and what its model calls cost."""

    run = models.ForeignKey(SkillRun, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, default="running")  # running, ok, failed, timed_out
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    llm_calls = models.PositiveSmallIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    detail = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("run", "order")
        constraints = [
            models.UniqueConstraint(fields=["run", "order"], name="%(app_label)s_%(class)s_one_per_order"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.order} {self.name}"


class Every(models.TextChoices):
    HOUR = "hour", "Every hour"
    DAY = "day", "Every day"
    WEEK = "week", "Every week (Mondays)"


class SkillSchedule(models.Model):
    """When a skill runs on its own for this tenant; one beat job fans out over tenants and finds
    the schedules that are due."""

    skill = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    inputs = models.JSONField(default=dict, blank=True)
    execution_mode = models.CharField(max_length=16, default="execute")
    every = models.CharField(max_length=8, choices=Every.choices, default=Every.DAY)
    at_hour = models.PositiveSmallIntegerField(
        default=7, validators=[MaxValueValidator(23)], help_text="UTC."
    )
    at_minute = models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(59)]
    )
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("skill", "name")
        constraints = [
            models.UniqueConstraint(fields=["skill", "name"], name="%(app_label)s_%(class)s_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.skill}, {self.get_every_display().lower()})"

    def clean(self) -> None:
        from skills import registry
        from skills.errors import InputsInvalid, UnknownSkill

        try:
            skill = registry.get(self.skill)
        except UnknownSkill as exc:
            raise ValidationError({"skill": exc.message}) from exc
        if self.execution_mode not in skill.contract.modes:
            raise ValidationError(
                {"execution_mode": f"{self.skill} supports {', '.join(skill.contract.modes)} only."}
            )
        try:
            registry.validate_inputs(skill.contract, self.inputs)
        except InputsInvalid as exc:
            raise ValidationError({"inputs": exc.message}) from exc
