"""lifecycle-audit: where the tenant's leads sit in the lifecycle, which of them are stalled, which
customers are at risk or ready for an upsell, which MQLs are ready for sales (seed 000 §8.1's
handoff rules), and what to do about each, packaged as actions (seed 000 §7.3).

Deterministic code, no model: a run costs nothing and proposes nothing (it is a report; the
handoffs it names are for people to make).

The rules, in words (every number is a constant below, with where it comes from):

- **stage distribution**: leads per lifecycle stage, every stage of the tenant's taxonomy listed
  (zero included), then any stage value the taxonomy does not know.
- **days in stage**: the lead carries no stage-change date, so the days since the lead was last
  updated stand in for it (an update usually is a stage change or an activity). It can only
  understate how long a lead has sat, never overstate it.
- **stalled**: a lead of a pre-sale stage (not terminal, not customer) in the same stage longer
  than ``STALL_DAYS`` for that stage (``DEFAULT_STALL_DAYS`` for a stage of the tenant's own).
- **handoff candidate** (Marketing to Sales): a lead in the MQL stage, or the tenant's stage that
  stands for it, with an ICP score of at least ``HANDOFF_MIN_SCORE``.
- **at risk** and **upsell candidate**: customers (the customer stage and the stages after it),
  scored 0 to 1 by ``risk_score`` and ``upsell_score`` from ICP fit, inactivity and company size;
  at risk from ``AT_RISK_MIN``, upsell from ``UPSELL_MIN``.
- **recommendations**: one per finding that has leads, from ``PLAYBOOK``.

A tenant's stage is matched to the default taxonomy (seed 000 §5.3) by its key or, for a renamed
stage, by its CRM value: a stage ``marketing_qualified`` whose CRM value is HubSpot's
``marketingqualifiedlead`` is the tenant's MQL stage.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from skills.base import EvaluationSubject, Records, Skill
from skills.builtin.segments import SEGMENT_RULES, segment_leads, segment_properties
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

SLUG = "lifecycle-audit"
DEFAULT_LIMIT = 1000
MAX_LEADS = 5000  # one run reads at most this many rows (values() of 8 columns: well under a second)
DEFAULT_LIST_LIMIT = 25
MAX_LIST_LIMIT = 500
# Seed 000 §2.2 asks for at least 50 records before the data is trusted: fewer is a warning in
# the report (the findings are still right for the leads there are).
TRUSTED_SAMPLE = 50

# The default taxonomy's stages and their HubSpot values (seed 000 §5.3), to recognise a tenant's
# renamed stage by its CRM value.
DEFAULT_STAGE_CRM_VALUES = {
    "subscriber": "subscriber",
    "lead": "lead",
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "opportunity": "opportunity",
    "customer": "customer",
    "evangelist": "evangelist",
}
HANDOFF_STAGE = "mql"
CUSTOMER_STAGE = "customer"  # this stage and every stage ordered after it are post-sale

# Seed 000 §8.1's handoff table: the trigger, its threshold and the queue it goes to.
HANDOFF_MIN_SCORE = Decimal("80")  # MQL to SQL at ICP score >= 80: sales queue
AT_RISK_MIN = 0.7  # risk score >= 0.7: CSM queue
UPSELL_MIN = 0.8  # upsell score >= 0.8: account manager
DESTINATIONS = {"handoff": "sales queue", "at_risk": "CSM queue", "upsell": "account manager"}

# Days a lead may sit in a pre-sale stage before it counts as stalled (more days than this).
# The seed gives no figures: these are ours, from the pace each stage should move at. A
# subscriber is nurtured for a quarter; a lead should qualify within a month; an MQL is worked
# within two weeks (the handoff window); an SQL becomes an opportunity within three weeks; an
# opportunity closes within a month and a half.
STALL_DAYS = {"subscriber": 90, "lead": 30, "mql": 14, "sql": 21, "opportunity": 45}
DEFAULT_STALL_DAYS = 30  # a non-terminal stage of the tenant's own

# The risk and upsell scores (0 to 1). Seed 000 §8.1 gives only the thresholds; the inputs are
# the data the console holds (no usage or ticket data yet), the weights are ours:
#   fit        = ICP score / 100; without a score, the middle of the tier's band (TIER_FIT);
#                with neither, UNKNOWN_FIT
#   inactivity = days since the last update / INACTIVE_DAYS, at most 1
#   size       = SIZE_FACTORS band of the company size (employees), 0 when unknown
#   risk       = 0.6 * inactivity + 0.4 * (1 - fit)
#   upsell     = 0.5 * fit + 0.3 * (1 - inactivity) + 0.2 * size
# A customer gone quiet for half a year is at risk unless it fits the ICP well (fit above 0.75);
# an upsell needs a good fit, recent activity and room to grow.
INACTIVE_DAYS = 180
RISK_WEIGHTS = {"inactivity": 0.6, "misfit": 0.4}
UPSELL_WEIGHTS = {"fit": 0.5, "recency": 0.3, "size": 0.2}
# the middle of each tier's score band (campaigns.icp_rules: A 80+, B 60+, C 40+)
TIER_FIT = {"A": 0.9, "B": 0.7, "C": 0.5, "D": 0.2}
UNKNOWN_FIT = 0.5
# (minimum employees, factor), largest first
SIZE_FACTORS = ((1000, 1.0), (200, 0.5), (50, 0.25))

# Seed 000 §7.3's action package: expected lift as {min, max, confidence} of a named metric,
# effort, checklist and owner role. The seed's example lift is 0.05 to 0.15 at confidence 0.7;
# these figures are our estimates, not measurements, so their confidence is lower until the
# tenant's own results replace them.
PLAYBOOK: dict[str, dict[str, Any]] = {
    "handoff": {
        "title": "Hand the qualified MQLs to sales",
        "expected_lift": {"metric": "MQL to SQL conversion", "min": 0.05, "max": 0.15, "confidence": 0.6},
        "effort": "low",
        "owner": "Sales development rep",
        "checklist": [
            "Review each candidate's ICP score reasons",
            "Assign an owner in the CRM and route the lead to the sales queue",
            "Make the first sales contact within one business day",
            "Move the lead to SQL once sales accepts it",
        ],
    },
    "at_risk": {
        "title": "Reach out to the customers at risk",
        "expected_lift": {
            "metric": "retention of these customers",
            "min": 0.05,
            "max": 0.2,
            "confidence": 0.5,
        },
        "effort": "medium",
        "owner": "Customer success manager",
        "checklist": [
            "Check each account's recent activity and open issues",
            "Schedule a health-check call",
            "Agree a success plan with a dated next step",
            "Record the outcome on the account",
        ],
    },
    "upsell": {
        "title": "Offer an expansion to the upsell candidates",
        "expected_lift": {"metric": "expansion revenue", "min": 0.05, "max": 0.15, "confidence": 0.5},
        "effort": "medium",
        "owner": "Account manager",
        "checklist": [
            "Confirm the account's current plan and usage",
            "Choose the expansion offer that fits the account",
            "Book an account review with the decision maker",
            "Log the opportunity in the CRM",
        ],
    },
    "stalled": {
        "title": "Move or retire the stalled leads",
        "expected_lift": {"metric": "stage progression", "min": 0.03, "max": 0.1, "confidence": 0.5},
        "effort": "medium",
        "owner": "Marketing operations",
        "checklist": [
            "Confirm each stalled lead's stage is still right",
            "Enrol the leads in the nurture sequence of their stage",
            "Disqualify or archive the leads that no longer fit",
            "Run this audit again in 30 days",
        ],
    },
}

LEAD_FIELDS = (
    "id",
    "email",
    "lifecycle_stage",
    "icp_score",
    "icp_tier",
    "icp_reasons",
    "company_size",
    "updated_at",
)

_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_FLAGGED = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["lead_id", "email", "stage", "score", "reasons", "destination"],
        "properties": {
            "lead_id": {"type": "integer"},
            "email": {"type": "string"},
            "stage": {"type": "string"},
            "score": {"type": "number", "minimum": 0},
            "reasons": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "destination": {"type": "string"},
        },
    },
}

CONTRACT = SkillContract(
    slug=SLUG,
    name="Lifecycle audit",
    description=(
        "Counts the leads per lifecycle stage, lists the stalled leads (longer in a stage than its "
        "limit), the customers at risk (risk ≥ 0.7) and the upsell candidates (upsell ≥ 0.8), and the "
        "MQLs to hand to sales (ICP score ≥ 80), each with its reasons, and recommends what to do: "
        "expected lift, effort, checklist and owner. A report: it changes nothing."
    ),
    version="1",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **segment_properties(MAX_LEADS, DEFAULT_LIMIT),
            "list_limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIST_LIMIT,
                "default": DEFAULT_LIST_LIMIT,
                "description": "At most this many leads in each list (the counts cover them all).",
            },
        },
        **SEGMENT_RULES,
    },
    output_schema={
        "type": "object",
        "required": [
            "as_of",
            "record_count",
            "rules",
            "stage_distribution",
            "counts",
            "stalled",
            "at_risk",
            "upsell_candidates",
            "handoff_candidates",
            "recommendations",
            "warnings",
            "missing_lead_ids",
        ],
        "properties": {
            "as_of": {"type": "string"},
            "record_count": {"type": "integer", "minimum": 0},
            "rules": {"type": "object"},
            "stage_distribution": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 0},
            },
            "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
            "stalled": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["lead_id", "email", "stage", "days", "stall_days"],
                    "properties": {
                        "lead_id": {"type": "integer"},
                        "email": {"type": "string"},
                        "stage": {"type": "string"},
                        "days": {"type": "integer", "minimum": 0},
                        "stall_days": {"type": "integer", "minimum": 1},
                    },
                },
            },
            "at_risk": _FLAGGED,
            "upsell_candidates": _FLAGGED,
            "handoff_candidates": _FLAGGED,
            "recommendations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "kind",
                        "title",
                        "why",
                        "expected_lift",
                        "effort",
                        "checklist",
                        "owner",
                        "lead_count",
                    ],
                    "properties": {
                        "kind": {"enum": list(PLAYBOOK)},
                        "title": {"type": "string", "minLength": 1},
                        "why": {"type": "string", "minLength": 1},
                        "expected_lift": {
                            "type": "object",
                            "required": ["metric", "min", "max", "confidence"],
                            "properties": {
                                "metric": {"type": "string"},
                                "min": _SHARE,
                                "max": _SHARE,
                                "confidence": _SHARE,
                            },
                        },
                        "effort": {"enum": ["low", "medium", "high"]},
                        "checklist": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                        "owner": {"type": "string", "minLength": 1},
                        "lead_count": {"type": "integer", "minimum": 1},
                    },
                },
            },
            "warnings": {"type": "array", "items": {"type": "string"}},
            "missing_lead_ids": {"type": "array", "items": {"type": "integer"}},
        },
    },
    modes=("suggest", "preview"),
    default_mode="suggest",
    # seed 000 §2.1's SLA table (written for this very skill)
    sla=Sla(expected_seconds=30, max_seconds=120, p95_target_seconds=45),
    retry_budget=2,
    # With no lead at all there is nothing to audit; a small base is a warning in the report.
    data=DataRequirements(min_records=1, required_coverage={}, on_insufficient="refuse"),
    failure_modes=dict(FailureMode.FALLBACKS),
    review_triggers=ReviewTriggers(),
    action_kinds=(),
    # Seed 000 §4.2 prices the model-driven module at 0.50 (max 2.00) USD a run; this one asks no
    # model, so its cost is the database read.
    cost=CostTarget(target_usd=Decimal("0.001"), max_usd=Decimal("0.01")),
    llm=LlmBudget(max_calls=0, max_input_tokens=0, max_output_tokens=0),
)


def canonical_stage(key: str, crm_value: str) -> str:
    """The default-taxonomy stage a tenant's stage stands for; empty when it is the tenant's own."""
    if key in DEFAULT_STAGE_CRM_VALUES:
        return key
    for default, value in DEFAULT_STAGE_CRM_VALUES.items():
        if crm_value and crm_value == value:
            return default
    return ""


def _fit(lead: dict[str, Any]) -> tuple[float, str]:
    if lead["icp_score"] is not None:
        fit = float(lead["icp_score"]) / 100
        return fit, f"ICP score {float(lead['icp_score']):g}: fit {fit:.2f}"
    if lead["icp_tier"] in TIER_FIT:
        fit = TIER_FIT[lead["icp_tier"]]
        return fit, f"no ICP score, tier {lead['icp_tier']}: fit {fit:.2f}"
    return UNKNOWN_FIT, f"no ICP score or tier: fit taken as {UNKNOWN_FIT:.2f}"


def _inactivity(days: int) -> tuple[float, str]:
    inactivity = min(days / INACTIVE_DAYS, 1.0)
    return inactivity, f"last updated {days} days ago: inactivity {inactivity:.2f} (full at {INACTIVE_DAYS})"


def _size(company_size: int | None) -> tuple[float, str]:
    if company_size is None:
        return 0.0, "company size unknown: size 0.00"
    factor = next((f for minimum, f in SIZE_FACTORS if company_size >= minimum), 0.0)
    return factor, f"company size {company_size}: size {factor:.2f}"


def risk_score(lead: dict[str, Any], days: int) -> tuple[float, list[str]]:
    """A customer's risk of churning, 0 to 1, and the reasons (see RISK_WEIGHTS)."""
    inactivity, why_inactive = _inactivity(days)
    fit, why_fit = _fit(lead)
    w = RISK_WEIGHTS
    return round(w["inactivity"] * inactivity + w["misfit"] * (1 - fit), 4), [why_inactive, why_fit]


def upsell_score(lead: dict[str, Any], days: int) -> tuple[float, list[str]]:
    """A customer's readiness for an expansion, 0 to 1, and the reasons (see UPSELL_WEIGHTS)."""
    fit, why_fit = _fit(lead)
    inactivity, why_inactive = _inactivity(days)
    size, why_size = _size(lead["company_size"])
    w = UPSELL_WEIGHTS
    score = w["fit"] * fit + w["recency"] * (1 - inactivity) + w["size"] * size
    return round(score, 4), [why_fit, why_inactive, why_size]


def _why(kind: str, found: dict[str, list[dict[str, Any]]]) -> str:
    count = len(found[kind])
    if kind == "handoff":
        return (
            f"{count} MQL(s) have an ICP score of {HANDOFF_MIN_SCORE:g} or more, the seed's MQL to SQL "
            f"trigger: they belong in the {DESTINATIONS['handoff']}."
        )
    if kind == "at_risk":
        return (
            f"{count} customer(s) have a risk score of {AT_RISK_MIN} or more (gone quiet, or a poor "
            f"ICP fit): they belong in the {DESTINATIONS['at_risk']}."
        )
    if kind == "upsell":
        return (
            f"{count} customer(s) have an upsell score of {UPSELL_MIN} or more (good fit, recently "
            f"active, room to grow): they go to the {DESTINATIONS['upsell']}."
        )
    by_stage = Counter(entry["stage"] for entry in found["stalled"])
    parts = ", ".join(f"{stage} {n}" for stage, n in by_stage.items())
    return f"{count} lead(s) have sat in their stage longer than its limit ({parts})."


@register
class LifecycleAuditSkill(Skill):
    contract = CONTRACT
    example_inputs = {"segment": "all", "limit": 50}

    def load(self, ctx, inputs: dict[str, Any]) -> Records:
        from django.db import DatabaseError
        from django.utils import timezone

        from campaigns.models import LifecycleStage

        try:
            stages = list(LifecycleStage.objects.values("key", "crm_value", "order", "is_terminal"))
            items, missing = segment_leads(inputs, LEAD_FIELDS, DEFAULT_LIMIT)
        except DatabaseError as exc:
            raise DataUnavailable(f"the leads could not be read: {exc}") from exc
        return Records(
            items=items,
            source="campaigns.Lead",
            meta={"as_of": timezone.now(), "missing_lead_ids": missing, "stages": stages},
        )

    def run(self, ctx, inputs: dict[str, Any], records: Records) -> dict[str, Any]:
        as_of = records.meta["as_of"]
        stages = records.meta["stages"]
        canonical = {s["key"]: canonical_stage(s["key"], s["crm_value"]) for s in stages}
        customer_order = min(
            (s["order"] for s in stages if canonical[s["key"]] == CUSTOMER_STAGE), default=None
        )
        post_sale = {s["key"] for s in stages if customer_order is not None and s["order"] >= customer_order}
        terminal = {s["key"] for s in stages if s["is_terminal"]}
        count = len(records.items)
        distribution = Counter(lead["lifecycle_stage"] for lead in records.items)
        found: dict[str, list[dict[str, Any]]] = {"handoff": [], "at_risk": [], "upsell": [], "stalled": []}

        with ctx.step("audit"):
            for lead in records.items:
                stage = lead["lifecycle_stage"]
                if stage not in canonical:
                    continue  # not a stage of the tenant's: warned about below
                days = max((as_of - lead["updated_at"]).days, 0)
                base = {"lead_id": lead["id"], "email": lead["email"], "stage": stage}
                if stage in post_sale:
                    risk, why = risk_score(lead, days)
                    if risk >= AT_RISK_MIN:
                        reason = f"risk {risk:.2f} ≥ {AT_RISK_MIN} (seed 000 §8.1)"
                        found["at_risk"].append(
                            {
                                **base,
                                "score": risk,
                                "reasons": [*why, reason],
                                "destination": DESTINATIONS["at_risk"],
                            }
                        )
                    upsell, why = upsell_score(lead, days)
                    if upsell >= UPSELL_MIN:
                        reason = f"upsell {upsell:.2f} ≥ {UPSELL_MIN} (seed 000 §8.1)"
                        found["upsell"].append(
                            {
                                **base,
                                "score": upsell,
                                "reasons": [*why, reason],
                                "destination": DESTINATIONS["upsell"],
                            }
                        )
                    continue
                if stage in terminal:
                    continue
                score = lead["icp_score"]
                if canonical[stage] == HANDOFF_STAGE and score is not None and score >= HANDOFF_MIN_SCORE:
                    reason = f"MQL with ICP score {float(score):g} ≥ {HANDOFF_MIN_SCORE:g} (seed 000 §8.1)"
                    found["handoff"].append(
                        {
                            **base,
                            "score": float(score),
                            "reasons": [reason, *lead["icp_reasons"]],
                            "destination": DESTINATIONS["handoff"],
                        }
                    )
                limit = STALL_DAYS.get(canonical[stage], DEFAULT_STALL_DAYS)
                if days > limit:
                    found["stalled"].append({**base, "days": days, "stall_days": limit})
            ctx.checkpoint({"record_count": count})

        for kind in ("handoff", "at_risk", "upsell"):
            found[kind].sort(key=lambda entry: (-entry["score"], entry["lead_id"]))
        found["stalled"].sort(key=lambda entry: (-entry["days"], entry["lead_id"]))

        with ctx.step("recommend"):
            recommendations = [
                {
                    "kind": kind,
                    "title": PLAYBOOK[kind]["title"],
                    "why": _why(kind, found),
                    "expected_lift": dict(PLAYBOOK[kind]["expected_lift"]),
                    "effort": PLAYBOOK[kind]["effort"],
                    "checklist": list(PLAYBOOK[kind]["checklist"]),
                    "owner": PLAYBOOK[kind]["owner"],
                    "lead_count": len(found[kind]),
                }
                for kind in PLAYBOOK
                if found[kind]
            ]

        known = [s["key"] for s in stages]
        unknown = sorted(stage for stage in distribution if stage not in canonical)
        warnings = []
        if count < TRUSTED_SAMPLE:
            warnings.append(
                f"Only {count} record(s): the findings describe them, but fewer than {TRUSTED_SAMPLE} "
                "records are too few to judge the whole base by."
            )
        if unknown:
            n = sum(distribution[stage] for stage in unknown)
            shown = ", ".join(repr(stage) for stage in unknown)
            warnings.append(f"{n} lead(s) are in a stage the taxonomy does not know ({shown}): not audited.")
        if not any(value == HANDOFF_STAGE for value in canonical.values()):
            warnings.append("The taxonomy has no MQL stage: no lead can be a handoff candidate.")
        if customer_order is None:
            warnings.append(
                "The taxonomy has no customer stage: no lead can be at risk or an upsell candidate."
            )
        unscored = sum(1 for lead in records.items if lead["icp_score"] is None)
        if unscored:
            warnings.append(
                f"{unscored} lead(s) have no ICP score: an MQL needs one to be handed off, and a "
                "customer's fit falls back to its tier (or 0.5). Run icp-scoring first."
            )

        list_limit = inputs.get("list_limit", DEFAULT_LIST_LIMIT)
        return {
            "as_of": as_of.isoformat(),
            "record_count": count,
            "rules": {
                "handoff_min_score": float(HANDOFF_MIN_SCORE),
                "at_risk_min": AT_RISK_MIN,
                "upsell_min": UPSELL_MIN,
                "stall_days": dict(STALL_DAYS),
                "default_stall_days": DEFAULT_STALL_DAYS,
                "inactive_days": INACTIVE_DAYS,
            },
            "stage_distribution": {
                **{key: distribution.get(key, 0) for key in known},
                **{stage: distribution[stage] for stage in unknown},
            },
            "counts": {
                "stalled": len(found["stalled"]),
                "at_risk": len(found["at_risk"]),
                "upsell_candidates": len(found["upsell"]),
                "handoff_candidates": len(found["handoff"]),
            },
            "stalled": found["stalled"][:list_limit],
            "at_risk": found["at_risk"][:list_limit],
            "upsell_candidates": found["upsell"][:list_limit],
            "handoff_candidates": found["handoff"][:list_limit],
            "recommendations": recommendations,
            "warnings": warnings,
            "missing_lead_ids": records.meta.get("missing_lead_ids", []),
        }

    def subject(self, output: dict[str, Any], records: Records) -> EvaluationSubject:
        counts = output["counts"]
        summary = (
            f"{output['record_count']} records: {counts['handoff_candidates']} handoff candidate(s), "
            f"{counts['at_risk']} at risk, {counts['upsell_candidates']} upsell candidate(s), "
            f"{counts['stalled']} stalled; {len(output['recommendations'])} recommendation(s)."
        )
        facts = {
            "record_count": output["record_count"],
            **counts,
            "recommendation_count": len(output["recommendations"]),
        }
        return EvaluationSubject(
            kind="report",
            items=[{"key": "summary", "summary": summary}],
            facts={"summary": facts},
            expected_count=1,
            is_customer_facing=False,
        )

    def canary_inputs(self, lead: Any) -> dict[str, Any]:
        return {"lead_ids": [lead.pk]}
