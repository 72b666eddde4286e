"""lifecycle-audit golden tests: a known set of leads in, the exact distribution, stalled, at-risk,
upsell and handoff lists, recommendations and warnings out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

import skills.builtin.lifecycle_audit  # noqa: F401  (registers the skill)
from campaigns.models import Lead, LifecycleStage
from evaluation.services import evaluate
from skills import registry
from skills.errors import InputsInvalid
from skills.testing import skill_exercise

SLUG = "lifecycle-audit"


def _lead(email, stage, *, days=0, **fields):
    lead = Lead.objects.create(email=email, lifecycle_stage=stage, **fields)
    if days:
        Lead.objects.filter(pk=lead.pk).update(updated_at=timezone.now() - timedelta(days=days))
    return lead


def _known_base():
    """The golden base: one lead per rule and one just either side of each threshold."""
    return {
        "sub": _lead("sub@acme.example", "subscriber", days=100),  # 100 > 90: stalled
        "lead_fresh": _lead("lead.fresh@acme.example", "lead", days=10),
        "lead_thirty": _lead("lead.thirty@acme.example", "lead", days=30),  # 30 is not > 30
        "lead_old": _lead("lead.old@acme.example", "lead", days=31, icp_score=40),  # stalled
        "mql_80": _lead(
            "mql.eighty@acme.example", "mql", icp_score=80, icp_reasons=["industry SaaS matches"]
        ),
        "mql_79": _lead("mql.seventynine@acme.example", "mql", icp_score=79),  # not a handoff
        "mql_old": _lead("mql.old@acme.example", "mql", days=20, icp_score=90),  # handoff and stalled
        "sql_old": _lead("sql.old@acme.example", "sql", days=22),  # 22 > 21: stalled
        "opp": _lead("opp@acme.example", "opportunity", days=10),
        # 0.6 * 1 + 0.4 * (1 - 0.5) = 0.8: at risk
        "cust_quiet": _lead(
            "cust.quiet@acme.example", "customer", days=200, icp_score=50, icp_tier="C", company_size=100
        ),
        # 0.5 * 0.8 + 0.3 * 1 + 0.2 * 0.5 = 0.8: an upsell candidate, exactly at the threshold
        "cust_growing": _lead("cust.growing@acme.example", "customer", icp_score=80, company_size=200),
        # risk 0.32, upsell 0.6: neither
        "cust_steady": _lead("cust.steady@acme.example", "customer", days=60, icp_score=70, company_size=100),
        # quiet, but a good fit: 0.6 * 1 + 0.4 * 0.2 = 0.68, not at risk
        "cust_fit": _lead("cust.fit@acme.example", "customer", days=200, icp_score=80, company_size=50),
        # no score: tier A's fit 0.9; 0.45 + 0.3 * 0.9 + 0.2 * 1 = 0.92
        "fan": _lead("fan@acme.example", "evangelist", days=18, icp_tier="A", company_size=1500),
    }


@pytest.mark.django_db
def test_the_findings_of_a_known_base(alpha):
    with tenant_context(alpha):
        leads = _known_base()
        out = skill_exercise(SLUG, {"segment": "all"}).output

    ids = {name: lead.pk for name, lead in leads.items()}
    assert out["record_count"] == 14
    assert out["stage_distribution"] == {
        "subscriber": 1,
        "lead": 3,
        "mql": 3,
        "sql": 1,
        "opportunity": 1,
        "customer": 4,
        "evangelist": 1,
    }
    assert out["stalled"] == [
        {
            "lead_id": ids["sub"],
            "email": "sub@acme.example",
            "stage": "subscriber",
            "days": 100,
            "stall_days": 90,
        },
        {
            "lead_id": ids["lead_old"],
            "email": "lead.old@acme.example",
            "stage": "lead",
            "days": 31,
            "stall_days": 30,
        },
        {
            "lead_id": ids["sql_old"],
            "email": "sql.old@acme.example",
            "stage": "sql",
            "days": 22,
            "stall_days": 21,
        },
        {
            "lead_id": ids["mql_old"],
            "email": "mql.old@acme.example",
            "stage": "mql",
            "days": 20,
            "stall_days": 14,
        },
    ]
    assert out["handoff_candidates"] == [
        {
            "lead_id": ids["mql_old"],
            "email": "mql.old@acme.example",
            "stage": "mql",
            "score": 90.0,
            "reasons": ["MQL with ICP score 90 ≥ 80 (seed 000 §8.1)"],
            "destination": "sales queue",
        },
        {
            "lead_id": ids["mql_80"],
            "email": "mql.eighty@acme.example",
            "stage": "mql",
            "score": 80.0,
            "reasons": ["MQL with ICP score 80 ≥ 80 (seed 000 §8.1)", "industry SaaS matches"],
            "destination": "sales queue",
        },
    ]
    assert out["at_risk"] == [
        {
            "lead_id": ids["cust_quiet"],
            "email": "cust.quiet@acme.example",
            "stage": "customer",
            "score": 0.8,
            "reasons": [
                "last updated 200 days ago: inactivity 1.00 (full at 180)",
                "ICP score 50: fit 0.50",
                "risk 0.80 ≥ 0.7 (seed 000 §8.1)",
            ],
            "destination": "CSM queue",
        }
    ]
    assert out["upsell_candidates"] == [
        {
            "lead_id": ids["fan"],
            "email": "fan@acme.example",
            "stage": "evangelist",
            "score": 0.92,
            "reasons": [
                "no ICP score, tier A: fit 0.90",
                "last updated 18 days ago: inactivity 0.10 (full at 180)",
                "company size 1500: size 1.00",
                "upsell 0.92 ≥ 0.8 (seed 000 §8.1)",
            ],
            "destination": "account manager",
        },
        {
            "lead_id": ids["cust_growing"],
            "email": "cust.growing@acme.example",
            "stage": "customer",
            "score": 0.8,
            "reasons": [
                "ICP score 80: fit 0.80",
                "last updated 0 days ago: inactivity 0.00 (full at 180)",
                "company size 200: size 0.50",
                "upsell 0.80 ≥ 0.8 (seed 000 §8.1)",
            ],
            "destination": "account manager",
        },
    ]
    assert out["counts"] == {"stalled": 4, "at_risk": 1, "upsell_candidates": 2, "handoff_candidates": 2}
    assert out["warnings"] == [
        "Only 14 record(s): the findings describe them, but fewer than 50 records are too few to judge "
        "the whole base by.",
        "6 lead(s) have no ICP score: an MQL needs one to be handed off, and a customer's fit falls back "
        "to its tier (or 0.5). Run icp-scoring first.",
    ]
    assert out["missing_lead_ids"] == []
    assert out["rules"]["handoff_min_score"] == 80.0
    assert out["rules"]["stall_days"] == {
        "subscriber": 90,
        "lead": 30,
        "mql": 14,
        "sql": 21,
        "opportunity": 45,
    }


@pytest.mark.django_db
def test_an_mql_at_79_is_not_a_handoff_and_at_80_is(alpha):
    with tenant_context(alpha):
        below = _lead("below@acme.example", "mql", icp_score="79.99")
        at = _lead("at@acme.example", "mql", icp_score=80)
        unscored = _lead("unscored@acme.example", "mql")
        out = skill_exercise(SLUG, {"lead_ids": [below.pk, at.pk, unscored.pk]}).output
    assert [c["lead_id"] for c in out["handoff_candidates"]] == [at.pk]
    assert out["counts"]["handoff_candidates"] == 1


@pytest.mark.django_db
def test_every_recommendation_is_a_full_action_package(alpha):
    with tenant_context(alpha):
        _known_base()
        recommendations = skill_exercise(SLUG, {"segment": "all"}).output["recommendations"]

    assert [(r["kind"], r["owner"], r["effort"], r["lead_count"]) for r in recommendations] == [
        ("handoff", "Sales development rep", "low", 2),
        ("at_risk", "Customer success manager", "medium", 1),
        ("upsell", "Account manager", "medium", 2),
        ("stalled", "Marketing operations", "medium", 4),
    ]
    for rec in recommendations:
        assert set(rec) == {
            "kind",
            "title",
            "why",
            "expected_lift",
            "effort",
            "checklist",
            "owner",
            "lead_count",
        }
        assert rec["title"] and rec["why"] and len(rec["checklist"]) >= 3
        lift = rec["expected_lift"]
        assert set(lift) == {"metric", "min", "max", "confidence"}
        assert 0 < lift["min"] <= lift["max"] <= 1 and 0 < lift["confidence"] <= 1
    assert recommendations[0]["why"] == (
        "2 MQL(s) have an ICP score of 80 or more, the seed's MQL to SQL trigger: they belong in the "
        "sales queue."
    )
    assert recommendations[3]["why"] == (
        "4 lead(s) have sat in their stage longer than its limit (subscriber 1, lead 1, sql 1, mql 1)."
    )


@pytest.mark.django_db
def test_nothing_found_recommends_nothing(alpha):
    with tenant_context(alpha):
        _lead("fresh@acme.example", "lead", icp_score=50)
        out = skill_exercise(SLUG, {"segment": "all"}).output
    assert out["counts"] == {"stalled": 0, "at_risk": 0, "upsell_candidates": 0, "handoff_candidates": 0}
    assert out["recommendations"] == []


@pytest.mark.django_db
def test_a_renamed_mql_stage_and_an_unknown_stage(alpha):
    with tenant_context(alpha):
        LifecycleStage.objects.create(
            key="marketing_qualified",
            label="Marketing qualified",
            crm_value="marketingqualifiedlead",
            order=35,
        )
        renamed = _lead("renamed@acme.example", "marketing_qualified", days=15, icp_score=85)
        _lead("ghost@acme.example", "ghost", days=400, icp_score=99)
        out = skill_exercise(SLUG, {"segment": "all"}).output

    assert out["stage_distribution"]["marketing_qualified"] == 1
    assert out["stage_distribution"]["ghost"] == 1
    assert [c["lead_id"] for c in out["handoff_candidates"]] == [renamed.pk]
    # the renamed stage keeps the MQL stall limit (14 days); the unknown stage is not audited
    assert out["stalled"] == [
        {
            "lead_id": renamed.pk,
            "email": "renamed@acme.example",
            "stage": "marketing_qualified",
            "days": 15,
            "stall_days": 14,
        }
    ]
    assert "1 lead(s) are in a stage the taxonomy does not know ('ghost'): not audited." in out["warnings"]


@pytest.mark.django_db
def test_a_stage_segment_with_lists_capped(alpha):
    with tenant_context(alpha):
        leads = _known_base()
        out = skill_exercise(SLUG, {"segment": "stage", "stage": "lead", "list_limit": 1}).output
        named = skill_exercise(SLUG, {"lead_ids": [leads["fan"].pk, 999_999]}).output

    assert out["record_count"] == 3
    assert out["stage_distribution"]["lead"] == 3 and out["stage_distribution"]["mql"] == 0
    assert [s["lead_id"] for s in out["stalled"]] == [leads["lead_old"].pk]
    assert out["counts"]["stalled"] == 1
    assert named["record_count"] == 1 and named["missing_lead_ids"] == [999_999]


@pytest.mark.django_db
def test_list_limit_caps_the_lists_not_the_counts(alpha):
    with tenant_context(alpha):
        _known_base()
        out = skill_exercise(SLUG, {"segment": "all", "list_limit": 2}).output
    assert len(out["stalled"]) == 2 and out["counts"]["stalled"] == 4
    assert [s["email"] for s in out["stalled"]] == ["sub@acme.example", "lead.old@acme.example"]


@pytest.mark.django_db
def test_the_report_is_evaluated_and_proposes_nothing(alpha):
    with tenant_context(alpha):
        _known_base()
        exercise = skill_exercise(SLUG, {"segment": "all"})
        assert exercise.actions == []
        assert exercise.subject.items[0]["summary"] == (
            "14 records: 2 handoff candidate(s), 1 at risk, 2 upsell candidate(s), 4 stalled; "
            "4 recommendation(s)."
        )
        evaluation = evaluate(
            run=exercise.run,
            subject=exercise.subject,
            output=exercise.output,
            output_schema=registry.get(SLUG).contract.output_schema,
        )
    assert evaluation.score is not None


def test_the_contract_is_a_report():
    contract = registry.get(SLUG).contract
    assert contract.problems() == []
    assert contract.modes == ("suggest", "preview") and contract.action_kinds == ()
    assert (contract.llm.max_calls, contract.llm.max_input_tokens, contract.llm.max_output_tokens) == (
        0,
        0,
        0,
    )
    assert (contract.sla.expected_seconds, contract.sla.p95_target_seconds, contract.sla.max_seconds) == (
        30,
        45,
        120,
    )


@pytest.mark.django_db
def test_inputs_that_do_not_fit_are_refused():
    contract = registry.get(SLUG).contract
    for bad in (
        {},
        {"segment": "tier"},
        {"segment": "stage"},
        {"segment": "tier", "tier": "E"},
        {"segment": "everyone"},
        {"lead_ids": []},
        {"lead_ids": [0]},
        {"segment": "all", "limit": 0},
        {"segment": "all", "list_limit": 0},
        {"segment": "all", "list_limit": 501},
        {"segment": "all", "x": 1},
    ):
        with pytest.raises(InputsInvalid):
            registry.validate_inputs(contract, bad)
    assert registry.validate_inputs(contract, {"segment": "tier", "tier": "A", "list_limit": 500})
