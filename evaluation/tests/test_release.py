"""The release policy of seed 000 §1.3, branch by branch, with the contract's review triggers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from evaluation.models import Evaluation
from evaluation.release import release_decide, release_outcome
from skills.contracts import ReviewTriggers

NO_TRIGGERS = ReviewTriggers(first_run_for_tenant=False, pii_present=False)


def _evaluation(**overrides) -> Evaluation:
    values = {
        "score": Decimal("0.95"),
        "score_used": Decimal("0.95"),
        "passed": True,
        "issues": [],
        "suggestions": [],
        "srac_score": Decimal("4.5"),
        "ai_washing": {"highest_severity": "none", "warning_count": 0},
        "ai_washing_severity": "none",
        "pii_found": [],
    }
    values.update(overrides)
    return Evaluation(**values)


def _decide(evaluation, triggers=NO_TRIGGERS, *, first_run=False, impact="0"):
    return release_outcome(
        evaluation, triggers=triggers, first_run=first_run, budget_impact_usd=Decimal(impact)
    )


def test_a_passing_output_with_no_trigger_is_delivered():
    outcome = _decide(_evaluation())
    assert outcome.decision == "auto_deliver" and "Passed" in outcome.reasons[0]


def test_a_critical_issue_blocks_whatever_the_score():
    outcome = _decide(
        _evaluation(issues=[{"severity": "critical", "message": "Sends to a suppressed address."}])
    )
    assert outcome.decision == "blocked" and "suppressed" in outcome.reasons[0]


def test_high_ai_washing_blocks():
    washing = {"highest_severity": "high", "warning_count": 2}
    assert _decide(_evaluation(ai_washing=washing, ai_washing_severity="high")).decision == "blocked"


def test_any_ai_washing_warning_goes_to_a_person():
    washing = {"highest_severity": "low", "warning_count": 1}
    outcome = _decide(_evaluation(ai_washing=washing, ai_washing_severity="low"))
    assert outcome.decision == "human_review" and "AI-washing" in outcome.reasons[0]


def test_a_lower_bound_below_the_review_bar_goes_to_a_person_even_with_suggestions():
    evaluation = _evaluation(
        score=Decimal("0.85"), score_used=Decimal("0.65"), passed=False, suggestions=["Shorter."]
    )
    outcome = _decide(evaluation)
    assert outcome.decision == "human_review" and "0.65" in outcome.reasons[0]


@pytest.mark.parametrize(
    ("triggers", "first_run", "impact", "pii", "reason"),
    [
        (
            ReviewTriggers(first_run_for_tenant=False, pii_present=False),
            False,
            "1000.01",
            [],
            "Budget impact",
        ),
        (ReviewTriggers(first_run_for_tenant=True, pii_present=False), True, "0", [], "First run"),
        (
            ReviewTriggers(first_run_for_tenant=False, pii_present=True),
            False,
            "0",
            [{"kind": "phone"}],
            "phone",
        ),
        (
            ReviewTriggers(min_score=0.97, first_run_for_tenant=False, pii_present=False),
            False,
            "0",
            [],
            "below 0.97",
        ),
    ],
    ids=["budget-impact", "first-run", "pii", "contract-min-score"],
)
def test_each_review_trigger_of_the_contract_sends_it_to_a_person(triggers, first_run, impact, pii, reason):
    outcome = _decide(_evaluation(pii_found=pii), triggers, first_run=first_run, impact=impact)
    assert outcome.decision == "human_review"
    assert any(reason in r for r in outcome.reasons)


def test_a_trigger_off_in_the_contract_does_not_fire():
    outcome = _decide(_evaluation(pii_found=[{"kind": "phone"}]), NO_TRIGGERS, first_run=True, impact="999")
    assert outcome.decision == "auto_deliver"


def test_a_fail_with_suggestions_is_refined():
    evaluation = _evaluation(
        score=Decimal("0.78"), score_used=Decimal("0.75"), passed=False, suggestions=["Cite the title."]
    )
    outcome = _decide(evaluation)
    assert outcome.decision == "auto_refine" and "1 suggestion" in outcome.reasons[0]


def test_srac_below_its_bar_is_refined_even_when_the_score_passes():
    outcome = _decide(_evaluation(srac_score=Decimal("3.25")))
    assert outcome.decision == "auto_refine" and "SRAC 3.25" in outcome.reasons[0]


def test_a_fail_with_nothing_to_refine_by_is_never_delivered():
    evaluation = _evaluation(score=Decimal("0.78"), score_used=Decimal("0.75"), passed=False)
    assert _decide(evaluation).decision == "human_review"


def test_the_decision_and_reasons_are_recorded_on_the_evaluation():
    evaluation = _evaluation(srac_score=Decimal("3.0"))
    outcome = release_decide(
        evaluation, triggers=NO_TRIGGERS, first_run=False, budget_impact_usd=Decimal("0")
    )
    assert (evaluation.decision, evaluation.decision_reasons) == (outcome.decision, outcome.reasons)
