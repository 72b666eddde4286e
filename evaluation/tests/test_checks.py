"""The deterministic checks, one by one, on the kind of text a reader would get: what each finds,
how bad it says it is, and that clean text gives no finding."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core import mail
from django.db import connection

from approvals.models import Status
from approvals.services import action_approve, action_execute
from approvals.tests.factories import email_payload, propose_email, set_phase
from connectors.executors import unsubscribe_email
from evaluation.checks import VoiceRules, run_checks
from evaluation.checks.ai_washing import ai_washing_check
from evaluation.checks.canspam import canspam_findings
from evaluation.checks.completeness import count_findings, coverage, efficiency_findings, efficiency_score
from evaluation.checks.factuality import factuality_findings
from evaluation.checks.messaging import brand_voice_findings, forbidden_claim_findings
from evaluation.checks.pii import pii_findings
from evaluation.checks.schema import MAX_REPORTED, empty_required_findings, schema_findings
from evaluation.checks.spam import spam_findings
from evaluation.dimensions import AiWashing, Dimension, Severity
from skills.base import EvaluationSubject
from tenants.policy.models import SendingPolicy
from tenants.roles import Role

ADDRESS = "1 Main St, Springfield, IL 62701"
RULES = VoiceRules(
    version=3,
    company_name="Acme",
    sender_name="Sam",
    postal_address=ADDRESS,
    forbidden_claims=("guaranteed results",),
    brand_words=("clear",),
    avoid_words=("synergy",),
    max_words=40,
    approved_text="We cut churn by 30% in a quarter.",
)
FACTS = {
    "l1": {
        "first_name": "Dana",
        "company": "Globex",
        "title": "VP Sales",
        "industry": "SaaS",
        "company_size": 120,
    }
}
BODY = f"Hi Dana,\n\nWe keep churn reporting clear. Worth a call next week?\n\nAcme, {ADDRESS}"
EMAIL = {"key": "l1", "to": "dana@globex.example", "subject": "Churn at Globex", "body": BODY}
EMAIL_SCHEMA = {
    "type": "object",
    "required": ["emails"],
    "properties": {
        "emails": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["to", "subject", "body"],
                "properties": {
                    "to": {"type": "string"},
                    "subject": {"type": "string"},
                    "body": {"type": "string"},
                },
            },
        }
    },
}


def _email(body: str, **fields) -> dict:
    return {**EMAIL, "body": body, **fields}


# --- forbidden claims and brand voice ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "quoted"),
    [
        (f"Hi Dana,\n\nWe deliver guaranteed results in 30 days.\n\nAcme, {ADDRESS}", "guaranteed results"),
        ("Hi Dana, Guaranteed   Results, every quarter.", "Guaranteed   Results"),
        ("Hi Dana, we offer guaranteed-results pricing.", "guaranteed-results"),
    ],
)
def test_a_forbidden_claim_from_the_pack_is_high_and_quoted(body, quoted):
    [finding] = forbidden_claim_findings([_email(body)], RULES)

    assert finding.severity == Severity.HIGH and finding.dimension == Dimension.RISK_FLAGS
    assert finding.item == "l1" and finding.flag == "forbidden_claim"
    assert f"“{quoted}”" in finding.message and "messaging pack v3" in finding.message
    assert quoted in finding.suggestion


@pytest.mark.parametrize(
    "body",
    [BODY, "Hi Dana, results are not guaranteed, but churn usually drops.", "Hi Dana, we guarantee nothing."],
)
def test_without_the_forbidden_claim_there_is_no_finding(body):
    assert forbidden_claim_findings([_email(body)], RULES) == []


def test_a_forbidden_claim_in_the_subject_is_found_too():
    [finding] = forbidden_claim_findings([_email(BODY, subject="Guaranteed results for Globex")], RULES)
    assert "The subject makes a forbidden claim" in finding.message


def test_an_avoided_word_is_a_medium_brand_voice_finding():
    body = f"Hi Dana,\n\nThere is real synergy here, and a clear plan.\n\nAcme, {ADDRESS}"
    [finding] = brand_voice_findings([_email(body)], RULES)

    assert finding.severity == Severity.MEDIUM and finding.dimension == Dimension.BRAND_VOICE
    assert "“synergy”, a word the brand avoids" in finding.message and finding.item == "l1"


def test_text_with_none_of_the_brand_words_is_a_low_finding_and_on_brand_text_is_clean():
    [finding] = brand_voice_findings([_email("Hi Dana, worth a call next week?")], RULES)
    assert finding.severity == Severity.LOW and "none of the brand's words (clear)" in finding.message

    assert brand_voice_findings([EMAIL], RULES) == []


@pytest.mark.parametrize(("extra_words", "severity"), [(45, Severity.LOW), (60, Severity.MEDIUM)])
def test_a_body_over_the_packs_word_limit_is_found_and_graded_by_how_far_over(extra_words, severity):
    body = "Hi Dana, a clear note. " + " ".join(["churn"] * (extra_words - 5))

    [finding] = brand_voice_findings([_email(body)], RULES)

    assert finding.severity == severity
    assert f"has {extra_words} words; the messaging pack allows 40" in finding.message


def test_the_postal_address_footer_does_not_count_towards_the_word_limit():
    body = "Hi Dana, a clear note. " + " ".join(["churn"] * 34) + f"\n\nAcme, {ADDRESS}"  # 40 words
    assert brand_voice_findings([_email(body)], RULES) == []


def test_voice_rules_from_a_pack_drop_blank_entries_and_collect_the_approved_copy():
    pack = SimpleNamespace(
        version=7,
        company_name="Acme",
        sender_name="Sam",
        postal_address=ADDRESS,
        forbidden_claims=["guaranteed results", "  "],
        brand_words=["clear", ""],
        avoid_words=["synergy"],
        personalisation_rules={"max_words": 120, "pain_points": {"saas": ["Churn eats 20% of revenue."]}},
        value_proposition="We cut churn.",
        tier_templates={"a": {"opener": "Teams like yours lose deals late."}},
    )

    rules = VoiceRules.from_pack(pack)

    assert rules.forbidden_claims == ("guaranteed results",) and rules.brand_words == ("clear",)
    assert rules.max_words == 120 and rules.version == 7
    for copy in ("We cut churn.", "Churn eats 20% of revenue.", "Teams like yours lose deals late."):
        assert copy in rules.approved_text
    assert VoiceRules.from_pack(None) == VoiceRules()


# --- CAN-SPAM ---------------------------------------------------------------------------------------


def test_an_email_without_the_packs_postal_address_is_flagged_high():
    [finding] = canspam_findings([_email("Hi Dana,\n\nWorth a call next week?\n\nAcme")], RULES)

    assert finding.severity == Severity.HIGH and finding.flag == "can_spam"
    assert "postal address" in finding.message and ADDRESS in finding.suggestion


@pytest.mark.parametrize(
    "footer", [ADDRESS, "1 Main St Springfield IL 62701", "1 Main St,\nSpringfield, IL 62701"]
)
def test_an_email_carrying_the_postal_address_is_clean(footer):
    assert canspam_findings([_email(f"Hi Dana,\n\nWorth a call?\n\nAcme, {footer}")], RULES) == []


def test_without_an_address_in_the_pack_every_email_is_flagged_and_revops_is_told():
    [finding] = canspam_findings([EMAIL], VoiceRules())
    assert finding.severity == Severity.HIGH and "No postal address is set" in finding.message


@pytest.mark.parametrize(
    "own_opt_out",
    [
        "Unsubscribe here: https://acme.example/unsubscribe?u=dana",
        "Not interested? Click here to unsubscribe.",
        "Opt out at https://acme.example/prefs",
    ],
)
def test_an_unsubscribe_link_of_the_bodys_own_is_a_medium_finding(own_opt_out):
    [finding] = canspam_findings([_email(f"Hi Dana,\n\n{own_opt_out}\n\n{ADDRESS}")], RULES)
    assert finding.severity == Severity.MEDIUM and "its own unsubscribe link" in finding.message


@pytest.mark.parametrize("subject", ["Re: churn at Globex", "FWD: quick idea", "fw: churn"])
def test_a_first_touch_pretending_to_be_a_reply_is_flagged_but_a_real_reply_is_not(subject):
    [finding] = canspam_findings([_email(BODY, subject=subject)], RULES)
    assert finding.severity == Severity.MEDIUM and "pretends to be a reply" in finding.message

    assert canspam_findings([_email(BODY, subject=subject, is_reply=True)], RULES) == []


@pytest.fixture
def ae(db, alpha, make_user):
    user = make_user(alpha, Role.AE)
    connection.set_tenant(alpha)
    set_phase("assisted")
    SendingPolicy.objects.update_or_create(pk=1, defaults={"min_delay_seconds": 0})
    yield user
    connection.set_schema_to_public()


@pytest.mark.django_db
def test_the_email_executor_appends_the_one_click_unsubscribe_link_the_canspam_check_relies_on(ae):
    """canspam.py does not ask the body for an opt-out because email.send appends a signed one and
    the RFC 8058 headers; if that ever stops, this fails and the check must change with it."""
    assert canspam_findings([EMAIL], RULES) == []  # no opt-out of its own in the body: clean
    payload = email_payload(to="dana@globex.example", subject=EMAIL["subject"], body=BODY)
    request = propose_email(payload=payload)
    action_approve(request_id=request.pk, acting_user=ae)

    assert action_execute(request.pk) == Status.EXECUTED

    [sent] = mail.outbox
    rendered = sent.message()
    link = rendered["List-Unsubscribe"].strip("<>")
    assert link.startswith(("http://", "https://")) and "/u/" in link
    assert rendered["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent.body.startswith(BODY)  # the skill's text, with its postal address, unchanged
    assert sent.body.endswith(f"\n\n--\nUnsubscribe: {link}")
    assert unsubscribe_email(link.rstrip("/").rsplit("/", 1)[-1]) == "dana@globex.example"


# --- PII ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number", "kind", "severity", "label"),
    [
        ("Pay with 4111 1111 1111 1111 today.", "4111 1111 1111 1111", "card", Severity.CRITICAL, "card"),
        ("Card 5500-0000-0000-0004 is on file.", "5500-0000-0000-0004", "card", Severity.CRITICAL, "card"),
        (
            "Wire to DE89 3704 0044 0532 0130 00.",
            "DE89 3704 0044 0532 0130 00",
            "iban",
            Severity.CRITICAL,
            "IBAN",
        ),
        ("Our IBAN is GB82WEST12345698765432.", "GB82WEST12345698765432", "iban", Severity.CRITICAL, "IBAN"),
        ("Her SSN is 123-45-6789.", "123-45-6789", "ssn", Severity.CRITICAL, "social security"),
        ("Call me on 555-123-4567.", "555-123-4567", "phone", Severity.MEDIUM, "phone number"),
    ],
)
def test_personal_data_is_found_and_only_its_masked_form_is_kept(text, number, kind, severity, label):
    findings, hits = pii_findings([_email(f"Hi Dana,\n\n{text}")])

    [finding], [hit] = findings, hits
    assert (hit.kind, hit.item, hit.field) == (kind, "l1", "body")
    assert hit.masked.endswith(number.replace(" ", "")[-4:]) and set(hit.masked[:-4]) == {"\u2022"}
    assert finding.severity == severity and finding.flag == "pii" and label in finding.message
    assert f"({hit.masked})" in finding.message
    assert number not in finding.message and number[:-4] not in finding.message


@pytest.mark.parametrize(
    "text",
    [
        "Your order 4111111111111112 has shipped.",  # a card-length number failing Luhn
        "Invoice DE89370400440532013001 is attached.",  # an IBAN-shaped one failing mod 97
        "We grew 20% in 2024 and booked 1,250,000 in Q3.",
        "SSN-shaped but never issued: 000-12-3456, 666-12-3456.",
    ],
)
def test_numbers_failing_the_checksum_or_shape_are_not_personal_data(text):
    assert pii_findings([_email(f"Hi Dana, {text}")]) == ([], [])


@pytest.mark.parametrize(
    "text", ["Your order 4111 1111 1111 1112 has shipped.", "Invoice DE89 3704 0044 0532 0130 01 attached."]
)
def test_a_grouped_number_failing_its_checksum_is_not_personal_data(text):
    assert pii_findings([_email(f"Hi Dana, {text}")]) == ([], [])


# --- AI-washing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "phrase", "severity"),
    [
        ("Our fully autonomous AI books meetings for you.", "fully autonomous AI", AiWashing.HIGH),
        ("It will replace your sales team by Q3.", "replace your sales team", AiWashing.HIGH),
        ("An AI that never makes mistakes.", "AI that never makes mistakes", AiWashing.HIGH),
        ("Built on our proprietary AI.", "proprietary AI", AiWashing.MEDIUM),
        ("It is self-learning.", "self-learning", AiWashing.MEDIUM),
        ("Our AI-powered platform cuts churn.", "AI-powered", AiWashing.LOW),
        ("Our AI powered platform cuts churn.", "AI powered", AiWashing.LOW),
        ("We use machine learning to rank leads.", "machine learning", AiWashing.LOW),
    ],
)
def test_ai_washing_phrases_are_found_with_their_severity(sentence, phrase, severity):
    findings, result = ai_washing_check([_email(f"Hi Dana, {sentence}")])

    [finding] = findings
    assert finding.severity == str(severity) and finding.flag == "ai_washing"
    assert f"AI-washing ({severity})" in finding.message and f"“{phrase}”" in finding.message
    assert result.highest_severity == severity and result.warning_count == 1
    assert result.hits[0] == {"phrase": phrase, "severity": str(severity), "item": "l1", "field": "body"}


def test_the_highest_ai_washing_severity_and_every_warning_are_reported():
    body = "Hi Dana, our AI-powered, self-learning tool needs zero human involvement."
    findings, result = ai_washing_check([_email(body, subject="Revolutionary AI for Globex")])

    assert result.highest_severity == AiWashing.HIGH and result.warning_count == len(findings) == 4
    assert result.as_dict()["highest_severity"] == "high"


@pytest.mark.parametrize("body", [BODY, "Hi Dana, our agile team said AI is a tool, nothing more."])
def test_plain_text_has_no_ai_washing(body):
    findings, result = ai_washing_check([_email(body)])
    assert findings == [] and result.highest_severity == AiWashing.NONE and result.warning_count == 0


# --- spam phrasing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        ("body", "Hi Dana, act now: this is a limited time offer.", ["“act now”", "“limited time”"]),
        ("body", "Hi Dana, it is 100% free, no obligation.", ["“100% free”", "“no obligation”"]),
        ("body", "Hi Dana, worth a call?!!", ["repeated exclamation marks"]),
        ("body", "Hi Dana, this is a HUGE SAVING for you.", ["shouts in capitals (HUGE, SAVING)"]),
        ("subject", "FREE audit for Globex", ["shouts in capitals (FREE)"]),
    ],
)
def test_spam_phrasing_is_a_low_finding_each(field, text, expected):
    findings = spam_findings([{**EMAIL, field: text}])

    assert len(findings) == len(expected)
    for finding, words in zip(findings, expected, strict=True):
        assert finding.severity == Severity.LOW and finding.flag == "spam_words"
        assert words in finding.message and f"The {field}" in finding.message


@pytest.mark.parametrize("word", ["risk-free", "risk free"])
def test_one_spam_word_is_one_finding(word):
    [finding] = spam_findings([_email(f"Hi Dana, the trial is {word}.")])
    assert f"“{word}”" in finding.message


@pytest.mark.parametrize(
    "body", [BODY, "Hi Dana, our CRM sync and API keep your SaaS ROI reporting GDPR-safe. Worth a call!"]
)
def test_plain_text_and_acronyms_are_not_spam(body):
    assert spam_findings([_email(body)]) == []


# --- factuality -----------------------------------------------------------------------------------


def _factual(body: str, *, facts=FACTS, customer_facing=True):
    return factuality_findings("emails", [_email(body)], facts, RULES, customer_facing=customer_facing)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            "Hi Dana, as CEO at Globex you know churn.",
            "calls the reader “CEO” but the lead's title is “VP Sales”",
        ),
        ("Hi Dana, as the CTO of Globex, you see it.", "calls the reader “CTO”"),
        ("Hi Dana, with 500 employees at Globex, churn hurts.", "“500 employees”"),
        ("Hi Dana, as a team of 45 you feel churn.", "“team of 45”"),
        ("Hi Maria, quick question about churn.", "greets “Maria” but the lead's first name is “Dana”"),
        ("Hi Dana, the team at Initech told us.", "names “Initech” as the reader's company"),
        ("Hi Dana, congrats on the Series B!", "“Series B” but the lead's data has no funding round"),
        ("Hi Dana, in healthcare churn hurts.", "“healthcare” but the lead's industry is “SaaS”"),
        ("Hi {{first_name}}, quick question.", "template placeholder “{{first_name}}”"),
        ("Hi Dana, we lift reply rates by 45%.", "“45%”"),
    ],
)
def test_a_claim_about_the_lead_that_its_data_contradicts_is_a_high_finding(body, said):
    [finding] = _factual(body)
    assert finding.severity == Severity.HIGH and finding.dimension == Dimension.FACTUALITY
    assert said in finding.message and finding.item == "l1"


@pytest.mark.parametrize(
    "body",
    [
        "Hi Dana, as VP Sales at Globex, a SaaS team of 120, you know churn.",
        "Hi Dana, as Vice President of Sales, with 120 employees at Globex, churn matters.",
        "Hi Dana, Globex's pipeline in software deserves better.",
        "Hi there, we cut churn by 30% in a quarter.",  # the pack's own claim about the sender
        "Hi Dana, Acme's team would love to help.",  # the sender's company, not the reader's
    ],
)
def test_a_claim_that_matches_the_leads_data_or_the_packs_own_copy_is_not_a_finding(body):
    assert _factual(body) == []


def test_an_unsupported_claim_in_internal_text_or_without_data_is_medium():
    [internal] = _factual("Hi Dana, as CEO at Globex you know churn.", customer_facing=False)
    assert internal.severity == Severity.MEDIUM

    findings = _factual("Hi Dana, as CEO you know churn.", facts={})
    assert {f.severity for f in findings} == {Severity.MEDIUM}
    assert any("no lead data was given" in f.message for f in findings)


def test_a_scores_reason_citing_a_missing_field_or_a_wrong_value_is_found():
    reasons = [
        {"field": "company_size", "value": 120, "reason": "Team of 120 fits the ICP"},
        {"field": "company_size", "value": 500},
        {"field": "revenue", "value": "10M"},
        "A team of 900 is in range",
    ]
    findings = factuality_findings(
        "scores", [{"key": "l1", "score": 80, "reasons": reasons}], FACTS, RULES, customer_facing=False
    )

    messages = [f.message for f in findings]
    assert messages == [
        "A reason says company_size is “500” but the lead's company_size is “120”.",
        "A reason cites the lead's “revenue”, which its data does not have.",
        "A reason says “A team of 900 is in range” but 900 is not in the lead's data.",
    ]
    assert [f.severity for f in findings] == [Severity.HIGH, Severity.HIGH, Severity.MEDIUM]


def test_a_report_figure_not_among_the_computed_figures_is_found():
    report = {"key": "weekly", "summary": "Reply rate was 12% across 250 sends, with 40 replies."}
    facts = {"weekly": {"reply_rate": 0.12, "sends": 250, "replies": 30}}

    [finding] = factuality_findings("report", [report], facts, RULES, customer_facing=False)

    assert "says 40, which is not one of the figures" in finding.message
    assert finding.severity == Severity.MEDIUM


# --- schema ---------------------------------------------------------------------------------------


def test_a_missing_required_field_is_a_high_finding_naming_its_path():
    output = {"emails": [{"to": "dana@globex.example", "subject": "Churn"}]}

    [finding] = schema_findings(output, EMAIL_SCHEMA)

    assert finding.severity == Severity.HIGH and finding.dimension == Dimension.SCHEMA_VALIDITY
    assert finding.item == "emails/0" and "at emails/0: 'body' is a required property" in finding.message


def test_a_wrong_type_names_the_field_and_a_fitting_output_is_clean():
    [finding] = schema_findings({"emails": [{**EMAIL, "to": 42}]}, EMAIL_SCHEMA)
    assert finding.item == "emails/0/to" and "42 is not of type 'string'" in finding.message

    assert schema_findings({"emails": [EMAIL]}, EMAIL_SCHEMA) == []
    [root] = schema_findings({}, EMAIL_SCHEMA)
    assert root.item == "(root)" and "'emails' is a required property" in root.message


def test_no_schema_is_a_finding_and_many_errors_are_capped_with_a_count():
    [missing] = schema_findings({"emails": []}, {})
    assert missing.severity == Severity.HIGH and "No output schema was given" in missing.message

    findings = schema_findings({"emails": [{"to": 1}] * 5}, EMAIL_SCHEMA)  # 3 errors each
    assert len(findings) == MAX_REPORTED + 1
    assert findings[-1].message == "…and 5 more schema errors."


@pytest.mark.parametrize("schema", [{"type": "emails"}, {"type": "object", "required": "emails"}])
def test_an_invalid_output_schema_is_one_finding_saying_so(schema):
    [finding] = schema_findings({"emails": []}, schema)
    assert finding.severity == Severity.HIGH and "The output schema itself is invalid" in finding.message


def test_a_required_value_present_but_empty_is_a_completeness_finding():
    output = {"emails": [{**EMAIL, "subject": "  "}, {**EMAIL, "body": ""}]}

    findings = empty_required_findings(output, EMAIL_SCHEMA)

    assert [f.item for f in findings] == ["emails/0/subject", "emails/1/body"]
    assert all(f.severity == Severity.MEDIUM and f.dimension == Dimension.COMPLETENESS for f in findings)
    assert findings[0].message == "emails/0/subject is required and empty."
    assert [f.item for f in empty_required_findings({"emails": []}, EMAIL_SCHEMA)] == ["emails"]
    assert empty_required_findings({"emails": [EMAIL]}, EMAIL_SCHEMA) == []


# --- completeness and context efficiency -------------------------------------------------------------


@pytest.mark.parametrize(
    ("produced", "expected", "share"), [(3, 4, 0.75), (4, 4, 1.0), (6, 4, 1.0), (0, 5, 0.0), (2, None, 1.0)]
)
def test_coverage_is_the_share_of_the_items_asked_for(produced, expected, share):
    assert coverage(produced, expected) == share


@pytest.mark.parametrize(
    ("produced", "expected", "severity", "message"),
    [
        (19, 20, Severity.LOW, "19 of 20 items were produced (95%)."),
        (9, 10, Severity.MEDIUM, "9 of 10 items were produced (90%)."),
        (7, 10, Severity.HIGH, "7 of 10 items were produced (70%)."),
        (5, 4, Severity.LOW, "5 items were produced where 4 were asked for."),
    ],
)
def test_missing_or_extra_items_are_found_and_graded(produced, expected, severity, message):
    [finding] = count_findings(produced, expected)
    assert (finding.severity, finding.message) == (severity, message)
    assert finding.dimension == Dimension.COMPLETENESS


def test_the_right_number_of_items_or_no_expectation_is_clean():
    assert count_findings(4, 4) == [] and count_findings(3, None) == []


@pytest.mark.parametrize(
    ("used", "budget", "score", "severity"),
    [
        (900, 2000, 1.0, None),
        (1000, 2000, 1.0, None),
        (1500, 2000, 0.75, None),
        (1700, 2000, 0.65, Severity.LOW),
        (2000, 2000, 0.5, Severity.LOW),
        (2500, 2000, 0.0, Severity.HIGH),
        (5000, 0, 1.0, None),
    ],
)
def test_context_efficiency_falls_past_half_the_budget_and_over_it_is_high(used, budget, score, severity):
    assert efficiency_score(used, budget)[0] == pytest.approx(score)
    findings = efficiency_findings(used, budget)
    assert [f.severity for f in findings] == ([severity] if severity else [])
    assert all(f.dimension == Dimension.CONTEXT_EFFICIENCY for f in findings)


# --- run_checks -------------------------------------------------------------------------------------


def _run(kind, items, *, customer_facing, facts=FACTS, expected=1, tokens=500):
    subject = EvaluationSubject(
        kind=kind, items=items, facts=facts, expected_count=expected, is_customer_facing=customer_facing
    )
    output = {"emails": items} if kind == "emails" else {"items": items}
    schema = EMAIL_SCHEMA if kind == "emails" else {"type": "object", "required": ["items"]}
    return run_checks(
        subject=subject,
        output=output,
        output_schema=schema,
        rules=RULES,
        tokens_used=tokens,
        token_budget=2000,
    )


def test_a_grounded_email_passes_every_check():
    report = _run("emails", [EMAIL], customer_facing=True)
    assert report.findings == [] and report.pii == [] and report.ai_washing.warning_count == 0


def test_run_checks_collects_every_checks_findings_on_a_bad_email():
    bad = _email(
        "Hi Maria, our AI-powered tool gives guaranteed results. Act now: call 555-123-4567.",
        subject="Re: synergy",
    )

    report = _run("emails", [bad], customer_facing=True, expected=2, tokens=2500)

    checks = {f.check for f in report.findings}
    assert checks == {
        "completeness",
        "context_efficiency",
        "factuality",
        "forbidden_claims",
        "brand_voice",
        "ai_washing",
        "spam",
        "pii",
        "can_spam",
    }
    assert [h.kind for h in report.pii] == ["phone"] and report.ai_washing.highest_severity == AiWashing.LOW


def test_internal_text_is_not_held_to_the_customer_facing_checks():
    report_item = {"key": "weekly", "summary": "Our AI-powered scoring flagged 250 leads; call 555-123-4567."}
    facts = {"weekly": {"flagged": 250, "phone": "555-123-4567"}}

    report = _run("report", [report_item], customer_facing=False, facts=facts)

    assert report.findings == [] and report.pii == [] and report.ai_washing.warning_count == 0


def test_can_spam_applies_to_emails_only():
    reply = {"key": "l1", "reply": "Hi Dana, happy to help. Worth a call next week? It is clear."}
    report = _run("reply", [reply], customer_facing=True)
    assert not any(f.check == "can_spam" for f in report.findings)

    email = _email("Hi Dana, happy to help. Worth a call next week? It is clear.")
    report = _run("emails", [email], customer_facing=True)
    assert [f.check for f in report.findings] == ["can_spam"]
