"""data-quality golden tests: a known set of leads in, the exact figures, checks and worst records out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from campaigns.models import Lead
from evaluation.services import evaluate
from skills import registry
from skills.errors import InsufficientData
from skills.services.runner import data_requirements_check
from skills.testing import skill_exercise


def _lead(email, **fields):
    defaults = {
        "first_name": "Dana",
        "last_name": "Lee",
        "company": "Globex",
        "company_domain": "globex.example",
        "title": "VP Sales",
        "industry": "SaaS",
        "company_size": 200,
        "country": "US",
        "lifecycle_stage": "lead",
    }
    return Lead.objects.create(email=email, **{**defaults, **fields})


def _stale(lead, days):
    Lead.objects.filter(pk=lead.pk).update(updated_at=timezone.now() - timedelta(days=days))


@pytest.mark.django_db
def test_the_figures_checks_and_worst_records_of_a_known_base(alpha):
    with tenant_context(alpha):
        _lead("good@globex.example")
        _lead("good2@globex.example")
        blank = _lead("blank@globex.example", company="", lifecycle_stage="", country="")
        bad = _lead("bad@globex.example", company_domain="WWW.Globex.Example")
        _stale(bad, 400)

        out = skill_exercise("data-quality", {"segment": "all"}).output

    assert out["record_count"] == 4
    # 40 cells, 3 empty
    assert out["completeness"] == pytest.approx(37 / 40, abs=1e-4)
    assert out["fields"]["company"]["completeness"] == 0.75
    # the non-canonical domain is the one invalid value
    assert out["fields"]["company_domain"]["invalid"] == 1
    assert out["fields"]["email"]["validity"] == 1.0
    assert out["freshness"] == 0.75
    checks = {c["name"]: c["passed"] for c in out["checks"]}
    assert checks == {
        "overall_score": True,
        "email_coverage": True,
        "lifecycle_stage_coverage": False,  # 3 of 4 < 80 %
        "company_coverage": True,  # 3 of 4 ≥ 70 %
    }
    assert out["passed"] is False
    worst = out["worst_records"]
    assert [w["email"] for w in worst] == ["bad@globex.example", "blank@globex.example"]
    assert any("canonical" in issue for issue in worst[0]["issues"])
    assert any("stale" in issue for issue in worst[0]["issues"])
    assert worst[1]["issues"] == ["missing: company, country, lifecycle_stage"]
    assert blank.pk not in out["missing_lead_ids"]
    assert out["warnings"], "four records are too few to judge a base by"


@pytest.mark.django_db
def test_named_leads_that_do_not_exist_are_reported_and_an_empty_base_is_refused(alpha):
    with tenant_context(alpha):
        lead = _lead("one@globex.example")
        out = skill_exercise("data-quality", {"lead_ids": [lead.pk, 999_999]}).output
        assert out["record_count"] == 1 and out["missing_lead_ids"] == [999_999]
        Lead.objects.all().delete()
        exercise = skill_exercise("data-quality", {"segment": "all"})
        # what the runner checks before it runs: nothing to measure is a refusal
        with pytest.raises(InsufficientData, match="0 record"):
            data_requirements_check(registry.get("data-quality").contract, exercise.records)


@pytest.mark.django_db
def test_the_report_is_evaluated_and_proposes_nothing(alpha):
    with tenant_context(alpha):
        _lead("good@globex.example")
        exercise = skill_exercise("data-quality", {"segment": "all"})
        assert exercise.actions == []
        assert "1 records" in exercise.subject.items[0]["summary"]
        evaluation = evaluate(
            run=exercise.run,
            subject=exercise.subject,
            output=exercise.output,
            output_schema=registry.get("data-quality").contract.output_schema,
        )
    assert evaluation.score is not None


@pytest.mark.django_db
def test_inputs_that_name_no_leads_are_refused():
    contract = registry.get("data-quality").contract
    from skills.errors import InputsInvalid

    for bad in ({}, {"segment": "tier"}, {"segment": "stage"}, {"lead_ids": []}, {"segment": "all", "x": 1}):
        with pytest.raises(InputsInvalid):
            registry.validate_inputs(contract, bad)
