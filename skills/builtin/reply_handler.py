"""reply-handler: classify a prospect's reply (skills.builtin.reply_rules) and propose the next
action.

What it proposes, by category (each an action request that waits in the approval queue):

- ``interested``: a reply offering a call (``email.send``), and the CRM tag ``mh1-interested``.
- ``objection``: a reply answering the objection's type (``email.send``), and the tag
  ``mh1-objection-<type>``.
- ``not_now``: the tag ``mh1-not-now``; the follow-up date is in the output.
- ``out_of_office``: the tag ``mh1-out-of-office``; no email (the return date and the follow-up
  date are in the output).
- ``wrong_person``: the tag ``mh1-wrong-person``; a referral address is reported, never written
  to (a new person has no legal basis yet: RevOps decides).
- ``unsubscribe``: the tag ``mh1-unsubscribed``. The suppression itself happened when the reply
  arrived (connectors.services.webhook_event_apply), before this run; a reply given by hand is
  reported as not yet suppressed.
- ``unclear``: nothing; the output says a person must read it.

CRM tags are proposed only for a lead from HubSpot or GoHighLevel, and no email to an address
that is suppressed. Reply drafts come from the templates below, personalised from the lead and the
messaging pack, polished by the model (the offline provider answers with the template itself),
with the pack's CAN-SPAM footer; without an active pack no email is drafted.
"""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from skills.base import EvaluationSubject, ProposedAction, Records, Skill
from skills.builtin.campaign_crafter import DRAFT_SCHEMA, fill, footer
from skills.builtin.reply_rules import OBJECTION_TYPES, Category, ReplyClass, reply_classify
from skills.contracts import (
    CostTarget,
    DataRequirements,
    FailureMode,
    LlmBudget,
    ReviewTriggers,
    SkillContract,
    Sla,
)
from skills.errors import InsufficientData
from skills.providers import LlmRequest
from skills.registry import register
from skills.services.context import DataUnavailable

SLUG = "reply-handler"
MAX_TEXT = 20_000
CRM_SYSTEMS = ("hubspot", "gohighlevel")
# The reply drafts, per category and objection type: short, no claim, a question to answer.
REPLY_TEMPLATES: dict[str, str] = {
    Category.INTERESTED: (
        "Hi {first_name},\n\nThanks for getting back to me. Would a 20-minute call this week or next "
        "suit you? Tell me two times that work and I will send an invite."
    ),
    "objection:price": (
        "Hi {first_name},\n\nUnderstood, budget matters. Most teams start with a small pilot so the "
        "cost is clear before any commitment. Would a short call to size one be useful?"
    ),
    "objection:competitor": (
        "Hi {first_name},\n\nGood to hear you have something in place. Many teams use us alongside "
        "their current tool. Would it help to compare notes on what is working for {company}?"
    ),
    "objection:no_need": (
        "Hi {first_name},\n\nThanks for the honest answer. I will not follow up on this. If things "
        "change at {company}, just reply to this email."
    ),
    "objection:authority": (
        "Hi {first_name},\n\nThanks. Who would be the right person to speak with at {company}? "
        "I am happy to keep you in the loop."
    ),
    "objection:trust": (
        "Hi {first_name},\n\nFair question. I wrote because of your role as {title} at {company}. "
        "If you would rather not hear from us, reply 'unsubscribe' and you will not get another email."
    ),
}
TAGS = {
    Category.INTERESTED: "mh1-interested",
    Category.NOT_NOW: "mh1-not-now",
    Category.OUT_OF_OFFICE: "mh1-out-of-office",
    Category.WRONG_PERSON: "mh1-wrong-person",
    Category.UNSUBSCRIBE: "mh1-unsubscribed",
}
NEXT_STEPS = {
    Category.INTERESTED: "Reply offering a call; tag the contact interested.",
    Category.OBJECTION: "Reply answering the objection; tag the contact with its type.",
    Category.NOT_NOW: "No email now; tag the contact and follow up on {follow_up_on}.",
    Category.OUT_OF_OFFICE: "No email now; follow up on {follow_up_on}.",
    Category.WRONG_PERSON: "No email; tag the contact. {referral}",
    Category.UNSUBSCRIBE: "Never contact again (suppressed); tag the contact unsubscribed.",
    Category.UNCLEAR: "A person reads the reply: no rule matched it.",
}
LEAD_FIELDS = ("id", "email", "first_name", "last_name", "company", "title", "source_system")

_DATE_OR_NULL = {"type": ["string", "null"]}
CONTRACT = SkillContract(
    slug=SLUG,
    name="Reply handler",
    description=(
        "Classifies a prospect's reply (interested, objection and its type, not now, unsubscribe, "
        "out of office with the return date, wrong person) and proposes the next action: a reply "
        "draft and a CRM tag. An unsubscribe is suppressed the moment the reply arrives."
    ),
    version="1",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "event_id": {
                "type": "integer",
                "minimum": 1,
                "description": "A stored Instantly reply event (what the webhook starts).",
            },
            "email": {"type": "string", "minLength": 3, "maxLength": 254, "description": "Who replied."},
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
            "subject": {"type": "string", "maxLength": 300},
        },
        "oneOf": [{"required": ["event_id"]}, {"required": ["email", "text"]}],
    },
    output_schema={
        "type": "object",
        "required": [
            "email",
            "lead_id",
            "category",
            "objection_type",
            "return_date",
            "follow_up_on",
            "referral_email",
            "reasons",
            "suppressed",
            "next_step",
            "draft",
            "tag",
        ],
        "properties": {
            "email": {"type": "string"},
            "lead_id": {"type": ["integer", "null"]},
            "category": {"enum": list(Category.ALL)},
            "objection_type": {"enum": ["", *OBJECTION_TYPES]},
            "return_date": _DATE_OR_NULL,
            "follow_up_on": _DATE_OR_NULL,
            "referral_email": {"type": "string"},
            "reasons": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "suppressed": {"type": "boolean"},
            "next_step": {"type": "string", "minLength": 1},
            "draft": {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["subject", "body"],
                        "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
                    },
                ]
            },
            "tag": {"type": "string"},
        },
    },
    modes=("suggest", "preview", "execute"),
    default_mode="execute",
    sla=Sla(expected_seconds=10, max_seconds=120, p95_target_seconds=30),
    retry_budget=1,
    data=DataRequirements(min_records=1, required_coverage={}, on_insufficient="refuse"),
    failure_modes=dict(FailureMode.FALLBACKS),
    review_triggers=ReviewTriggers(),
    action_kinds=("email.send", "crm.add_tag"),
    cost=CostTarget(target_usd=Decimal("0.01"), max_usd=Decimal("0.10")),
    llm=LlmBudget(max_calls=1, max_input_tokens=3000, max_output_tokens=400),
)


def reply_fields(event: Any) -> dict[str, Any]:
    """What an Instantly reply event says: the text, the subject, when, whether it is automatic."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    text = payload.get("reply_text") or payload.get("reply_text_snippet") or payload.get("text") or ""
    received = parse_datetime(str(payload.get("timestamp") or "")) or event.received_at
    if timezone.is_naive(received):
        received = timezone.make_aware(received, UTC)
    return {
        "email": event.email,
        "text": str(text)[:MAX_TEXT],
        "subject": str(payload.get("reply_subject") or payload.get("subject") or "")[:300],
        "received": received,
        "auto_reply": event.event_type == "auto_reply_received",
    }


def reply_classify_event(event: Any) -> ReplyClass:
    """The classification of a stored reply event (the webhook's unsubscribe check uses this)."""
    fields = reply_fields(event)
    return reply_classify(
        fields["text"],
        subject=fields["subject"],
        received=fields["received"],
        sender=fields["email"],
        auto_reply=fields["auto_reply"],
    )


@register
class ReplyHandlerSkill(Skill):
    contract = CONTRACT
    example_inputs = {
        "email": "dana0@globex.example",
        "text": "Sounds interesting, can we book a call next week?",
        "subject": "Re: Globex and CRM hygiene",
    }

    def load(self, ctx, inputs: dict[str, Any]) -> Records:
        from django.db import DatabaseError

        from campaigns.messaging import messaging_pack_active
        from campaigns.models import Lead
        from connectors.models import Suppression, WebhookEvent
        from mh1.addresses import AddressInvalid, domain_of, email_normalize

        try:
            if "event_id" in inputs:
                event = WebhookEvent.objects.filter(pk=inputs["event_id"]).first()
                if event is None:
                    raise InsufficientData(f"There is no stored event #{inputs['event_id']}.")
                reply = reply_fields(event)
                if not reply["email"]:
                    raise InsufficientData(f"Event #{event.pk} names no valid sender address.")
            else:
                try:
                    email = email_normalize(inputs["email"])
                except AddressInvalid as exc:
                    raise InsufficientData(f"The sender's address is not valid: {exc}") from exc
                reply = {
                    "email": email,
                    "text": inputs["text"],
                    "subject": inputs.get("subject", ""),
                    "received": timezone.now(),
                    "auto_reply": False,
                }
            if not reply["text"].strip() and not reply["auto_reply"]:
                raise InsufficientData("The reply has no text to classify.")
            lead = Lead.objects.filter(email=reply["email"]).values(*LEAD_FIELDS).first()
            suppressed = Suppression.objects.filter(email=reply["email"]).exists() or (
                Suppression.objects.filter(domain=domain_of(reply["email"])).exists()
            )
            pack = messaging_pack_active()
        except DatabaseError as exc:
            raise DataUnavailable(f"the reply could not be read: {exc}") from exc
        return Records(
            items=[reply],
            source="connectors.WebhookEvent" if "event_id" in inputs else "inputs",
            meta={"lead": lead, "suppressed": suppressed, "pack": pack},
        )

    def run(self, ctx, inputs: dict[str, Any], records: Records) -> dict[str, Any]:
        reply = records.items[0]
        lead = records.meta["lead"] or {}
        with ctx.step("classify"):
            found = reply_classify(
                reply["text"],
                subject=reply["subject"],
                received=reply["received"],
                sender=reply["email"],
                auto_reply=reply["auto_reply"],
            )
        suppressed = records.meta["suppressed"]
        template_key = (
            f"objection:{found.objection_type}" if found.category == Category.OBJECTION else found.category
        )
        draft = None
        pack = records.meta["pack"]
        if template_key in REPLY_TEMPLATES and not suppressed and pack is not None:
            with ctx.step("draft"):
                draft = self._draft(ctx, pack, lead, reply, REPLY_TEMPLATES[template_key])
        tag = TAGS.get(found.category, "")
        if found.category == Category.OBJECTION:
            tag = f"mh1-objection-{found.objection_type.replace('_', '-')}"
        referral = f"Referred to {found.referral_email}: RevOps decides." if found.referral_email else ""
        next_step = NEXT_STEPS[found.category].format(
            follow_up_on=found.follow_up_on.isoformat() if found.follow_up_on else "",
            referral=referral,
        )
        reasons = list(found.reasons)
        if found.category == Category.UNSUBSCRIBE and not suppressed:
            reasons.append("not suppressed yet: add the suppression (a reply given by hand is not applied)")
        if template_key in REPLY_TEMPLATES and pack is None:
            reasons.append("no reply drafted: there is no active messaging pack")
        return {
            "email": reply["email"],
            "lead_id": lead.get("id"),
            "category": found.category,
            "objection_type": found.objection_type,
            "return_date": found.return_date.isoformat() if found.return_date else None,
            "follow_up_on": found.follow_up_on.isoformat() if found.follow_up_on else None,
            "referral_email": found.referral_email,
            "reasons": reasons,
            "suppressed": suppressed,
            "next_step": next_step.strip(),
            "draft": draft,
            "tag": tag,
        }

    def _draft(self, ctx, pack, lead: dict[str, Any], reply: dict[str, Any], template: str):
        rules = pack.personalisation_rules or {}
        values = {
            "first_name": lead.get("first_name") or str(rules.get("fallback_first_name") or "there"),
            "company": lead.get("company") or "your team",
            "title": lead.get("title") or "your role",
        }
        subject = reply["subject"] or f"Your reply to {pack.company_name}"
        draft = {
            "subject": subject if subject.lower().startswith("re:") else f"Re: {subject}",
            "body": fill(template, values),
        }
        answer = ctx.llm_json(
            LlmRequest(
                purpose=f"{SLUG}.draft",
                system=(
                    f"You answer a prospect's reply for {pack.company_name}. Keep the draft's intent, "
                    "use only the facts given, no claim the pack forbids, at most 90 words, no "
                    "signature or footer (it is added). Answer with JSON {subject, body}."
                ),
                prompt=json.dumps(
                    {
                        "reply": reply["text"][:4000],
                        "draft": draft,
                        "forbidden_claims": list(pack.forbidden_claims),
                        "instructions": ctx.instructions,
                    },
                    sort_keys=True,
                ),
                max_tokens=self.contract.llm.max_output_tokens,
                response_schema=DRAFT_SCHEMA,
                offline_answer=lambda: draft,
            )
        )
        return {"subject": answer["subject"].strip(), "body": f"{answer['body'].strip()}\n\n{footer(pack)}"}

    def subject(self, output: dict[str, Any], records: Records) -> EvaluationSubject:
        lead = records.meta["lead"] or {}
        facts = {"reply": {name: lead.get(name) for name in LEAD_FIELDS if name != "id"}}
        if output["draft"]:
            return EvaluationSubject(
                kind="reply",
                items=[{"key": "reply", "to": output["email"], **output["draft"]}],
                facts=facts,
                expected_count=1,
                is_customer_facing=True,
            )
        summary = f"{output['email']}: {output['category']}. {output['next_step']}"
        return EvaluationSubject(
            kind="report", items=[{"key": "reply", "summary": summary}], facts=facts, expected_count=1
        )

    def actions(self, ctx, output: dict[str, Any], records: Records) -> list[ProposedAction]:
        lead = records.meta["lead"] or {}
        why = "; ".join(output["reasons"])
        proposed = []
        if output["draft"] and not output["suppressed"]:
            proposed.append(
                ProposedAction(
                    kind="email.send",
                    payload={"to": output["email"], **output["draft"]},
                    key="reply",
                    summary=f"Answer {output['email']} ({output['category'].replace('_', ' ')})",
                    reasoning=why,
                )
            )
        if output["tag"] and lead.get("source_system") in CRM_SYSTEMS:
            proposed.append(
                ProposedAction(
                    kind="crm.add_tag",
                    payload={"system": lead["source_system"], "email": output["email"], "tag": output["tag"]},
                    key="tag",
                    summary=f"Tag {output['email']} {output['tag']}",
                    reasoning=why,
                )
            )
        return proposed

    def canary_inputs(self, lead: Any) -> dict[str, Any]:
        return {"email": lead.email, "text": "Interested, can we book a call?", "subject": "Re: hello"}
