"""The canary: a synthetic lead through every skill and the release policy, inside a transaction
that is rolled back, reporting each guardrail it hit. Nothing it does remains, and nothing leaves
the console: proposals are rolled back before any worker could see them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from skills import registry
from skills.errors import SkillError
from skills.models import SkillRun, Trigger


class _Rollback(Exception):
    pass


@dataclass
class CanaryResult:
    skill: str
    status: str = ""
    guardrails: list[str] = field(default_factory=list)
    score: str = ""
    decision: str = ""
    cost_usd: str = ""
    proposals: list[dict[str, Any]] = field(default_factory=list)


def _synthetic_lead():
    from campaigns.models import Lead

    tag = uuid.uuid4().hex[:8]
    return Lead.objects.create(
        email=f"canary-{tag}@canary-prospect.example",
        first_name="Casey",
        last_name="Canary",
        company="Canary Prospect Ltd",
        company_domain="canary-prospect.example",
        title="VP Sales",
        seniority="VP",
        industry="SaaS",
        company_size=120,
        country="Germany",
        data_source="canary",
    )


def canary_run(*, acting_user=None) -> list[CanaryResult]:
    """Run every skill once over a synthetic lead (in the current tenant) and roll it all back."""
    from skills.services.runner import skill_run_execute, skill_run_start

    results: list[CanaryResult] = []
    try:
        with transaction.atomic():
            lead = _synthetic_lead()
            for skill in registry.all_skills():
                contract = skill.contract
                result = CanaryResult(skill=contract.slug)
                results.append(result)
                try:
                    with transaction.atomic():
                        run = skill_run_start(
                            skill=contract.slug,
                            inputs=skill.canary_inputs(lead),
                            execution_mode=contract.default_mode,
                            idempotency_key=f"canary:{contract.slug}:{uuid.uuid4().hex}",
                            trigger=Trigger.CANARY,
                        )
                        if run.status == "queued":
                            skill_run_execute(run.pk)
                        run = SkillRun.objects.get(pk=run.pk)
                except SkillError as exc:
                    result.status = "refused"
                    result.guardrails.append(f"refused at start: {exc.message}")
                    continue
                _report(result, run)
            raise _Rollback
    except _Rollback:
        pass
    return results


def _report(result: CanaryResult, run: SkillRun) -> None:
    result.status = run.status
    result.score = f"{run.evaluation_score}" if run.evaluation_score is not None else "—"
    result.decision = run.release_decision or "—"
    result.cost_usd = f"{run.cost_usd:.6f}"
    if run.refusal_reason:
        result.guardrails.append(f"refused: {run.refusal_reason}")
    if run.error:
        result.guardrails.append(f"error: {run.error}")
    for warning in run.data_warnings or []:
        result.guardrails.append(f"data: {warning}")
    if run.fallback:
        result.guardrails.append(f"failure mode: {run.fallback}")
    if run.release_decision and run.release_decision != "auto_deliver":
        for reason in run.release_reasons or []:
            result.guardrails.append(f"release policy ({run.release_decision}): {reason}")
    for proposal in (run.output or {}).get("_proposals") or []:
        result.proposals.append(proposal)
        if proposal.get("refused"):
            result.guardrails.append(f"gate: {proposal['kind']} refused: {proposal['refused']}")
        elif proposal.get("status") not in (None, "pending", "approved"):
            result.guardrails.append(f"phase: {proposal['kind']} ended {proposal['status']}")
