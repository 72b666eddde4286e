"""Approval queue API: what a request looks like outside, and what each decision takes as input.

Input serializers only check shapes; the rules (four eyes, scopes, transitions, payload schemas)
are the services' and come back as ApprovalError with their own code and message.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework import serializers

from approvals.models import ActionRequest, Approval, Event, ExecutionMode, Impact, ReleaseDecision, Status
from approvals.registry import kind_choices

COMMENT_MAX = 5000


# --- output ------------------------------------------------------------------------------------


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ("verb", "from_status", "to_status", "actor_label", "comment", "created_at")
        read_only_fields = fields


class ApprovalSerializer(serializers.ModelSerializer):
    approver = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Approval
        fields = ("approver", "created_at")
        read_only_fields = fields


class ActionRequestSerializer(serializers.ModelSerializer):
    """A row of the queue; needs ``select_related("assigned_to", "requested_by")``."""

    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    assigned_to = serializers.SlugRelatedField(slug_field="username", read_only=True)
    is_overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = ActionRequest
        fields = (
            "id",
            "kind",
            "kind_label",
            "status",
            "target",
            "payload",
            "execution_mode",
            "impact_level",
            "risk_flags",
            "evaluation_score",
            "release_decision",
            "requested_by",
            "requested_by_skill_run",
            "assigned_to",
            "assigned_role",
            "delegated_until",
            "approvals_required",
            "deadline",
            "sla_due_at",
            "is_overdue",
            "escalation_level",
            "created_at",
            "decided_at",
            "executed_at",
        )
        read_only_fields = fields


class ActionRequestDetailSerializer(ActionRequestSerializer):
    """One request with its timeline and approvals; needs the prefetches of the detail queryset."""

    events = EventSerializer(many=True, read_only=True)
    approvals = ApprovalSerializer(many=True, read_only=True)

    class Meta(ActionRequestSerializer.Meta):
        fields = (
            *ActionRequestSerializer.Meta.fields,
            "original_payload",
            "payload_diff",
            "idempotency_key",
            "correlation_id",
            "attempts",
            "max_attempts",
            "result",
            "error",
            "rejection_reason",
            "redo_instructions",
            "redo_of",
            "cancel_reason",
            "updated_at",
            "approvals",
            "events",
        )
        read_only_fields = fields


# --- input -------------------------------------------------------------------------------------


class QueueFilterSerializer(serializers.Serializer):
    """Query parameters of the queue list."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    kind = serializers.ChoiceField(choices=kind_choices(), required=False)
    impact_level = serializers.ChoiceField(choices=Impact.choices, required=False)
    mine = serializers.BooleanField(
        required=False, default=False, help_text="1: only pending requests waiting for me (or my role)."
    )
    overdue = serializers.BooleanField(
        required=False, default=False, help_text="1: only pending requests past their SLA."
    )


class ProposeSerializer(serializers.Serializer):
    # kind stays a free string: the registry answers an unknown kind with the list of known ones.
    kind = serializers.CharField(max_length=64)
    payload = serializers.JSONField(help_text="Must match the kind's JSON schema.")
    idempotency_key = serializers.CharField(max_length=200)
    execution_mode = serializers.ChoiceField(choices=ExecutionMode.choices, default=ExecutionMode.EXECUTE)
    release_decision = serializers.ChoiceField(
        choices=ReleaseDecision.choices, required=False, allow_blank=True, default=""
    )
    evaluation_score = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True, default=None
    )

    def validate_release_decision(self, value: str) -> str:
        # In the autonomous phase auto_deliver skips every approver; a person calling the API must
        # not be able to claim it for their own proposal (that is the evaluator's verdict).
        if value == ReleaseDecision.AUTO_DELIVER:
            raise serializers.ValidationError(
                "auto_deliver is only set by the evaluation of a skill run; "
                "a proposal made through the API always waits for an approver."
            )
        return value


class ApproveSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=COMMENT_MAX)


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=COMMENT_MAX)
    redo_instructions = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=COMMENT_MAX,
        help_text="What the skill should do differently if it proposes again.",
    )


class DelegateSerializer(serializers.Serializer):
    to_user = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.all(), help_text="Username of the colleague."
    )
    until = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Then the roster takes over again."
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=COMMENT_MAX)


class EditPayloadSerializer(serializers.Serializer):
    changes = serializers.DictField(
        allow_empty=False, help_text="Payload fields to replace; only the kind's editable fields."
    )
