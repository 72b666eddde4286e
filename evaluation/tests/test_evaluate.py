"""Evaluating outputs: what the deterministic checks catch, how the judge's N runs are combined,
and what every evaluation records for a replay."""

from __future__ import annotations

import json

import pytest
from django_tenants.utils import tenant_context

from campaigns.models import MessagingPack
from evaluation.dimensions import PASS_THRESHOLD, WEIGHTS, rubric_hash
from evaluation.models import Evaluation, EvaluationSettings
from evaluation.services import evaluate
from skills.base import EvaluationSubject
from skills.providers import LlmResponse

ADDRESS = "1 Main St, Springfield, IL 62701"
FACTS = {
    "l1": {
        "first_name": "Dana",
        "company": "Globex",
        "title": "VP Sales",
        "industry": "SaaS",
        "company_size": 120,
    }
}
GOOD = {
    "key": "l1",
    "to": "dana@globex.example",
    "subject": "Churn at Globex",
    "body": (
        "Hi Dana,\n\nAs VP Sales at Globex, a SaaS team of 120, you know churn. We cut churn, "
        f"and we keep it clear. Worth a call next week?\n\nAcme, {ADDRESS}"
    ),
}


@pytest.fixture
def pack(alpha):
    with tenant_context(alpha):
        MessagingPack.objects.create(
            version=1,
            company_name="Acme",
            value_proposition="We cut churn.",
            tier_templates={},
            forbidden_claims=["guaranteed results"],
            postal_address=ADDRESS,
            brand_words=["clear"],
            avoid_words=["synergy"],
        )


def _evaluate(item, **kwargs):
    subject = EvaluationSubject(
        kind="emails", items=[item], facts=FACTS, expected_count=1, is_customer_facing=True
    )
    return evaluate(
        subject=subject,
        output={"emails": [item]},
        output_schema={"type": "object", "required": ["emails"]},
        tokens_used=500,
        token_budget=2000,
        **kwargs,
    )


def _messages(evaluation: Evaluation, dimension: str) -> list[str]:
    return [i["message"] for i in evaluation.issues if i["dimension"] == dimension]


@pytest.mark.usefixtures("pack")
def test_a_grounded_email_with_the_address_passes(alpha):
    with tenant_context(alpha):
        evaluation = _evaluate(GOOD)
    assert evaluation.passed and float(evaluation.score_used) >= PASS_THRESHOLD
    assert evaluation.srac_passed and not evaluation.risk_flags and not evaluation.pii_found
    assert set(evaluation.dimensions) == set(WEIGHTS)
    assert all(d["weight"] == WEIGHTS[name] for name, d in evaluation.dimensions.items())


@pytest.mark.usefixtures("pack")
def test_invented_facts_forbidden_claims_pii_and_a_missing_address_are_each_caught(alpha):
    bad = {
        **GOOD,
        "subject": "Guaranteed results",
        "body": "Hi Dana, congrats on the Series B and 500 employees! Call me on 555-123-4567.",
    }
    with tenant_context(alpha):
        evaluation = _evaluate(bad)

    factual = " ".join(_messages(evaluation, "factuality"))
    assert "Series B" in factual and "500" in factual
    risks = " ".join(_messages(evaluation, "risk_flags"))
    assert "forbidden claim" in risks and "postal address" in risks and "phone number" in risks
    assert {"forbidden_claim", "can_spam", "pii"} <= set(evaluation.risk_flags)
    assert evaluation.pii_found[0]["kind"] == "phone" and "555-123" not in json.dumps(evaluation.pii_found)
    assert not evaluation.passed
    assert any("postal address" in s for s in evaluation.suggestions)


@pytest.mark.usefixtures("pack")
def test_ai_washing_is_graded_by_severity(alpha):
    item = {**GOOD, "body": GOOD["body"].replace("We cut churn", "Our AI-powered platform cuts churn")}
    with tenant_context(alpha):
        evaluation = _evaluate(item)
    assert evaluation.ai_washing["warning_count"] >= 1
    assert evaluation.ai_washing_severity != "none"


class ScriptedJudge:
    """A judge answering each run with the next of ``scores`` (all judged dimensions alike)."""

    name = "scripted"
    default_model = "judge-model"

    def __init__(self, scores, *, broken=()):
        self.scores = list(scores)
        self.broken = set(broken)
        self.calls = 0

    def complete(self, request):
        self.calls += 1
        if self.calls in self.broken:
            text = "I think it is fine."
        else:
            score = self.scores[self.calls - 1]
            text = json.dumps(
                {
                    "dimensions": {
                        name: {"score": score, "reason": f"judged {score}"}
                        for name in request.response_schema["properties"]["dimensions"]["required"]
                    },
                    "srac": {"specific": 4, "relevant": 4, "actionable": 4, "clear": 4},
                }
            )
        return LlmResponse(
            text=text, model="judge-model", provider=self.name, input_tokens=100, output_tokens=50
        )


@pytest.mark.usefixtures("pack")
def test_the_judge_runs_n_times_and_the_lowest_run_is_what_the_policy_uses(alpha):
    with tenant_context(alpha):
        EvaluationSettings.objects.update_or_create(pk=1, defaults={"judge_runs": 3})
        judge = ScriptedJudge([1.0, 0.6, 0.9])
        evaluation = _evaluate(GOOD, provider=judge)

    assert judge.calls == 3 and len(evaluation.judge_scores) == 3
    assert float(evaluation.score_used) == pytest.approx(min(evaluation.judge_scores), abs=1e-4)
    assert float(evaluation.score_used) < float(evaluation.score)  # the mean passes, the bound does not
    assert float(evaluation.judge_spread) == pytest.approx(
        max(evaluation.judge_scores) - min(evaluation.judge_scores), abs=1e-4
    )
    assert not evaluation.passed
    assert evaluation.judge_model == "judge-model" and evaluation.judge_input_tokens == 300


@pytest.mark.usefixtures("pack")
def test_a_judge_cannot_lift_what_a_check_found_and_a_broken_answer_is_recorded(alpha):
    bad = {**GOOD, "body": "Hi Dana, congrats on the Series B!"}
    with tenant_context(alpha):
        EvaluationSettings.objects.update_or_create(pk=1, defaults={"judge_runs": 2})
        evaluation = _evaluate(bad, provider=ScriptedJudge([1.0, 1.0], broken={2}))

    assert evaluation.dimensions["factuality"]["score"] < 1.0
    assert evaluation.dimensions["factuality"]["judge"] == [1.0]
    assert len(evaluation.judge_errors) == 1 and "judge run 2" in evaluation.judge_errors[0]


@pytest.mark.usefixtures("pack")
def test_every_evaluation_records_what_replays_it(alpha):
    with tenant_context(alpha):
        first = _evaluate(GOOD)
        again = _evaluate(GOOD)
    assert first.rubric_hash == rubric_hash() and first.rubric
    assert first.prompt_hash and first.prompt_hash == again.prompt_hash
    assert first.messaging_pack_version == 1 and first.voice_rules["postal_address"] == ADDRESS
    assert first.subject["facts"] == FACTS


def test_evaluations_stay_in_their_tenant(alpha, bravo):
    with tenant_context(alpha):
        _evaluate(GOOD)
        assert Evaluation.objects.count() == 1
    with tenant_context(bravo):
        assert Evaluation.objects.count() == 0
