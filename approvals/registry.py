"""Action kinds: what an AI (or a person) may ask to do outside, with the payload schema,
the scope an approver must hold and the kind's risk class."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsonschema

from approvals.errors import PayloadInvalid, UnknownActionKind

EMAIL = {"type": "string", "format": "email", "maxLength": 254}


class Scope:
    """Permission codenames (approvals app) that let a role approve a family of kinds."""

    CRM_WRITE = "approve_crm_write"
    EMAIL_SEND = "approve_email_send"
    ENRICHMENT = "approve_enrichment"
    CAMPAIGN = "approve_campaign_change"

    ALL = (
        (CRM_WRITE, "Can approve CRM writes"),
        (EMAIL_SEND, "Can approve email sends"),
        (ENRICHMENT, "Can approve enrichment calls"),
        (CAMPAIGN, "Can approve campaign changes"),
    )


@dataclass(frozen=True)
class ActionKind:
    name: str
    label: str
    scope: str
    risk_class: str  # low | medium | high: the floor of the request's impact level
    schema: dict[str, Any]
    target_field: str
    contacts_person: bool = False
    editable_fields: tuple[str, ...] = field(default=())

    @property
    def permission(self) -> str:
        return f"approvals.{self.scope}"

    def validate(self, payload: Any) -> None:
        validator = jsonschema.Draft202012Validator(
            self.schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        if errors:
            messages = []
            for error in errors[:5]:
                where = ".".join(str(p) for p in error.absolute_path) or "payload"
                messages.append(f"{where}: {error.message}")
            raise PayloadInvalid(f"Payload does not match {self.name}: " + "; ".join(messages))

    def target_of(self, payload: dict[str, Any]) -> str:
        return str(payload.get(self.target_field, ""))[:254]


_REGISTRY: dict[str, ActionKind] = {}
_GATES: list = []


def register_gate(gate) -> None:
    """Add a check run at execution time: ``gate(request) -> reason | None`` (connectors add
    suppression here)."""
    if gate not in _GATES:
        _GATES.append(gate)


def extra_gates() -> list:
    return list(_GATES)


def register(kind: ActionKind) -> ActionKind:
    _REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> ActionKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownActionKind(f"Unknown action kind {name!r}. Known kinds: {known}.") from None


def all_kinds() -> list[ActionKind]:
    return sorted(_REGISTRY.values(), key=lambda k: k.name)


def kind_choices() -> list[tuple[str, str]]:
    return [(k.name, k.label) for k in all_kinds()]


register(
    ActionKind(
        name="crm.upsert_contact",
        label="CRM: create or update contact",
        scope=Scope.CRM_WRITE,
        risk_class="medium",
        target_field="email",
        contacts_person=False,
        editable_fields=("properties",),
        schema={
            "type": "object",
            "required": ["system", "email", "properties"],
            "additionalProperties": False,
            "properties": {
                "system": {"enum": ["hubspot", "gohighlevel"]},
                "email": EMAIL,
                "properties": {
                    "type": "object",
                    "maxProperties": 100,
                    "additionalProperties": {
                        "anyOf": [
                            {"type": ["string", "number", "boolean", "null"]},
                            # GoHighLevel tags
                            {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 200}},
                            # GoHighLevel custom fields
                            {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["key", "field_value"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "key": {"type": "string", "minLength": 1, "maxLength": 100},
                                        "field_value": {"type": ["string", "number", "boolean", "null"]},
                                    },
                                },
                            },
                        ]
                    },
                },
                "before": {"type": "object"},
            },
        },
    )
)
register(
    ActionKind(
        name="crm.add_tag",
        label="CRM: add tag",
        scope=Scope.CRM_WRITE,
        risk_class="low",
        target_field="email",
        schema={
            "type": "object",
            "required": ["system", "email", "tag"],
            "additionalProperties": False,
            "properties": {
                "system": {"enum": ["hubspot", "gohighlevel"]},
                "email": EMAIL,
                "tag": {"type": "string", "minLength": 1, "maxLength": 100},
            },
        },
    )
)
register(
    ActionKind(
        name="email.send",
        label="Email: send",
        scope=Scope.EMAIL_SEND,
        risk_class="medium",
        target_field="to",
        contacts_person=True,
        editable_fields=("subject", "body"),
        schema={
            "type": "object",
            "required": ["to", "subject", "body"],
            "additionalProperties": False,
            "properties": {
                "to": EMAIL,
                "to_name": {"type": "string", "maxLength": 200},
                "to_title": {"type": "string", "maxLength": 200},
                "subject": {"type": "string", "minLength": 1, "maxLength": 200},
                "body": {"type": "string", "minLength": 1, "maxLength": 20000},
                "from_mailbox": {"type": "string", "maxLength": 254},
                "campaign_id": {"type": "string", "maxLength": 100},
            },
        },
    )
)
register(
    ActionKind(
        name="enrichment.lookup",
        label="Enrichment: look up",
        scope=Scope.ENRICHMENT,
        risk_class="low",
        target_field="email",
        # it processes a person's data and costs money: a suppressed (e.g. erased) person is not looked up
        contacts_person=True,
        schema={
            "type": "object",
            "required": ["provider", "email"],
            "additionalProperties": False,
            "properties": {
                "provider": {"enum": ["clay"]},
                "email": EMAIL,
                "first_name": {"type": "string", "maxLength": 100},
                "last_name": {"type": "string", "maxLength": 100},
                "company": {"type": "string", "maxLength": 200},
                "linkedin_url": {"type": "string", "maxLength": 500, "pattern": "^https://"},
                "fields": {"type": "array", "items": {"type": "string"}, "maxItems": 50},
                "budget_usd": {"type": "number", "minimum": 0, "maximum": 10000},
            },
        },
    )
)
register(
    ActionKind(
        name="campaign.pause",
        label="Campaign: pause",
        scope=Scope.CAMPAIGN,
        risk_class="medium",
        target_field="campaign_id",
        schema={
            "type": "object",
            "required": ["system", "campaign_id", "reason"],
            "additionalProperties": False,
            "properties": {
                "system": {"enum": ["instantly"]},
                "campaign_id": {"type": "string", "minLength": 1, "maxLength": 100},
                "reason": {"type": "string", "minLength": 1, "maxLength": 500},
                "recipient_count": {"type": "integer", "minimum": 0},
            },
        },
    )
)
