"""The approval queue: action requests, their approvals and events, the roster, escalation."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from solo.models import SingletonModel

from approvals.registry import Scope, kind_choices
from connectors.crypto import EncryptedJSONField
from tenants.roles import Role


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    EXECUTING = "executing", "Executing"
    EXECUTED = "executed", "Executed"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    SHADOWED = "shadowed", "Shadowed (not sent: shadow phase)"
    BLOCKED = "blocked", "Blocked by release policy"
    # The effect may have happened (SMTP error after DATA, a vendor time-out after sending, a
    # worker killed mid-call): never retried blindly; an operator checks and resolves it.
    UNKNOWN = "unknown", "Outcome unknown"


OPEN_STATUSES = (Status.PENDING, Status.APPROVED, Status.EXECUTING)
# The outcomes the home pages chart per day (events whose to_status is one of these).
OUTCOME_STATUSES = ("approved", "rejected", "executed", "failed")
TERMINAL_STATUSES = tuple(s for s in Status if s not in OPEN_STATUSES)
# Outcomes an operator may act on: re-queue (run again) or resolve (record what really happened).
RESOLVABLE_STATUSES = (Status.FAILED, Status.UNKNOWN)


class Impact(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class ReleaseDecision(models.TextChoices):
    AUTO_DELIVER = "auto_deliver", "Auto deliver"
    AUTO_REFINE = "auto_refine", "Auto refine"
    HUMAN_REVIEW = "human_review", "Human review"
    BLOCKED = "blocked", "Blocked"


class ExecutionMode(models.TextChoices):
    SUGGEST = "suggest", "Suggest"
    PREVIEW = "preview", "Preview"
    EXECUTE = "execute", "Execute"


class ActionRequest(models.Model):
    """One external side effect somebody or something wants; nothing happens until it is let through."""

    kind = models.CharField(max_length=64, choices=kind_choices())
    payload = models.JSONField()
    original_payload = models.JSONField(null=True, blank=True, help_text="As proposed, before edits.")
    payload_diff = models.JSONField(default=dict, blank=True)
    target = models.CharField(max_length=254, blank=True, db_index=True)
    execution_mode = models.CharField(
        max_length=16, choices=ExecutionMode.choices, default=ExecutionMode.EXECUTE
    )

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_skill_run = models.CharField(max_length=64, blank=True)
    skill_run = models.ForeignKey(
        "skills.SkillRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    summary = models.CharField(max_length=300, blank=True, help_text="One line: what this does.")
    reasoning = models.TextField(blank=True, help_text="Why the skill proposed it.")

    impact_level = models.CharField(max_length=16, choices=Impact.choices, default=Impact.LOW)
    risk_flags = models.JSONField(default=list, blank=True)
    evaluation_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    release_decision = models.CharField(max_length=16, choices=ReleaseDecision.choices, blank=True)
    # parallel phase: what the AI alone would have done, compared later with the human decision
    ai_decision = models.CharField(max_length=16, blank=True)

    idempotency_key = models.CharField(max_length=200, unique=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    deadline = models.DateTimeField()

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_role = models.CharField(max_length=32, choices=Role.tenant_choices(), blank=True)
    delegated_until = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField()
    escalation_level = models.PositiveSmallIntegerField(default=1)
    escalated_at = models.DateTimeField(null=True, blank=True)

    not_before = models.DateTimeField(
        null=True, blank=True, help_text="Deferred by a limit: not executed before this time."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    rejection_reason = models.TextField(blank=True)
    redo_instructions = models.TextField(blank=True)
    redo_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="redos"
    )
    cancel_reason = models.CharField(max_length=500, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("deadline", "id")
        permissions = (
            *Scope.ALL,
            ("resolve_execution", "Can re-queue or resolve a failed or unknown-outcome request"),
            ("propose_action", "Can propose an action (it still waits for an approver)"),
        )
        indexes = [
            # the queue: open requests by deadline, and "my queue"
            # INCLUDE lets the filtered queue pages (mine, overdue) count from the index alone
            models.Index(
                fields=("status", "deadline", "id"),
                name="approvals_queue_idx",
                include=("sla_due_at", "assigned_to", "assigned_role"),
            ),
            models.Index(
                fields=("not_before",), name="approvals_deferred_idx", condition=Q(status="approved")
            ),
            # the agreement rate (parallel phase): the last 30 days' decisions the AI also made,
            # counted from the index alone however many older ones there are
            models.Index(
                fields=("decided_at",),
                name="approvals_agreement_idx",
                include=("ai_decision", "status"),
                condition=Q(ai_decision__in=("approve", "reject")),
            ),
            models.Index(fields=("assigned_to", "status", "deadline"), name="approvals_mine_idx"),
            models.Index(
                fields=("sla_due_at",), name="approvals_pending_sla_idx", condition=Q(status="pending")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(approvals_required__in=(1, 2)), name="%(app_label)s_%(class)s_approvals_1_or_2"
            ),
            models.CheckConstraint(
                condition=Q(escalation_level__gte=1, escalation_level__lte=4),
                name="%(app_label)s_%(class)s_escalation_level_range",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} → {self.target or '—'}"

    @property
    def is_overdue(self) -> bool:
        return self.status == Status.PENDING and self.sla_due_at < timezone.now()


class Approval(models.Model):
    """One person's approval of a request (critical requests need two distinct ones)."""

    request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("request", "approver"), name="%(app_label)s_%(class)s_once_each")
        ]

    def __str__(self) -> str:
        return f"approval of #{self.request_id} by {self.approver_id}"


class Event(models.Model):
    """The request's timeline: every transition, edit, delegation and escalation."""

    request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=254, blank=True, help_text="'system' or a skill run.")
    verb = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    comment = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")
        indexes = [
            models.Index(fields=("request", "created_at"), name="approvals_event_req_idx"),
            # the home pages count outcomes per day and in the last 24 h from this alone
            models.Index(
                fields=("created_at", "to_status"),
                name="approvals_event_outcome_idx",
                condition=Q(to_status__in=OUTCOME_STATUSES),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verb} {self.from_status}→{self.to_status}"

    @property
    def delegated_to(self) -> str:
        """Whom a "delegated" event handed the request to ("" for other events)."""
        if self.verb != "delegated" or not isinstance(self.data, dict):
            return ""
        return str(self.data.get("to") or "")

    @property
    def delegated_until(self) -> datetime | None:
        """Until when that delegation runs (None: until someone decides)."""
        if not self.delegated_to or not self.data.get("until"):
            return None
        try:
            return datetime.fromisoformat(self.data["until"])
        except (TypeError, ValueError):
            return None


class ApproverRule(models.Model):
    """Roster: who approves which kind at which impact level, and within how long."""

    kind = models.CharField(max_length=64, choices=kind_choices(), blank=True, help_text="Empty: any kind.")
    impact_level = models.CharField(
        max_length=16, choices=Impact.choices, blank=True, help_text="Empty: any level."
    )
    primary_role = models.CharField(max_length=32, choices=Role.tenant_choices(), default=Role.AE)
    primary_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    backup_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sla_minutes = models.PositiveIntegerField(default=240)
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower wins when several match.")

    class Meta:
        ordering = ("priority", "id")

    def __str__(self) -> str:
        scope = f"{self.kind or 'any kind'} / {self.impact_level or 'any impact'}"
        return f"{scope} → {self.get_primary_role_display()}"


class EscalationPolicy(SingletonModel):
    """Escalation L1 handler → L2 team lead → L3 manager → L4 executive, and where to notify."""

    l2_after_minutes = models.PositiveIntegerField(default=4 * 60)
    l3_after_minutes = models.PositiveIntegerField(default=8 * 60)
    l4_after_minutes = models.PositiveIntegerField(default=24 * 60)
    l2_contact = models.EmailField(blank=True, help_text="Team lead.")
    l3_contact = models.EmailField(blank=True, help_text="Manager.")
    l4_contact = models.EmailField(blank=True, help_text="Executive.")
    # A secret (whoever has it posts into the channel): encrypted, write-only in the admin, masked in
    # the audit log (approvals.audit). https only, checked by the admin form.
    slack_webhook_url = EncryptedJSONField(blank=True, default="", help_text="Slack incoming webhook.")
    default_deadline_hours = models.PositiveIntegerField(default=72)

    class Meta:
        verbose_name = "escalation policy"
        verbose_name_plural = "escalation policy"

    def __str__(self) -> str:
        return "Escalation policy"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if not (self.l2_after_minutes < self.l3_after_minutes < self.l4_after_minutes):
            raise ValidationError({"l3_after_minutes": "Delays must grow: L2 < L3 < L4."})

    def delay_for(self, level: int) -> int:
        return {2: self.l2_after_minutes, 3: self.l3_after_minutes, 4: self.l4_after_minutes}[level]

    def contact_for(self, level: int) -> str:
        return {2: self.l2_contact, 3: self.l3_contact, 4: self.l4_contact}.get(level, "")


class ExecutedEffect(models.Model):
    """The `log` executor's effect, unique by idempotency key: proof an effect happened once."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=64)
    payload = models.JSONField()
    executed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.idempotency_key
