from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from tenants.policy.models import Heartbeat, IcpDefinition, QuotaPolicy, RolloutSettings, SendingPolicy


class PolicySerializer(serializers.ModelSerializer):
    """Runs the model's own validation, so the API and the admin forms refuse the same input."""

    def validate(self, attrs):
        instance = self.instance or self.Meta.model()
        candidate = self.Meta.model(
            **{
                **{f.attname: getattr(instance, f.attname) for f in self.Meta.model._meta.concrete_fields},
                **attrs,
            }
        )
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        # what the model made canonical (trimmed lists, canonical addresses) is what is saved
        return {name: getattr(candidate, name) for name in attrs}


class RolloutSettingsSerializer(PolicySerializer):
    class Meta:
        model = RolloutSettings
        fields = (
            "phase",
            "kill_switch",
            "kill_switch_reason",
            "safe_mode",
            "agreement_override_reason",
            "updated_at",
        )
        read_only_fields = ("updated_at",)


class IcpDefinitionSerializer(PolicySerializer):
    class Meta:
        model = IcpDefinition
        exclude = ("id",)
        read_only_fields = ("updated_at",)


class QuotaPolicySerializer(PolicySerializer):
    class Meta:
        model = QuotaPolicy
        exclude = ("id",)
        read_only_fields = ("updated_at",)


class SendingPolicySerializer(PolicySerializer):
    class Meta:
        model = SendingPolicy
        exclude = ("id",)
        read_only_fields = ("updated_at",)


class HeartbeatSerializer(serializers.ModelSerializer):
    class Meta:
        model = Heartbeat
        fields = ("id", "ran_at", "worker", "task_id")
