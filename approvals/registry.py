"""Action kinds: what an AI (or a person) may ask to do outside, with the payload schema,
the scope an approver must hold and the kind's risk class."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsonschema

from approvals.errors import PayloadInvalid, UnknownActionKind
from mh1.addresses import AddressInvalid, address_parse

EMAIL = {"type": "string", "format": "email", "maxLength": 254}
HEADER_SAFE = "^[^\\x00-\\x1f\\x7f]*$"
# An approval is acted on within this long, or the request expires instead of running weeks later.
DEFAULT_APPROVAL_VALID_HOURS = 72

_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("email", raises=AddressInvalid)
def _canonical_email(value: object) -> bool:
    # A payload holds canonical bare addresses only (ActionKind.normalize makes them so), so every
    # later check — suppression, locks, counters — compares the same string.
    if not isinstance(value, str):
        return True  # the "type" keyword reports it
    parsed = address_parse(value)
    if parsed.email != value:
        raise AddressInvalid(f"{value!r} is not a bare canonical address (expected {parsed.email!r}).")
    return True


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
    # The target is a person's address: a GDPR erasure blocks the kind (CRM writes included).
    touches_person: bool = False
    # Payload fields holding an address, made canonical at proposal and on every edit; for each,
    # the field that receives a display name given with it ("Bob <bob@…>").
    email_fields: dict[str, str | None] = field(default_factory=dict)
    # The payload field naming the sender (checked against the tenant's sending mailboxes).
    sender_field: str | None = None
    approval_valid_hours: int = DEFAULT_APPROVAL_VALID_HOURS
    # Counted by the tenant's sending policy: its place (a pacing slot, window counts) is
    # reserved before approved → executing (connectors.sending.send_slot_reserve).
    paced: bool = False

    @property
    def permission(self) -> str:
        return f"approvals.{self.scope}"

    def normalize(self, payload: Any) -> Any:
        """The payload with every address made canonical (mh1.addresses), a display name moved to
        its own field. Anything that is not an address is left for validate() to report."""
        if not isinstance(payload, dict):
            return payload
        out = dict(payload)
        for name, name_field in self.email_fields.items():
            value = out.get(name)
            if not isinstance(value, str):
                continue
            try:
                parsed = address_parse(value)
            except AddressInvalid as exc:
                raise PayloadInvalid(f"Payload does not match {self.name}: {name}: {exc}") from None
            out[name] = parsed.email
            if parsed.name and name_field and not out.get(name_field):
                out[name_field] = parsed.name
        return out

    def validate(self, payload: Any) -> None:
        validator = jsonschema.Draft202012Validator(self.schema, format_checker=_FORMATS)
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
        touches_person=True,
        email_fields={"email": None},
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
        touches_person=True,
        email_fields={"email": None},
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
        touches_person=True,
        email_fields={"to": "to_name", "from_mailbox": None},
        sender_field="from_mailbox",
        paced=True,
        editable_fields=("subject", "body"),
        schema={
            "type": "object",
            "required": ["to", "subject", "body"],
            "additionalProperties": False,
            "properties": {
                "to": EMAIL,
                # header values: no line breaks or control characters (header injection)
                "to_name": {"type": "string", "maxLength": 200, "pattern": HEADER_SAFE},
                "to_title": {"type": "string", "maxLength": 200},
                "subject": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": HEADER_SAFE},
                "body": {"type": "string", "minLength": 1, "maxLength": 20000},
                "from_mailbox": EMAIL,
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
        touches_person=True,
        email_fields={"email": None},
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
