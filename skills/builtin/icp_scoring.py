"""icp-scoring: score and tier leads against the tenant's ICP, with the reasons for each score.

The scoring is deterministic code (``campaigns.icp_rules``: weights, tier thresholds, exclusions,
the reasons' wording), so no model is asked and a run costs nothing. The skill only reads and
returns the scores; writing them to the lead rows is the run's output application step
(``campaigns.scoring.lead_scores_apply``, called by the runner in execute mode), and re-scoring
every lead after an ICP edit is a batched job of its own (``campaigns.scoring.leads_rescore``),
which scores in SQL exactly as this skill scores in Python.

In execute mode the skill also proposes a ``crm.add_tag`` (the tier's ``tier_N`` tag) for each lead
whose tier changed and that lives in a CRM (HubSpot or GoHighLevel); excluded leads (competitors,
customers) are never tagged.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from campaigns.icp_rules import (
    TIER_THRESHOLDS,
    WEIGHTS,
    IcpRules,
    lead_score,
    tier_tag,
)
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
from skills.registry import register
from skills.services.context import DataUnavailable

SLUG = "icp-scoring"
DEFAULT_LIMIT = 100
MAX_LEADS = 1000  # per run: the whole base is re-scored by campaigns.scoring.leads_rescore
# The lead fields the scoring reads (and the evaluation may see as facts).
LEAD_FIELDS = ("email", "company_domain", "company_size", "industry", "title", "seniority", "country")
CRM_SYSTEMS = ("hubspot", "gohighlevel")

_TIER = {"enum": ["A", "B", "C", "D"]}

CONTRACT = SkillContract(
    slug=SLUG,
    name="ICP scoring",
    description=(
        "Scores leads 0 to 100 against the ICP (company size, industry, title, seniority, geography), "
        "tiers them A to D, excludes competitors' and customers' domains, and gives the reasons."
    ),
    version="1",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "lead_ids": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 1,
                "maxItems": MAX_LEADS,
                "uniqueItems": True,
                "description": "These leads; or leave empty and choose a segment.",
            },
            "segment": {
                "enum": ["all", "unscored", "tier"],
                "description": "Which leads: all, those never scored, or those of one tier.",
            },
            "tier": {**_TIER, "description": "With segment “tier”: the tier to re-score."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LEADS, "default": DEFAULT_LIMIT},
        },
        "anyOf": [{"required": ["lead_ids"]}, {"required": ["segment"]}],
        "if": {"properties": {"segment": {"const": "tier"}}, "required": ["segment"]},
        "then": {"required": ["tier"]},
    },
    output_schema={
        "type": "object",
        "required": ["icp_updated_at", "weights", "tier_thresholds", "scores", "summary"],
        "properties": {
            "icp_updated_at": {"type": ["string", "null"]},
            "weights": {"type": "object", "additionalProperties": {"type": "integer"}},
            "tier_thresholds": {"type": "object", "additionalProperties": {"type": "integer"}},
            "scores": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["lead_id", "score", "tier", "reasons", "excluded"],
                    "properties": {
                        "lead_id": {"type": "integer"},
                        "score": {"type": "number", "minimum": 0, "maximum": 100},
                        "tier": _TIER,
                        "reasons": {"type": "array", "items": {"type": "string"}},
                        "excluded": {"type": "boolean"},
                        "previous_score": {"type": ["number", "null"]},
                        "previous_tier": {"type": "string"},
                    },
                },
            },
            "summary": {
                "type": "object",
                "required": ["count", "by_tier", "excluded", "tier_changed"],
                "properties": {
                    "count": {"type": "integer"},
                    "by_tier": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "excluded": {"type": "integer"},
                    "tier_changed": {"type": "integer"},
                    "missing_lead_ids": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
    },
    modes=("suggest", "preview", "execute"),
    default_mode="suggest",
    sla=Sla(expected_seconds=5, max_seconds=120, p95_target_seconds=15),
    retry_budget=1,
    # Scoring still works on thin data (an unknown field earns nothing and says so): warn only.
    data=DataRequirements(
        min_records=1, required_coverage={"company_size": 0.5, "industry": 0.5}, on_insufficient="warn"
    ),
    failure_modes=dict(FailureMode.FALLBACKS),
    review_triggers=ReviewTriggers(),
    action_kinds=("crm.add_tag",),
    cost=CostTarget(target_usd=Decimal("0.001"), max_usd=Decimal("0.01")),
    # Deterministic code: no model call, nothing reserved.
    llm=LlmBudget(max_calls=0, max_input_tokens=0, max_output_tokens=0),
)


def _score_number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@register
class IcpScoringSkill(Skill):
    contract = CONTRACT
    example_inputs = {"segment": "all", "limit": 5}

    def load(self, ctx, inputs: dict[str, Any]) -> Records:
        from django.db import DatabaseError

        from campaigns.models import Lead
        from tenants.policy.models import IcpDefinition

        fields = ("id", *LEAD_FIELDS, "icp_score", "icp_tier", "source_system")
        try:
            icp = IcpDefinition.get_solo()
            leads = Lead.objects.order_by("id")
            missing: list[int] = []
            if inputs.get("lead_ids"):
                wanted = list(inputs["lead_ids"])
                items = list(leads.filter(pk__in=wanted).values(*fields))
                found = {item["id"] for item in items}
                missing = [pk for pk in wanted if pk not in found]
            else:
                segment = inputs["segment"]
                if segment == "unscored":
                    leads = leads.filter(icp_score__isnull=True)
                elif segment == "tier":
                    leads = leads.filter(icp_tier=inputs["tier"])
                items = list(leads.values(*fields)[: inputs.get("limit", DEFAULT_LIMIT)])
        except DatabaseError as exc:
            raise DataUnavailable(f"the leads could not be read: {exc}") from exc
        return Records(
            items=items,
            source="campaigns.Lead",
            meta={
                "rules": IcpRules.of(icp),
                "icp_updated_at": icp.updated_at.isoformat() if icp.updated_at else None,
                "missing_lead_ids": missing,
            },
        )

    def run(self, ctx, inputs: dict[str, Any], records: Records) -> dict[str, Any]:
        rules: IcpRules = records.meta["rules"]
        scores: list[dict[str, Any]] = []
        with ctx.step("score"):
            for lead in records.items:
                result = lead_score(lead, rules)
                scores.append(
                    {
                        "lead_id": lead["id"],
                        **result.as_dict(),
                        "previous_score": _score_number(lead["icp_score"]),
                        "previous_tier": lead["icp_tier"],
                    }
                )
            ctx.checkpoint({"scores": scores})
        by_tier = Counter(entry["tier"] for entry in scores)
        return {
            "icp_updated_at": records.meta["icp_updated_at"],
            "weights": dict(WEIGHTS),
            "tier_thresholds": dict(TIER_THRESHOLDS),
            "scores": scores,
            "summary": {
                "count": len(scores),
                "by_tier": {tier: by_tier.get(tier, 0) for tier in "ABCD"},
                "excluded": sum(1 for entry in scores if entry["excluded"]),
                "tier_changed": sum(1 for entry in scores if entry["tier"] != entry["previous_tier"]),
                "missing_lead_ids": records.meta.get("missing_lead_ids", []),
            },
        }

    def subject(self, output: dict[str, Any], records: Records) -> EvaluationSubject:
        rules: IcpRules = records.meta["rules"]
        leads = {item["id"]: item for item in records.items}
        facts = {
            str(entry["lead_id"]): {
                **{name: leads[entry["lead_id"]].get(name) for name in LEAD_FIELDS},
                "icp_company_size_min": rules.size_min,
                "icp_company_size_max": rules.size_max,
            }
            for entry in output["scores"]
            if entry["lead_id"] in leads
        }
        return EvaluationSubject(
            kind="scores",
            items=[{"key": str(entry["lead_id"]), **entry} for entry in output["scores"]],
            facts=facts,
            expected_count=len(records.items),
            is_customer_facing=False,
        )

    def apply(self, ctx, output: dict[str, Any], records: Records) -> None:
        """The scores onto the lead rows, unless the ICP changed since the run read it."""
        from campaigns.scoring import lead_scores_apply

        lead_scores_apply(run_id=ctx.run.pk, scores=output["scores"], icp_updated_at=output["icp_updated_at"])

    def actions(self, ctx, output: dict[str, Any], records: Records) -> list[ProposedAction]:
        """In execute mode: the new tier's tag for each CRM lead whose tier changed. (There is no
        remove-tag kind: the old tier tag stays until the CRM's own rules drop it.)"""
        if ctx.run.execution_mode != "execute":
            return []
        leads = {item["id"]: item for item in records.items}
        proposed = []
        for entry in output["scores"]:
            lead = leads.get(entry["lead_id"])
            if (
                lead is None
                or entry["excluded"]
                or entry["tier"] == entry["previous_tier"]
                or lead["source_system"] not in CRM_SYSTEMS
            ):
                continue
            tag = tier_tag(entry["tier"])
            before = entry["previous_tier"] or "unscored"
            proposed.append(
                ProposedAction(
                    kind="crm.add_tag",
                    payload={"system": lead["source_system"], "email": lead["email"], "tag": tag},
                    key=f"lead:{lead['id']}:{tag}",
                    summary=f"Tag {lead['email']} {tag} (ICP tier {before} → {entry['tier']})",
                    reasoning="; ".join(entry["reasons"]),
                )
            )
        return proposed
