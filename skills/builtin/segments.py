"""The lead segment a report skill reads (named leads, or all / one ICP tier / one lifecycle
stage): its input schema and its one query, shared by data-quality and lifecycle-audit."""

from __future__ import annotations

from typing import Any


def segment_properties(max_leads: int, default_limit: int) -> dict[str, Any]:
    return {
        "lead_ids": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1},
            "minItems": 1,
            "maxItems": max_leads,
            "uniqueItems": True,
            "description": "These leads; or leave empty and choose a segment.",
        },
        "segment": {
            "enum": ["all", "tier", "stage"],
            "description": "Which leads: all, those of one ICP tier, or those in one lifecycle stage.",
        },
        "tier": {"enum": ["A", "B", "C", "D"], "description": "With segment “tier”: the tier."},
        "stage": {"type": "string", "minLength": 1, "maxLength": 40, "description": "With segment “stage”."},
        "limit": {"type": "integer", "minimum": 1, "maximum": max_leads, "default": default_limit},
    }


# Named leads or a segment; a tier or stage segment names its tier or stage.
SEGMENT_RULES: dict[str, Any] = {
    "anyOf": [{"required": ["lead_ids"]}, {"required": ["segment"]}],
    "allOf": [
        {
            "if": {"properties": {"segment": {"const": kind}}, "required": ["segment"]},
            "then": {"required": [kind]},
        }
        for kind in ("tier", "stage")
    ],
}


def segment_leads(
    inputs: dict[str, Any], fields: tuple[str, ...], default_limit: int
) -> tuple[list[dict[str, Any]], list[int]]:
    """(the leads' ``fields`` by id, the named ids that do not exist). Raises DatabaseError."""
    from campaigns.models import Lead

    leads = Lead.objects.order_by("id")
    if inputs.get("lead_ids"):
        wanted = list(inputs["lead_ids"])
        items = list(leads.filter(pk__in=wanted).values(*fields))
        found = {item["id"] for item in items}
        return items, [pk for pk in wanted if pk not in found]
    if inputs["segment"] == "tier":
        leads = leads.filter(icp_tier=inputs["tier"])
    elif inputs["segment"] == "stage":
        leads = leads.filter(lifecycle_stage=inputs["stage"])
    return list(leads.values(*fields)[: inputs.get("limit", default_limit)]), []
