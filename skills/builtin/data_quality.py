"""data-quality: how complete, valid and fresh the tenant's lead data is (seed 000 §6.3), per field
and overall, whether it passes the seed's thresholds, and the worst records with their reasons.

Deterministic code, no model: a run costs nothing and proposes nothing (it is a report).

The figures, in words:

- **completeness**: for each field of ``COMPLETENESS_FIELDS``, the share of records that have it;
  overall, the share of all (record, field) cells that are filled.
- **validity**: for each field of ``VALIDATED_FIELDS``, the share of the records that have it whose
  value is valid: an email or a domain must parse with the project's one address normaliser
  (``mh1.addresses``) *and* be stored in its canonical form (a non-canonical value breaks the
  suppression and exclusion matches that compare canonical strings); a lifecycle stage must be one
  of the tenant's stages; a tier, a source system and a legal basis one of their choices; a company
  size at least 1. Overall, valid cells over filled cells of those fields (0 when none is filled).
- **freshness**: the share of records updated within ``fresh_days`` of the run (default
  ``DEFAULT_FRESH_DAYS``).
- **overall score**: ``SCORE_WEIGHTS`` over the three. A record's own score, which orders the
  worst records, is the same formula over that record alone.
- **passed**: every check of ``THRESHOLDS`` holds (seed values, see there).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from mh1.addresses import AddressInvalid, domain_normalize, email_normalize
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

SLUG = "data-quality"
DEFAULT_LIMIT = 500
MAX_LEADS = 5000  # one run reads at most this many rows (values() of 16 columns: well under a second)
DEFAULT_WORST = 10
MAX_WORST = 100
# The seed (§6.3) gives no freshness window: a quarter is the window we state and use.
DEFAULT_FRESH_DAYS = 90
# The seed (§5.1) asks for at least 50 contacts before the data is trusted: fewer is a warning
# in the report, not a failed check (the figures are still right for the records there are).
TRUSTED_SAMPLE = 50

# Filled = not None and not blank text.
COMPLETENESS_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "company_domain",
    "title",
    "industry",
    "company_size",
    "country",
    "lifecycle_stage",
)
VALIDATED_FIELDS = (
    "email",
    "company_domain",
    "lifecycle_stage",
    "icp_tier",
    "source_system",
    "legal_basis",
    "company_size",
)
# The seed (§6.3) names the three figures but not their weights: these are ours, in one place.
SCORE_WEIGHTS = {"completeness": 0.4, "validity": 0.4, "freshness": 0.2}
# (check, figure, minimum) — seed 000 §2.3 (below 0.6 the quality is below threshold) and §5.1's
# onboarding data validation (email > 90 %, lifecycle stage > 80 %, company > 70 % filled).
THRESHOLDS = (
    ("overall_score", "overall_score", 0.6),
    ("email_coverage", "email", 0.9),
    ("lifecycle_stage_coverage", "lifecycle_stage", 0.8),
    ("company_coverage", "company", 0.7),
)
LEAD_FIELDS = tuple(dict.fromkeys(("id", *COMPLETENESS_FIELDS, *VALIDATED_FIELDS, "updated_at")))

_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_SHARE_OR_NULL = {"type": ["number", "null"], "minimum": 0, "maximum": 1}

CONTRACT = SkillContract(
    slug=SLUG,
    name="Data quality",
    description=(
        "Measures the lead data's completeness, validity (addresses, domains, stages and other "
        "choices) and freshness, per field and overall, checks them against the onboarding "
        "thresholds (overall ≥ 0.6; email 90 %, lifecycle stage 80 %, company 70 % filled) and lists "
        "the worst records with their reasons. A report: it changes nothing."
    ),
    version="1",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **segment_properties(MAX_LEADS, DEFAULT_LIMIT),
            "fresh_days": {
                "type": "integer",
                "minimum": 1,
                "maximum": 3650,
                "default": DEFAULT_FRESH_DAYS,
                "description": "A record updated within this many days counts as fresh.",
            },
            "worst_limit": {"type": "integer", "minimum": 0, "maximum": MAX_WORST, "default": DEFAULT_WORST},
        },
        **SEGMENT_RULES,
    },
    output_schema={
        "type": "object",
        "required": [
            "as_of",
            "record_count",
            "fresh_days",
            "weights",
            "fields",
            "completeness",
            "validity",
            "freshness",
            "overall_score",
            "checks",
            "passed",
            "worst_records",
            "warnings",
            "missing_lead_ids",
        ],
        "properties": {
            "as_of": {"type": "string"},
            "record_count": {"type": "integer", "minimum": 0},
            "fresh_days": {"type": "integer", "minimum": 1},
            "weights": {"type": "object", "additionalProperties": {"type": "number"}},
            "fields": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["filled", "completeness", "invalid", "validity"],
                    "properties": {
                        "filled": {"type": "integer", "minimum": 0},
                        "completeness": _SHARE,
                        "invalid": {"type": ["integer", "null"], "minimum": 0},
                        "validity": _SHARE_OR_NULL,
                    },
                },
            },
            "completeness": _SHARE,
            "validity": _SHARE,
            "freshness": _SHARE,
            "overall_score": _SHARE,
            "checks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "value", "threshold", "passed"],
                    "properties": {
                        "name": {"type": "string"},
                        "value": _SHARE,
                        "threshold": _SHARE,
                        "passed": {"type": "boolean"},
                    },
                },
            },
            "passed": {"type": "boolean"},
            "worst_records": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["lead_id", "email", "score", "issues"],
                    "properties": {
                        "lead_id": {"type": "integer"},
                        "email": {"type": "string"},
                        "score": _SHARE,
                        "issues": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    },
                },
            },
            "warnings": {"type": "array", "items": {"type": "string"}},
            "missing_lead_ids": {"type": "array", "items": {"type": "integer"}},
        },
    },
    modes=("suggest", "preview"),
    default_mode="suggest",
    # seed 000 §2.1's SLA table
    sla=Sla(expected_seconds=30, max_seconds=120, p95_target_seconds=45),
    retry_budget=2,
    # Poor coverage is what this skill measures, so it never refuses for it; with no record at
    # all there is nothing to measure (every share would be 0 / 0).
    data=DataRequirements(min_records=1, required_coverage={}, on_insufficient="refuse"),
    failure_modes=dict(FailureMode.FALLBACKS),
    review_triggers=ReviewTriggers(),
    action_kinds=(),
    cost=CostTarget(target_usd=Decimal("0.001"), max_usd=Decimal("0.01")),
    # Deterministic code: no model call, nothing reserved.
    llm=LlmBudget(max_calls=0, max_input_tokens=0, max_output_tokens=0),
)


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _canonical_problem(raw: str, normalise) -> str:
    """Why ``raw`` is not a valid stored value of its kind; empty when it is."""
    try:
        canonical = normalise(raw)
    except AddressInvalid as exc:
        return exc.message if hasattr(exc, "message") else str(exc)
    if canonical != raw:
        return f"not stored in canonical form ({canonical!r})"
    return ""


def field_problem(name: str, value: Any, choices: dict[str, frozenset[str]]) -> str:
    """Why a filled ``value`` of field ``name`` is invalid; empty when it is valid."""
    if name == "email":
        return _canonical_problem(str(value), email_normalize)
    if name == "company_domain":
        return _canonical_problem(str(value), domain_normalize)
    if name == "company_size":
        return "" if int(value) >= 1 else f"{value} employees is not a company size"
    allowed = choices[name]
    return "" if value in allowed else f"{value!r} is not one of {', '.join(sorted(allowed))}"


def _weighted(completeness: float, validity: float, freshness: float) -> float:
    w = SCORE_WEIGHTS
    return round(w["completeness"] * completeness + w["validity"] * validity + w["freshness"] * freshness, 4)


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{round(share * 100)}%"


@register
class DataQualitySkill(Skill):
    contract = CONTRACT
    example_inputs = {"segment": "all", "limit": 50}

    def load(self, ctx, inputs: dict[str, Any]) -> Records:
        from django.db import DatabaseError
        from django.utils import timezone

        from campaigns.models import IcpTier, LegalBasis, LifecycleStage, SourceSystem

        try:
            stages = frozenset(LifecycleStage.objects.values_list("key", flat=True))
            items, missing = segment_leads(inputs, LEAD_FIELDS, DEFAULT_LIMIT)
        except DatabaseError as exc:
            raise DataUnavailable(f"the leads could not be read: {exc}") from exc
        return Records(
            items=items,
            source="campaigns.Lead",
            meta={
                "as_of": timezone.now(),
                "missing_lead_ids": missing,
                "choices": {
                    "lifecycle_stage": stages,
                    "icp_tier": frozenset(IcpTier.values),
                    "source_system": frozenset(SourceSystem.values),
                    "legal_basis": frozenset(LegalBasis.values),
                },
            },
        )

    def run(self, ctx, inputs: dict[str, Any], records: Records) -> dict[str, Any]:
        as_of = records.meta["as_of"]
        choices = records.meta["choices"]
        fresh_days = inputs.get("fresh_days", DEFAULT_FRESH_DAYS)
        fresh_since = as_of - timedelta(days=fresh_days)
        count = len(records.items)
        filled = dict.fromkeys(dict.fromkeys((*COMPLETENESS_FIELDS, *VALIDATED_FIELDS)), 0)
        invalid = dict.fromkeys(VALIDATED_FIELDS, 0)
        fresh = 0
        scored: list[tuple[float, int, dict[str, Any]]] = []

        with ctx.step("measure"):
            for lead in records.items:
                issues: list[str] = []
                missing = [name for name in COMPLETENESS_FIELDS if not _filled(lead[name])]
                if missing:
                    issues.append("missing: " + ", ".join(missing))
                for name in filled:
                    filled[name] += _filled(lead[name])
                checked = bad = 0
                for name in VALIDATED_FIELDS:
                    if not _filled(lead[name]):
                        continue
                    checked += 1
                    problem = field_problem(name, lead[name], choices)
                    if problem:
                        bad += 1
                        invalid[name] += 1
                        issues.append(f"{name} {str(lead[name])!r} invalid: {problem}")
                is_fresh = lead["updated_at"] >= fresh_since
                fresh += is_fresh
                if not is_fresh:
                    days = (as_of - lead["updated_at"]).days
                    issues.append(f"stale: last updated {days} days ago (fresh within {fresh_days})")
                score = _weighted(
                    1 - len(missing) / len(COMPLETENESS_FIELDS),
                    (checked - bad) / checked if checked else 0.0,
                    1.0 if is_fresh else 0.0,
                )
                if issues:
                    scored.append(
                        (
                            score,
                            lead["id"],
                            {"lead_id": lead["id"], "email": lead["email"], "score": score, "issues": issues},
                        )
                    )
            ctx.checkpoint({"record_count": count})

        fields = {
            name: {
                "filled": filled[name],
                "completeness": _share(filled[name], count) or 0.0,
                "invalid": invalid.get(name) if name in invalid else None,
                "validity": _share(filled[name] - invalid[name], filled[name]) if name in invalid else None,
            }
            for name in filled
        }
        cells_filled = sum(filled[name] for name in COMPLETENESS_FIELDS)
        completeness = _share(cells_filled, count * len(COMPLETENESS_FIELDS)) or 0.0
        validated = sum(filled[name] for name in VALIDATED_FIELDS)
        validity = _share(validated - sum(invalid.values()), validated) or 0.0
        freshness = _share(fresh, count) or 0.0
        overall = _weighted(completeness, validity, freshness)
        figures = {"overall_score": overall, **{name: fields[name]["completeness"] for name in fields}}
        checks = [
            {
                "name": name,
                "value": figures[figure],
                "threshold": minimum,
                "passed": figures[figure] >= minimum,
            }
            for name, figure, minimum in THRESHOLDS
        ]
        warnings = []
        if count < TRUSTED_SAMPLE:
            warnings.append(
                f"Only {count} record(s): the figures describe them, but fewer than {TRUSTED_SAMPLE} "
                "records are too few to judge the whole base by."
            )
        scored.sort(key=lambda entry: (entry[0], entry[1]))
        worst_limit = inputs.get("worst_limit", DEFAULT_WORST)
        return {
            "as_of": as_of.isoformat(),
            "record_count": count,
            "fresh_days": fresh_days,
            "weights": dict(SCORE_WEIGHTS),
            "fields": fields,
            "completeness": completeness,
            "validity": validity,
            "freshness": freshness,
            "overall_score": overall,
            "checks": checks,
            "passed": all(check["passed"] for check in checks),
            "worst_records": [entry for _, _, entry in scored[:worst_limit]],
            "warnings": warnings,
            "missing_lead_ids": records.meta.get("missing_lead_ids", []),
        }

    def subject(self, output: dict[str, Any], records: Records) -> EvaluationSubject:
        failed = [check["name"] for check in output["checks"] if not check["passed"]]
        summary = (
            f"{output['record_count']} records: completeness {_pct(output['completeness'])}, "
            f"validity {_pct(output['validity'])}, freshness {_pct(output['freshness'])} "
            f"(within {output['fresh_days']} days), overall {_pct(output['overall_score'])}; "
            + (f"failed: {', '.join(failed)}." if failed else "every check passed.")
        )
        figures = {
            "record_count": output["record_count"],
            "fresh_days": output["fresh_days"],
            **{name: output[name] for name in ("completeness", "validity", "freshness", "overall_score")},
        }
        return EvaluationSubject(
            kind="report",
            items=[{"key": "summary", "summary": summary}],
            facts={"summary": figures},
            expected_count=1,
            is_customer_facing=False,
        )

    def canary_inputs(self, lead: Any) -> dict[str, Any]:
        return {"lead_ids": [lead.pk]}
