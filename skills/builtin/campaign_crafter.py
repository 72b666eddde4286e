"""campaign-crafter: a personalised first-touch email per lead, from the tenant's messaging pack.

The pack (``campaigns.MessagingPack``, edited and versioned by RevOps) holds a template per ICP
tier with placeholders, personalisation rules (pain points per industry, a word limit, a fallback
first name), forbidden claims and the sender's postal address. For each lead the skill fills its
tier's template from the lead's own fields, then asks the model to polish it within the pack's
rules; the offline provider answers with the filled template itself, so a run here and in CI is
deterministic. The CAN-SPAM footer (sender, company, postal address) is appended by code after the
model, so no model answer and no refinement can drop it; the one-click unsubscribe link and the
List-Unsubscribe headers are added by the email.send executor at send time
(``evaluation.checks.canspam`` explains why the body must not carry its own).

Instructions (an AE's "shorter" on a rejection, the evaluation's suggestions on a refinement) go to
the model; offline, "shorter/short/brief/concise" keeps the greeting, the first sentence of each
paragraph and the closing question.

Each email is proposed as ``email.send`` (execute and preview modes); leads that are suppressed
are left out before drafting and counted, so the queue never fills with refusals.
"""

from __future__ import annotations

import json
import re
import string
from decimal import Decimal
from typing import Any

from skills.base import EvaluationSubject, ProposedAction, Records, Skill
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

SLUG = "campaign-crafter"
MAX_LEADS = 50
DEFAULT_LIMIT = 10
LEAD_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "seniority",
    "industry",
    "company_size",
    "country",
)
SHORTER = re.compile(r"\b(short|shorter|brief|briefer|concise|fewer words|too long)\b", re.IGNORECASE)
DRAFT_SCHEMA = {
    "type": "object",
    "required": ["subject", "body"],
    "additionalProperties": False,
    "properties": {
        "subject": {"type": "string", "minLength": 1, "maxLength": 200},
        "body": {"type": "string", "minLength": 1, "maxLength": 5000},
    },
}
_EMAIL_ITEM = {
    "type": "object",
    "required": ["lead_id", "to", "subject", "body", "tier"],
    "properties": {
        "lead_id": {"type": "integer"},
        "to": {"type": "string"},
        "to_name": {"type": "string"},
        "tier": {"type": "string"},
        "subject": {"type": "string", "minLength": 1},
        "body": {"type": "string", "minLength": 1},
        "personalisation": {"type": "object"},
        "follow_ups": {"type": "array"},
    },
}

CONTRACT = SkillContract(
    slug=SLUG,
    name="Campaign crafter",
    description=(
        "Writes a personalised first-touch email per lead from the messaging pack's template for its "
        "ICP tier, with the CAN-SPAM footer, and proposes each as an email to send."
    ),
    version="1",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tier": {"enum": ["A", "B", "C"], "description": "The ICP tier whose leads get an email."},
            "lead_ids": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 1,
                "maxItems": MAX_LEADS,
                "uniqueItems": True,
                "description": "These leads instead of a tier.",
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LEADS, "default": DEFAULT_LIMIT},
            "include_follow_ups": {"type": "boolean", "default": False},
            "campaign_id": {"type": "string", "maxLength": 100},
        },
        "anyOf": [{"required": ["tier"]}, {"required": ["lead_ids"]}],
    },
    output_schema={
        "type": "object",
        "required": ["messaging_pack_version", "emails", "skipped"],
        "properties": {
            "messaging_pack_version": {"type": "integer"},
            "emails": {"type": "array", "items": _EMAIL_ITEM},
            "skipped": {"type": "array", "items": {"type": "object"}},
        },
    },
    modes=("suggest", "preview", "execute"),
    default_mode="execute",
    sla=Sla(expected_seconds=20, max_seconds=300, p95_target_seconds=60),
    retry_budget=1,
    data=DataRequirements(
        min_records=1,
        required_coverage={"email": 1.0, "first_name": 0.5, "company": 0.8},
        on_insufficient="refuse",
    ),
    failure_modes=dict(FailureMode.FALLBACKS),
    review_triggers=ReviewTriggers(),
    action_kinds=("email.send",),
    cost=CostTarget(target_usd=Decimal("0.05"), max_usd=Decimal("0.50")),
    llm=LlmBudget(max_calls=MAX_LEADS, max_input_tokens=1500, max_output_tokens=400),
)


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def fill(template: str, values: dict[str, str]) -> str:
    """The template with the lead's values (an unknown placeholder becomes empty, never raw)."""
    return string.Formatter().vformat(template, (), _Blank(values))


def shorten(body: str) -> str:
    """The greeting, the first sentence of each middle paragraph, and the closing paragraph."""
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    if len(paragraphs) <= 2:
        sentences = re.split(r"(?<=[.!?])\s+", body.strip())
        return " ".join(sentences[:1] + sentences[-1:]) if len(sentences) > 2 else body.strip()
    greeting, *middle, closing = paragraphs
    firsts = [re.split(r"(?<=[.!?])\s+", p)[0] for p in middle]
    return "\n\n".join([greeting, " ".join(firsts), closing])


def footer(pack: Any) -> str:
    sender = pack.sender_name or pack.company_name
    lines = [sender] if sender == pack.company_name else [sender, pack.company_name]
    return "\n".join([*lines, pack.postal_address])


@register
class CampaignCrafterSkill(Skill):
    contract = CONTRACT
    example_inputs = {"tier": "A", "limit": 3}

    def load(self, ctx, inputs: dict[str, Any]) -> Records:
        from django.db import DatabaseError

        from campaigns.messaging import messaging_pack_active
        from campaigns.models import Lead
        from connectors.models import Suppression

        try:
            pack = messaging_pack_active()
            leads = Lead.objects.exclude(email="").order_by("-icp_score", "id")
            if inputs.get("lead_ids"):
                leads = leads.filter(pk__in=inputs["lead_ids"])
            else:
                leads = leads.filter(icp_tier=inputs["tier"])
            candidates = list(
                leads.values("id", "icp_tier", *LEAD_FIELDS)[: inputs.get("limit", DEFAULT_LIMIT)]
            )
            emails = [lead["email"] for lead in candidates]
            domains = {lead["email"].rpartition("@")[2] for lead in candidates}
            blocked = set(Suppression.objects.filter(email__in=emails).values_list("email", flat=True))
            blocked_domains = set(
                Suppression.objects.filter(domain__in=domains).values_list("domain", flat=True)
            )
        except DatabaseError as exc:
            raise DataUnavailable(f"the leads could not be read: {exc}") from exc
        if pack is None:
            raise InsufficientData(
                "There is no active messaging pack: RevOps writes one in Campaigns > Messaging packs."
            )
        items, skipped = [], []
        for lead in candidates:
            if lead["email"] in blocked or lead["email"].rpartition("@")[2] in blocked_domains:
                skipped.append({"lead_id": lead["id"], "reason": "suppressed"})
            else:
                items.append(lead)
        return Records(items=items, source="campaigns.Lead", meta={"pack": pack, "skipped": skipped})

    def redo_inputs(self, inputs: dict[str, Any], request: Any) -> dict[str, Any]:
        """A redo rewrites the rejected email only: its lead, with the parent's other choices."""
        from campaigns.models import Lead

        to = str((request.original_payload or request.payload or {}).get("to") or "")
        lead = Lead.objects.filter(email=to).only("id").first()
        if lead is None:
            return inputs
        narrowed = {k: v for k, v in inputs.items() if k not in {"tier", "lead_ids", "limit"}}
        return {**narrowed, "lead_ids": [lead.pk]}

    def run(self, ctx, inputs: dict[str, Any], records: Records) -> dict[str, Any]:
        pack = records.meta["pack"]
        rules = pack.personalisation_rules or {}
        emails: list[dict[str, Any]] = []
        with ctx.step("draft"):
            for lead in records.items:
                emails.append(self._draft(ctx, pack, rules, lead, inputs))
                ctx.checkpoint({"messaging_pack_version": pack.version, "emails": emails, "skipped": []})
        return {
            "messaging_pack_version": pack.version,
            "emails": emails,
            "skipped": records.meta["skipped"],
        }

    def _draft(self, ctx, pack, rules: dict[str, Any], lead: dict[str, Any], inputs: dict[str, Any]):
        templates = pack.tier_templates or {}
        tier = lead["icp_tier"] if lead["icp_tier"] in templates else next(iter(sorted(templates)))
        template = templates[tier]
        pain_points = rules.get("pain_points") or {}
        values = {
            "first_name": lead["first_name"] or str(rules.get("fallback_first_name") or "there"),
            "company": lead["company"] or "your team",
            "title": lead["title"] or "a leader",
            "industry": lead["industry"] or "B2B",
            "pain_point": str(
                pain_points.get(lead["industry"]) or pain_points.get("default") or "pipeline work"
            ),
            "sender_name": pack.sender_name or pack.company_name,
        }
        draft = {"subject": fill(template["subject"], values), "body": fill(template["body"], values)}
        if ctx.instructions and SHORTER.search(ctx.instructions):
            draft["body"] = shorten(draft["body"])
        answer = ctx.llm_json(
            LlmRequest(
                purpose=f"{SLUG}.draft",
                system=(
                    f"You write first-touch B2B emails for {pack.company_name}. Keep the template's "
                    "structure, use only the lead's facts given, never a claim the pack forbids, at most "
                    f"{rules.get('max_words') or 120} words, no signature or footer (it is added). "
                    "Answer with JSON {subject, body}."
                ),
                prompt=json.dumps(
                    {
                        "lead": {name: lead.get(name) for name in LEAD_FIELDS if name != "email"},
                        "draft": draft,
                        "value_proposition": pack.value_proposition,
                        "forbidden_claims": list(pack.forbidden_claims),
                        "avoid_words": list(pack.avoid_words),
                        "instructions": ctx.instructions,
                    },
                    sort_keys=True,
                    default=str,
                ),
                max_tokens=self.contract.llm.max_output_tokens,
                response_schema=DRAFT_SCHEMA,
                offline_answer=lambda: draft,
            )
        )
        name = " ".join(filter(None, [lead["first_name"], lead["last_name"]]))
        email: dict[str, Any] = {
            "lead_id": lead["id"],
            "to": lead["email"],
            "to_name": name,
            "tier": tier,
            "subject": answer["subject"].strip(),
            "body": f"{answer['body'].strip()}\n\n{footer(pack)}",
            "personalisation": {k: v for k, v in values.items() if k != "sender_name"},
        }
        if inputs.get("include_follow_ups"):
            email["follow_ups"] = [
                {
                    "after_days": int(step.get("after_days") or 3),
                    "subject": fill(step.get("subject", ""), values),
                    "body": f"{fill(step.get('body', ''), values)}\n\n{footer(pack)}",
                }
                for step in template.get("follow_ups") or []
            ]
        return email

    def subject(self, output: dict[str, Any], records: Records) -> EvaluationSubject:
        leads = {item["id"]: item for item in records.items}
        return EvaluationSubject(
            kind="emails",
            items=[
                {"key": str(e["lead_id"]), "to": e["to"], "subject": e["subject"], "body": e["body"]}
                for e in output["emails"]
            ],
            facts={
                str(e["lead_id"]): {name: leads[e["lead_id"]].get(name) for name in LEAD_FIELDS}
                for e in output["emails"]
                if e["lead_id"] in leads
            },
            expected_count=len(records.items),
            is_customer_facing=True,
        )

    def actions(self, ctx, output: dict[str, Any], records: Records) -> list[ProposedAction]:
        campaign = ctx.run.inputs.get("campaign_id", "")
        proposed = []
        for e in output["emails"]:
            payload = {"to": e["to"], "subject": e["subject"], "body": e["body"]}
            if e.get("to_name"):
                payload["to_name"] = e["to_name"]
            if campaign:
                payload["campaign_id"] = campaign
            used = ", ".join(f"{k}={v}" for k, v in e.get("personalisation", {}).items())
            proposed.append(
                ProposedAction(
                    kind="email.send",
                    payload=payload,
                    key=f"lead:{e['lead_id']}",
                    summary=f"First touch to {e['to']} (tier {e['tier']})",
                    reasoning=(
                        f"Tier {e['tier']} template of messaging pack v{output['messaging_pack_version']}; "
                        f"personalised with {used}."
                    ),
                )
            )
        return proposed

    def canary_inputs(self, lead: Any) -> dict[str, Any]:
        return {"lead_ids": [lead.pk], "limit": 1}
