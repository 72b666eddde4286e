"""reply-handler golden tests: the rules on real-looking replies, and the skill's next actions."""

from __future__ import annotations

from datetime import date

import pytest
from django_tenants.utils import tenant_context

from campaigns.messaging import DEFAULT_PACK, messaging_pack_save
from campaigns.models import Lead
from connectors.models import Suppression, WebhookEvent
from skills import registry
from skills.builtin.reply_rules import reply_classify, reply_text_clean
from skills.errors import InputsInvalid, InsufficientData
from skills.testing import skill_exercise

RECEIVED = date(2026, 12, 2)  # a Wednesday

GOLDEN = [
    # text, category, objection type, return date, follow up on, referral
    ("Please unsubscribe me.", "unsubscribe", "", None, None, ""),
    ("Not interested. Remove me from your list.", "unsubscribe", "", None, None, ""),
    ("STOP emailing me", "unsubscribe", "", None, None, ""),
    (
        "I am out of the office until December 14 with limited access to email.",
        "out_of_office",
        "",
        date(2026, 12, 14),
        date(2026, 12, 15),
        "",
    ),
    ("On leave, back on 5 January.", "out_of_office", "", date(2027, 1, 5), date(2027, 1, 6), ""),
    ("OOO, returning 2027-01-04.", "out_of_office", "", date(2027, 1, 4), date(2027, 1, 5), ""),
    ("Out of office, back Monday.", "out_of_office", "", date(2026, 12, 7), date(2026, 12, 8), ""),
    ("I'm on vacation.", "out_of_office", "", None, date(2026, 12, 10), ""),
    (
        "Wrong person, try my colleague jo@globex.example",
        "wrong_person",
        "",
        None,
        None,
        "jo@globex.example",
    ),
    ("Dana is no longer with Globex.", "wrong_person", "", None, None, ""),
    ("Not right now, maybe next quarter.", "not_now", "", None, date(2027, 3, 2), ""),
    ("Reach out in 2 months please.", "not_now", "", None, date(2027, 1, 31), ""),
    ("Too expensive for us.", "objection", "price", None, None, ""),
    (
        "We already use Outreach and are happy with our current setup.",
        "objection",
        "competitor",
        None,
        None,
        "",
    ),
    ("Thanks but we don't need this.", "objection", "no_need", None, None, ""),
    ("Not my decision, my CFO decides.", "objection", "authority", None, None, ""),
    ("How did you get my email?", "objection", "trust", None, None, ""),
    ("Interested! Can we set up a call?", "interested", "", None, None, ""),
    ("Send me more information and pricing.", "interested", "", None, None, ""),
    ("Ok.", "unclear", "", None, None, ""),
]


@pytest.mark.parametrize(("text", "category", "objection", "back", "follow", "referral"), GOLDEN)
def test_the_rules_classify_each_reply(text, category, objection, back, follow, referral):
    found = reply_classify(text, received=RECEIVED, sender="dana@globex.example")

    assert (found.category, found.objection_type) == (category, objection), found.reasons
    assert found.return_date == back
    assert found.follow_up_on == follow
    assert found.referral_email == referral
    assert found.reasons


def test_our_own_quoted_email_below_the_reply_is_not_read():
    text = "Not for us, we don't need it.\n\nOn Mon, Dec 1, 2026 Sam wrote:\n> Interested in a call?"

    assert reply_text_clean(text) == "Not for us, we don't need it."
    assert reply_classify(text, received=RECEIVED).objection_type == "no_need"


def test_a_vendor_flagged_auto_reply_is_out_of_office_even_without_the_words():
    found = reply_classify("Thanks for your email.", received=RECEIVED, auto_reply=True)

    assert found.category == "out_of_office" and found.return_date is None


def _setup(alpha, *, source_system="hubspot"):
    messaging_pack_save(
        acting_user=None,
        **{
            **DEFAULT_PACK,
            "postal_address": "1 Main St, Springfield, IL 62701",
            "company_name": "Acme Growth",
        },
    )
    return Lead.objects.create(
        email="dana@globex.example",
        first_name="Dana",
        company="Globex",
        title="VP Sales",
        source_system=source_system,
    )


@pytest.mark.django_db
def test_an_interested_reply_gets_a_drafted_answer_with_the_footer_and_a_crm_tag(alpha):
    with tenant_context(alpha):
        lead = _setup(alpha)
        event = WebhookEvent.objects.create(
            system="instantly",
            event_id="r-1",
            event_type="reply_received",
            email="dana@globex.example",
            payload={
                "reply_text": "Sounds interesting, can we book a call?",
                "reply_subject": "Globex and you",
            },
        )
        exercise = skill_exercise("reply-handler", {"event_id": event.pk})

    out = exercise.output
    assert (out["category"], out["lead_id"], out["tag"]) == ("interested", lead.pk, "mh1-interested")
    assert out["draft"]["subject"] == "Re: Globex and you"
    assert out["draft"]["body"].startswith("Hi Dana,")
    assert out["draft"]["body"].endswith("1 Main St, Springfield, IL 62701")
    assert [(a.kind, a.payload.get("tag")) for a in exercise.actions] == [
        ("email.send", None),
        ("crm.add_tag", "mh1-interested"),
    ]
    assert exercise.actions[0].payload["to"] == "dana@globex.example"
    assert exercise.subject.kind == "reply" and exercise.subject.is_customer_facing


@pytest.mark.django_db
def test_a_suppressed_sender_gets_no_email_and_an_out_of_office_no_draft(alpha):
    with tenant_context(alpha):
        _setup(alpha, source_system="csv")
        Suppression.objects.create(email="dana@globex.example", reason="unsubscribed", source="instantly")
        objection = skill_exercise(
            "reply-handler", {"email": "Dana@Globex.example", "text": "Too expensive for us."}
        )
        away = skill_exercise("reply-handler", {"email": "dana@globex.example", "text": "OOO until Friday."})

    assert objection.output["category"] == "objection" and objection.output["suppressed"] is True
    assert objection.output["draft"] is None and objection.actions == []  # a CSV lead: no CRM to tag
    assert away.output["draft"] is None and away.output["follow_up_on"]
    assert away.output["next_step"].startswith("No email now; follow up on ")


@pytest.mark.django_db
def test_a_reply_without_text_or_a_known_event_is_refused(alpha):
    with tenant_context(alpha):
        with pytest.raises(InsufficientData, match="no stored event"):
            skill_exercise("reply-handler", {"event_id": 999_999})
        event = WebhookEvent.objects.create(
            system="instantly", event_id="r-9", event_type="reply_received", email="a@b.example", payload={}
        )
        with pytest.raises(InsufficientData, match="no text"):
            skill_exercise("reply-handler", {"event_id": event.pk})
    contract = registry.get("reply-handler").contract
    for bad in ({}, {"email": "a@b.example"}, {"event_id": 1, "email": "a@b.example", "text": "x"}):
        with pytest.raises(InputsInvalid):
            registry.validate_inputs(contract, bad)
