"""campaign-crafter golden tests: leads and a messaging pack in, the exact emails out."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from campaigns.messaging import DEFAULT_PACK, messaging_pack_activate, messaging_pack_save
from campaigns.models import Lead, MessagingPack
from connectors.models import Suppression
from evaluation.services import evaluate
from skills import registry
from skills.errors import InsufficientData
from skills.testing import skill_exercise

ADDRESS = "500 Market St, San Francisco, CA 94105"
PACK = {
    "company_name": "Acme Growth",
    "sender_name": "Sam Lee",
    "value_proposition": "We help SaaS teams keep their pipeline clean.",
    "tier_templates": {
        "A": {
            "subject": "{company} and {pain_point}",
            "body": (
                "Hi {first_name},\n\nAs {title} at {company}, {pain_point} is likely on your desk. "
                "We help {industry} teams take that work off the list.\n\nWorth a 20-minute call next week?"
            ),
            "follow_ups": [
                {"after_days": 3, "subject": "Re: {company}", "body": "Hi {first_name}, a nudge."}
            ],
        },
    },
    "personalisation_rules": {"pain_points": {"SaaS": "CRM hygiene"}, "fallback_first_name": "there"},
    "forbidden_claims": ["guaranteed results"],
    "brand_words": ["pipeline"],
    "avoid_words": ["synergy"],
    "postal_address": ADDRESS,
}


@pytest.fixture
def pack(alpha):
    with tenant_context(alpha):
        return messaging_pack_save(acting_user=None, **PACK)


def _lead(email, tier="A", **fields):
    defaults = {"first_name": "Dana", "company": "Globex", "title": "VP Sales", "industry": "SaaS"}
    return Lead.objects.create(email=email, icp_tier=tier, icp_score=90, **{**defaults, **fields})


def test_a_tier_a_lead_gets_its_templates_email_with_the_footer(alpha, pack):
    with tenant_context(alpha):
        lead = _lead("dana@globex.example")
        _lead("other@initech.example", tier="B")
        done = skill_exercise("campaign-crafter", {"tier": "A", "include_follow_ups": True})

    assert done.output["messaging_pack_version"] == pack.version
    [email] = done.output["emails"]
    assert email["to"] == "dana@globex.example" and email["to_name"] == "Dana"
    assert email["subject"] == "Globex and CRM hygiene"
    assert email["body"] == (
        "Hi Dana,\n\nAs VP Sales at Globex, CRM hygiene is likely on your desk. We help SaaS teams take "
        "that work off the list.\n\nWorth a 20-minute call next week?\n\nSam Lee\nAcme Growth\n" + ADDRESS
    )
    assert email["follow_ups"][0]["after_days"] == 3 and email["follow_ups"][0]["body"].endswith(ADDRESS)
    [action] = done.actions
    assert action.kind == "email.send" and action.key == f"lead:{lead.pk}"
    assert action.payload == {
        "to": "dana@globex.example",
        "to_name": "Dana",
        "subject": email["subject"],
        "body": email["body"],
    }
    assert f"messaging pack v{pack.version}" in action.reasoning


def test_its_emails_pass_the_evaluation(alpha, pack):
    with tenant_context(alpha):
        _lead("dana@globex.example")
        done = skill_exercise("campaign-crafter", {"tier": "A"})
        evaluation = evaluate(
            subject=done.subject,
            output=done.output,
            output_schema=registry.get("campaign-crafter").contract.output_schema,
        )
    assert evaluation.passed, evaluation.issues
    assert evaluation.messaging_pack_version == pack.version


def test_missing_fields_fall_back_and_never_leave_a_placeholder(alpha, pack):
    with tenant_context(alpha):
        _lead("nobody@initech.example", first_name="", title="", industry="Retail")
        done = skill_exercise("campaign-crafter", {"tier": "A"})
    [email] = done.output["emails"]
    assert email["body"].startswith("Hi there,\n\nAs a leader at Globex, pipeline work is")
    assert "{" not in email["body"] and "{" not in email["subject"]


def test_shorter_keeps_the_greeting_the_first_sentences_and_the_question(alpha, pack):
    with tenant_context(alpha):
        _lead("dana@globex.example")
        full = skill_exercise("campaign-crafter", {"tier": "A"}).output["emails"][0]["body"]
        short = skill_exercise("campaign-crafter", {"tier": "A"}, instructions="shorter please").output[
            "emails"
        ][0]
    assert short["body"] == (
        "Hi Dana,\n\nAs VP Sales at Globex, CRM hygiene is likely on your desk.\n\n"
        "Worth a 20-minute call next week?\n\nSam Lee\nAcme Growth\n" + ADDRESS
    )
    assert len(short["body"]) < len(full)


def test_suppressed_leads_are_left_out_and_counted(alpha, pack):
    with tenant_context(alpha):
        _lead("dana@globex.example")
        blocked = _lead("gone@initech.example")
        Suppression.objects.create(email="gone@initech.example", reason="unsubscribe", source="admin")
        done = skill_exercise("campaign-crafter", {"tier": "A"})
    assert [e["to"] for e in done.output["emails"]] == ["dana@globex.example"]
    assert done.output["skipped"] == [{"lead_id": blocked.pk, "reason": "suppressed"}]


def test_without_a_messaging_pack_the_run_is_refused_with_the_reason(alpha):
    with tenant_context(alpha):
        _lead("dana@globex.example")
        with pytest.raises(InsufficientData, match="no active messaging pack"):
            skill_exercise("campaign-crafter", {"tier": "A"})


def test_the_pack_is_versioned_and_an_old_version_can_come_back(alpha, pack):
    with tenant_context(alpha):
        second = messaging_pack_save(acting_user=None, value_proposition="Cleaner pipelines.")
        assert (second.version, second.company_name) == (pack.version + 1, "Acme Growth")
        assert list(MessagingPack.objects.filter(is_active=True)) == [second]
        messaging_pack_activate(acting_user=None, version=pack.version)
        assert MessagingPack.objects.get(is_active=True).version == pack.version
        assert MessagingPack.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"postal_address": " "}, "postal_address", "postal address"),
        (
            {"tier_templates": {"A": {"subject": "Hi {frist_name}", "body": "x"}}},
            "tier_templates",
            "frist_name",
        ),
        ({"tier_templates": {"A": {"subject": "Hi", "body": ""}}}, "tier_templates", "body is empty"),
        ({"tier_templates": {}}, "tier_templates", "at least one tier"),
    ],
)
def test_a_bad_pack_is_refused_and_nothing_is_saved(alpha, change, field, message):
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as caught:
            messaging_pack_save(
                acting_user=None, **{**DEFAULT_PACK, "company_name": "A", "postal_address": ADDRESS, **change}
            )
        assert message in " ".join(caught.value.message_dict[field])
        assert MessagingPack.objects.count() == 0
