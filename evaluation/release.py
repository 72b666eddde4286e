"""The release policy: one function decides what happens to an evaluated output (seed 000 §1.3).

    blocked       a critical finding, or AI-washing of high severity
    human_review  any AI-washing warning; the score (its lower bound) below the review bar; or a
                  review trigger of the skill's contract (budget impact, first run, PII present)
    auto_refine   the evaluation did not pass and says what to change; or SRAC below its bar
    auto_deliver  everything else

The order is the seed's: a blocking reason wins over a review, a review over a refinement. The
review triggers of the contract (seed 000 §2) are checked with the seed's own human-review
conditions, before the refinement branch: a first run or an output with personal data goes to a
person even when a refinement might have raised its score, because the point of those triggers is
that a person sees it, not that it scores well.

``release_decide`` records the decision and every reason on the evaluation, so the request page
and the audit show why, and returns them. How the decision routes proposed actions (queue or
straight through) is the rollout phase's business (``approvals``), not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from approvals.models import ReleaseDecision
from evaluation.dimensions import (
    AI_WASHING_ORDER,
    REVIEW_THRESHOLD,
    SRAC_PASS,
    AiWashing,
    Severity,
)

if TYPE_CHECKING:
    from evaluation.models import Evaluation
    from skills.contracts import ReviewTriggers


@dataclass(frozen=True)
class Release:
    decision: str
    reasons: list[str] = field(default_factory=list)


def release_outcome(
    evaluation: Evaluation,
    *,
    triggers: ReviewTriggers,
    first_run: bool,
    budget_impact_usd: Decimal,
) -> Release:
    """The decision and its reasons, without saving anything (see the module docstring)."""
    issues = evaluation.issues or []
    critical = [i for i in issues if i.get("severity") == Severity.CRITICAL]
    washing = evaluation.ai_washing or {}
    washing_severity = str(washing.get("highest_severity") or evaluation.ai_washing_severity or "none")
    warnings = int(washing.get("warning_count") or 0)
    score = float(evaluation.score_used)

    blocked = [f"Critical: {i.get('message', '')}".strip() for i in critical]
    if AI_WASHING_ORDER.get(washing_severity, 0) >= AI_WASHING_ORDER[AiWashing.HIGH]:
        blocked.append("AI-washing of high severity: overstated claims about AI.")
    if blocked:
        return Release(ReleaseDecision.BLOCKED, blocked)

    review: list[str] = []
    if warnings >= 1:
        review.append(f"AI-washing: {warnings} warning(s) ({washing_severity}); the bar is 0.")
    bar = max(REVIEW_THRESHOLD, float(triggers.min_score))
    if score < bar:
        review.append(f"Score {score:.2f} (lower bound of the judge's runs) is below {bar:.2f}.")
    if budget_impact_usd > triggers.budget_impact_usd:
        review.append(
            f"Budget impact ${budget_impact_usd:,.2f} is above the "
            f"${triggers.budget_impact_usd:,.0f} review trigger."
        )
    if triggers.first_run_for_tenant and first_run:
        review.append("First run of this skill for the tenant: a person reviews it.")
    if triggers.pii_present and evaluation.pii_found:
        kinds = sorted({str(hit.get("kind", "")) for hit in evaluation.pii_found} - {""})
        review.append("Personal data in the output" + (f" ({', '.join(kinds)})." if kinds else "."))
    if review:
        return Release(ReleaseDecision.HUMAN_REVIEW, review)

    refine: list[str] = []
    if not evaluation.passed and evaluation.suggestions:
        refine.append(
            f"Did not pass (score {score:.2f}); refine with {len(evaluation.suggestions)} suggestion(s)."
        )
    srac = float(evaluation.srac_score)
    if srac < SRAC_PASS:
        refine.append(f"SRAC {srac:.2f} is below {SRAC_PASS}.")
    if refine:
        return Release(ReleaseDecision.AUTO_REFINE, refine)
    if not evaluation.passed:
        # failed, with nothing to refine by: never delivered without a person
        return Release(
            ReleaseDecision.HUMAN_REVIEW, [f"Did not pass (score {score:.2f}) and no fix is known."]
        )
    return Release(
        ReleaseDecision.AUTO_DELIVER, [f"Passed (score {score:.2f}, SRAC {srac:.2f}); no trigger."]
    )


def release_decide(
    evaluation: Evaluation,
    *,
    triggers: ReviewTriggers,
    first_run: bool,
    budget_impact_usd: Decimal,
) -> Release:
    """Decide, and record the decision and its reasons on the evaluation."""
    outcome = release_outcome(
        evaluation, triggers=triggers, first_run=first_run, budget_impact_usd=budget_impact_usd
    )
    evaluation.decision = outcome.decision
    evaluation.decision_reasons = list(outcome.reasons)
    if evaluation.pk:
        evaluation.save(update_fields=["decision", "decision_reasons"])
    return outcome
