"""The tenant's messaging pack: versioned, one active at a time.

A pack is never edited in place: every save writes a new version and makes it the active one, so
each campaign-crafter run and each evaluation cites the exact version it wrote or was checked
against (``SkillRun.output["messaging_pack_version"]``, ``Evaluation.messaging_pack_version``),
and going back is activating an older version. The versions are numbered under a lock on the
active row, so two RevOps saving at once get two versions, never one number twice.
"""

from __future__ import annotations

from typing import Any

from auditlog.context import set_actor
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from campaigns.models import MessagingPack

PACK_FIELDS = (
    "company_name",
    "value_proposition",
    "tier_templates",
    "personalisation_rules",
    "forbidden_claims",
    "brand_words",
    "avoid_words",
    "postal_address",
    "sender_name",
)
TIERS = ("A", "B", "C")
TEMPLATE_PLACEHOLDERS = ("first_name", "company", "title", "industry", "pain_point", "sender_name")

# The pack a tenant starts from (RevOps edits it in the admin before the first campaign): plain,
# short, one question, no claim the data cannot support. Its postal address is the one thing the
# tenant must fill in, and a pack cannot be saved without one.
DEFAULT_PACK: dict[str, Any] = {
    "value_proposition": "We help {industry} teams spend less time on manual pipeline work.",
    "tier_templates": {
        "A": {
            "subject": "{company} and {pain_point}",
            "body": (
                "Hi {first_name},\n\nAs {title} at {company}, {pain_point} is likely on your desk. "
                "We help {industry} teams like yours take that work off the list, without a new tool "
                "to learn.\n\nWould a 20-minute call next week be useful?"
            ),
            "follow_ups": [
                {
                    "after_days": 3,
                    "subject": "Re: {company} and {pain_point}",
                    "body": "Hi {first_name}, a short nudge on my note about {pain_point}. Worth a call?",
                }
            ],
        },
        "B": {
            "subject": "A question about {pain_point}",
            "body": (
                "Hi {first_name},\n\nHow is {company} handling {pain_point} today? We work with "
                "{industry} teams on exactly that.\n\nOpen to a short call?"
            ),
            "follow_ups": [],
        },
        "C": {
            "subject": "{pain_point} at {company}",
            "body": "Hi {first_name},\n\nIf {pain_point} matters at {company}, I would be glad to share how "
            "other {industry} teams handle it. Interested?",
            "follow_ups": [],
        },
    },
    "personalisation_rules": {
        "pain_points": {"default": "pipeline hygiene"},
        "max_words": 120,
        "fallback_first_name": "there",
    },
    "forbidden_claims": ["guaranteed results", "100% accuracy", "risk-free"],
    "brand_words": [],
    "avoid_words": ["synergy", "revolutionary"],
}


def messaging_pack_active() -> MessagingPack | None:
    return MessagingPack.objects.filter(is_active=True).first()


def messaging_pack_validate(values: dict[str, Any]) -> None:
    """The pack's rules a model field cannot say: every tier has a subject and a body, and only
    known placeholders are used (a typo would send "{frist_name}" to a prospect)."""
    import string

    errors: dict[str, list[str]] = {}
    templates = values.get("tier_templates")
    if not isinstance(templates, dict) or not templates:
        errors["tier_templates"] = ["Write a template for at least one tier (A, B or C)."]
    else:
        for tier, template in templates.items():
            where = f"Tier {tier}"
            if tier not in TIERS:
                errors.setdefault("tier_templates", []).append(f"{where}: tiers are A, B and C.")
                continue
            parts = (
                [template, *((template or {}).get("follow_ups") or [])] if isinstance(template, dict) else []
            )
            if not parts:
                errors.setdefault("tier_templates", []).append(f"{where}: a template is an object.")
                continue
            for index, part in enumerate(parts):
                label = where if index == 0 else f"{where}, follow-up {index}"
                if not isinstance(part, dict) or not str(part.get("subject") or "").strip():
                    errors.setdefault("tier_templates", []).append(f"{label}: the subject is empty.")
                    continue
                if not str(part.get("body") or "").strip():
                    errors.setdefault("tier_templates", []).append(f"{label}: the body is empty.")
                for text in (part.get("subject", ""), part.get("body", "")):
                    try:
                        names = {name for _, name, _, _ in string.Formatter().parse(str(text)) if name}
                    except ValueError:
                        errors.setdefault("tier_templates", []).append(f"{label}: an unmatched brace.")
                        continue
                    unknown = names - set(TEMPLATE_PLACEHOLDERS)
                    if unknown:
                        bad = ", ".join("{" + n + "}" for n in sorted(unknown))
                        good = ", ".join("{" + n + "}" for n in TEMPLATE_PLACEHOLDERS)
                        errors.setdefault("tier_templates", []).append(
                            f"{label}: unknown placeholder {bad}; use {good}."
                        )
    if not str(values.get("postal_address") or "").strip():
        errors["postal_address"] = ["Every email carries the sender's postal address (CAN-SPAM)."]
    rules = values.get("personalisation_rules") or {}
    if not isinstance(rules, dict):
        errors["personalisation_rules"] = ["Personalisation rules are a JSON object."]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def messaging_pack_save(*, acting_user: AbstractBaseUser | None, **values: Any) -> MessagingPack:
    """Write a new version from ``values`` (missing fields are the active version's) and make it
    the active one."""
    unknown = set(values) - set(PACK_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown messaging pack fields: {', '.join(sorted(unknown))}.")
    active = MessagingPack.objects.select_for_update().filter(is_active=True).first()
    base = {name: getattr(active, name) for name in PACK_FIELDS} if active else {}
    merged = {**base, **values}
    messaging_pack_validate(merged)
    # numbering under the lock of the active row, and of the table for the very first version
    if active is None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {MessagingPack._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
    version = (MessagingPack.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    with set_actor(acting_user):
        MessagingPack.objects.filter(is_active=True).update(is_active=False)
        pack = MessagingPack(version=version, is_active=True, created_by=acting_user, **merged)
        pack.full_clean()
        pack.save()
    return pack


@transaction.atomic
def messaging_pack_activate(*, acting_user: AbstractBaseUser | None, version: int) -> MessagingPack:
    """Go back to (or forward to) an existing version."""
    target = MessagingPack.objects.select_for_update().filter(version=version).first()
    if target is None:
        raise ValidationError(f"There is no messaging pack version {version}.")
    with set_actor(acting_user):
        MessagingPack.objects.filter(is_active=True).exclude(pk=target.pk).update(is_active=False)
        if not target.is_active:
            target.is_active = True
            target.save(update_fields=["is_active"])
    return target
