"""The one mapping from a CRM's do-not-contact to a suppression.

Every path that reads a CRM record or event asks here: the webhooks (HubSpot
``contact.propertyChange`` of ``hs_email_optout``; GoHighLevel ``ContactDndUpdate``,
``ContactTagUpdate``, ``ContactUpdate``, ``ContactCreate``) and the lead pull. A second copy of
this check in any of them is how a webhook once only stored a DNC tag that the pull suppressed.

What counts, per CRM:

- HubSpot: ``hs_email_optout`` true, as a contact's property (pull: flat properties) or as the
  changed property of an event (``propertyName`` / ``propertyValue``).
- GoHighLevel: ``dnd: true`` (do-not-disturb on every channel), the Email channel of
  ``dndSettings`` active, or a do-not-contact tag. Do-not-disturb on other channels only (SMS,
  calls) says nothing about email, which is all we send.
"""

from __future__ import annotations

from typing import Any

HUBSPOT_OPT_OUT = "hs_email_optout"
# Compared after strip() and lower(); "DNC" is also the tag our own suppression push writes.
DNC_TAGS = frozenset({"dnc", "do not contact", "do-not-contact", "do_not_contact"})


def _true(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _hubspot(record: dict[str, Any]) -> str | None:
    changed = record.get("propertyName") == HUBSPOT_OPT_OUT and _true(record.get("propertyValue"))
    properties = record.get("properties") if isinstance(record.get("properties"), dict) else {}
    if changed or _true(record.get(HUBSPOT_OPT_OUT)) or _true(properties.get(HUBSPOT_OPT_OUT)):
        return f"opted out of email in HubSpot ({HUBSPOT_OPT_OUT})"
    return None


def _gohighlevel(record: dict[str, Any]) -> str | None:
    if record.get("dnd") is True:
        return "do-not-disturb on every channel in GoHighLevel (dnd)"
    settings = record.get("dndSettings") if isinstance(record.get("dndSettings"), dict) else {}
    email = settings.get("Email") if isinstance(settings.get("Email"), dict) else {}
    if str(email.get("status", "")).lower() == "active":
        return "email do-not-disturb in GoHighLevel"
    tags = record.get("tags") or []
    for tag in [tags] if isinstance(tags, str) else tags if isinstance(tags, list) else []:
        if str(tag).strip().lower() in DNC_TAGS:
            return f"tagged {str(tag).strip()!r} in GoHighLevel"
    return None


_RULES = {"hubspot": _hubspot, "gohighlevel": _gohighlevel}


def do_not_contact(system: str, record: object) -> str | None:
    """Why ``system`` says this record or event must not be contacted, or None if it does not.

    ``record`` is a vendor's contact (HubSpot: its flat properties or the API's shape with
    ``properties``) or webhook event, as received; anything else is not do-not-contact.
    """
    rule = _RULES.get(str(system))
    if rule is None or not isinstance(record, dict):
        return None
    return rule(record)
