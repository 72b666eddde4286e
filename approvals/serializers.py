"""Approval queue API: what a request looks like outside, and what each decision takes as input.

Input serializers only check shapes; the rules (four eyes, scopes, transitions, payload schemas)
are the services' and come back as ApprovalError with their own code and message.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework import serializers

from approvals.models import ActionRequest, Approval, Event, ExecutionMode, Impact, Status
from approvals.registry import kind_choices
from approvals.selectors import delegate_candidates

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

    EVALUATION_FIELDS = ("evaluation_score", "release_decision")

    def validate(self, attrs: dict) -> dict:
        # The evaluation is a skill run's verdict on its own output: a proposer who sends one is
        # told so (400) rather than having it silently dropped. auto_deliver would even skip every
        # approver in the autonomous phase.
        sent = [field for field in self.EVALUATION_FIELDS if field in getattr(self, "initial_data", {})]
        if sent:
            raise serializers.ValidationError(
                dict.fromkeys(
                    sent, "Set only by the evaluation of a skill run, never by the proposer: leave it out."
                )
            )
        return attrs


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
    """Needs ``context={"action_request": ..., "acting_user": ...}``: the colleague must be one of
    the request's delegate candidates (their role may approve its kind; not you, not the requester)."""

    to_user = serializers.SlugRelatedField(
        slug_field="username",
        queryset=User.objects.none(),
        help_text="Username of a colleague whose role may approve this kind (see .../delegates/).",
        error_messages={
            "does_not_exist": "{value} cannot take this request: delegate to a colleague whose role may "
            "approve its kind (not yourself, not the requester; see .../delegates/)."
        },
    )
    until = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Then the roster takes over again."
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=COMMENT_MAX)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request, user = self.context.get("action_request"), self.context.get("acting_user")
        if request is not None:
            self.fields["to_user"].queryset = delegate_candidates(
                [request.kind], exclude=[user, request.requested_by]
            )


class DelegateCandidateSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ("username", "first_name", "last_name", "email")
        read_only_fields = fields


class EditPayloadSerializer(serializers.Serializer):
    changes = serializers.DictField(
        allow_empty=False, help_text="Payload fields to replace; only the kind's editable fields."
    )
