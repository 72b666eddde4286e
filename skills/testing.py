"""Run one skill's own logic in the current tenant without the runner: for golden tests
(inputs → expected output) that should not depend on budgets, queues or evaluation."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from skills import registry
from skills.base import EvaluationSubject, ProposedAction, Records
from skills.models import SkillRun
from skills.providers import LlmProvider, OfflineProvider
from skills.services.context import RunContext


@dataclass
class Exercise:
    run: SkillRun
    records: Records
    output: dict[str, Any]
    subject: EvaluationSubject
    actions: list[ProposedAction]


def skill_exercise(
    slug: str, inputs: dict[str, Any], *, provider: LlmProvider | None = None, instructions: str = ""
) -> Exercise:
    """Load, run and package ``slug`` once (call inside a tenant's schema context)."""
    skill = registry.get(slug)
    contract = skill.contract
    registry.validate_inputs(contract, inputs)
    run = SkillRun.objects.create(
        skill=slug,
        skill_version=contract.version,
        inputs=inputs,
        execution_mode=contract.default_mode,
        idempotency_key=f"exercise:{uuid.uuid4()}",
        status="running",
    )
    ctx = RunContext(
        run=run,
        contract=contract,
        provider=provider or OfflineProvider(),
        deadline=time.monotonic() + contract.sla.max_seconds,
        instructions=instructions,
        charge=False,
    )
    records = skill.load(ctx, inputs)
    output = skill.run(ctx, inputs, records)
    return Exercise(
        run=run,
        records=records,
        output=output,
        subject=skill.subject(output, records),
        actions=skill.actions(ctx, output, records),
    )
