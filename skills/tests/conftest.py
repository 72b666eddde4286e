"""A test skill whose behaviour the inputs steer (failures, time-outs, data), registered only for
the test that asks for it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from skills import registry
from skills.base import EvaluationSubject, ProposedAction, Records, Skill
from skills.contracts import (
    CostTarget,
    DataRequirements,
    FailureMode,
    LlmBudget,
    ReviewTriggers,
    SkillContract,
    Sla,
)
from skills.errors import ProviderError
from skills.providers import LlmRequest
from skills.services.context import DataUnavailable

ECHO_CONTRACT = SkillContract(
    slug="test-echo",
    name="Test echo",
    description="Writes one short email per recipient; the inputs steer its failures.",
    version="1",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["recipients"],
        "properties": {
            "recipients": {"type": "array", "items": {"type": "string"}, "minItems": 0, "maxItems": 20},
            "fail_attempts": {"type": "integer", "minimum": 0, "maximum": 5},
            "bad_output_attempts": {"type": "integer", "minimum": 0, "maximum": 5},
            "steps": {"type": "integer", "minimum": 1, "maximum": 10},
            "unavailable": {"type": "boolean"},
            "body": {"type": "string", "maxLength": 500},
        },
    },
    output_schema={
        "type": "object",
        "required": ["emails"],
        "properties": {
            "emails": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["to", "subject", "body"],
                    "properties": {
                        "to": {"type": "string"},
                        "subject": {"type": "string"},
                        "body": {"type": "string"},
                    },
                },
            }
        },
    },
    modes=("suggest", "preview", "execute"),
    default_mode="execute",
    sla=Sla(expected_seconds=5, max_seconds=60, p95_target_seconds=10),
    retry_budget=1,
    data=DataRequirements(min_records=1, required_coverage={"to": 1.0}, on_insufficient="refuse"),
    failure_modes=dict(FailureMode.FALLBACKS),
    review_triggers=ReviewTriggers(first_run_for_tenant=False, pii_present=True),
    action_kinds=("email.send",),
    cost=CostTarget(target_usd=Decimal("0.01"), max_usd=Decimal("0.10")),
    llm=LlmBudget(max_calls=3, max_input_tokens=2000, max_output_tokens=500),
)


class EchoSkill(Skill):
    contract = ECHO_CONTRACT
    example_inputs = {"recipients": ["lee@prospect.example"]}
    attempts_seen: list[int] = []

    def load(self, ctx, inputs) -> Records:
        if inputs.get("unavailable"):
            raise DataUnavailable("the CRM did not answer")
        return Records(items=[{"to": r} for r in inputs["recipients"]], source="inputs")

    def run(self, ctx, inputs, records) -> dict[str, Any]:
        EchoSkill.attempts_seen.append(ctx.attempt)
        emails: list[dict[str, Any]] = []
        for index in range(inputs.get("steps", 1)):
            with ctx.step(f"write {index + 1}"):
                if ctx.attempt <= inputs.get("fail_attempts", 0):
                    raise ProviderError("the model answered 529 overloaded")
                bad = ctx.attempt <= inputs.get("bad_output_attempts", 0)
                body = inputs.get("body") or "Hi,\nA short note about your pipeline."
                if "shorter" in (ctx.instructions or ""):
                    body = body.split("\n")[0]
                good = {
                    "emails": [{"to": r["to"], "subject": "Quick idea", "body": body} for r in records.items]
                }
                answer = ctx.llm_json(
                    LlmRequest(
                        purpose="test-echo.write",
                        system="Write a short email.",
                        prompt=f"Recipients: {records.items}",
                        max_tokens=300,
                        response_schema=ECHO_CONTRACT.output_schema,
                        offline_answer=(lambda: {"nope": True}) if bad else (lambda good=good: good),
                    )
                )
                emails = answer["emails"]
                ctx.checkpoint({"emails": emails, "steps_done": index + 1})
        return {"emails": emails}

    def subject(self, output, records) -> EvaluationSubject:
        return EvaluationSubject(
            kind="emails",
            items=[{"key": e["to"], **e} for e in output["emails"]],
            facts={e["to"]: {"email": e["to"]} for e in output["emails"]},
            expected_count=len(records.items),
            is_customer_facing=True,
        )

    def actions(self, ctx, output, records) -> list[ProposedAction]:
        return [
            ProposedAction(
                kind="email.send",
                payload={"to": e["to"], "subject": e["subject"], "body": e["body"]},
                key=e["to"],
                summary=f"First touch to {e['to']}",
                reasoning="The test asked for it.",
            )
            for e in output["emails"]
        ]

    def redo_inputs(self, parent_inputs, request):
        return {**parent_inputs, "recipients": [request.payload["to"]]}


@pytest.fixture
def echo_skill(db):
    # the offline model costs nothing in production; here it has a price, so that what a run
    # reserves and spends can be seen
    from datetime import timedelta

    from django.utils import timezone

    from tenants.models import ModelPrice

    ModelPrice.objects.create(
        model="offline-deterministic",
        input_usd_per_mtok=Decimal("1"),
        output_usd_per_mtok=Decimal("2"),
        cached_input_usd_per_mtok=Decimal("0.10"),
        effective_from=timezone.now() - timedelta(minutes=1),
    )
    registry._SKILLS[ECHO_CONTRACT.slug] = EchoSkill()
    EchoSkill.attempts_seen = []
    yield registry._SKILLS[ECHO_CONTRACT.slug]
    registry._SKILLS.pop(ECHO_CONTRACT.slug, None)
