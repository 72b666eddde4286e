"""Shapes of the skills API: contracts, runs with their steps, evaluation and proposals."""

from __future__ import annotations

from rest_framework import serializers

from skills.models import SkillRun, SkillRunStep


class StartRunSerializer(serializers.Serializer):
    inputs = serializers.DictField(required=False, default=dict)
    execution_mode = serializers.CharField(required=False, allow_blank=True, default="", max_length=16)
    idempotency_key = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = SkillRunStep
        fields = (
            "order",
            "name",
            "attempt",
            "status",
            "started_at",
            "finished_at",
            "duration_ms",
            "llm_calls",
            "input_tokens",
            "output_tokens",
            "cached_input_tokens",
            "cost_usd",
            "error",
        )


class SkillRunSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)
    evaluation = serializers.SerializerMethodField()
    proposals = serializers.SerializerMethodField()

    class Meta:
        model = SkillRun
        fields = (
            "id",
            "skill",
            "skill_version",
            "status",
            "refusal_reason",
            "error",
            "execution_mode",
            "trigger",
            "inputs",
            "idempotency_key",
            "correlation_id",
            "parent",
            "redo_of_request",
            "instructions",
            "attempts",
            "refinements",
            "fallback",
            "validated",
            "data_warnings",
            "provider",
            "model",
            "reserved_usd",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "cached_input_tokens",
            "evaluation_score",
            "release_decision",
            "release_reasons",
            "evaluation",
            "proposals",
            "output",
            "steps",
            "created_at",
            "started_at",
            "finished_at",
            "deadline_at",
        )
        read_only_fields = fields

    def get_evaluation(self, run: SkillRun) -> dict | None:
        from skills.selectors import latest_evaluation

        evaluation = latest_evaluation(run)
        if evaluation is None:
            return None
        return {
            "score": float(evaluation.score),
            "score_used": float(evaluation.score_used),
            "passed": evaluation.passed,
            "dimensions": evaluation.dimensions,
        }

    def get_proposals(self, run: SkillRun) -> list:
        return (run.output or {}).get("_proposals") or []
