"""Convert between the canonical lead and a system's record, using the tenant's field maps.

Pure functions over querysets: each call reads the system's field maps in one query (and the
lifecycle stages only when a map converts them); nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from campaigns.models import Direction, FieldMap, LifecycleStage, Transform
from mh1.errors import DomainError

_TIER_TAG_PREFIX = "tier_"
_TIERS = "ABCD"


class MappingError(DomainError, ValueError):
    """A value cannot be converted: the message names the system, the field and the value."""

    code = "mapping_error"


def _maps(system: str, directions: Iterable[str]) -> list[FieldMap]:
    return list(FieldMap.objects.filter(system=system, direction__in=list(directions)))


def _stages() -> list[LifecycleStage]:
    return list(LifecycleStage.objects.all())


def _get_path(record: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _set_path(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = record
    for part in parents:
        node = node.setdefault(part, {})
    if isinstance(node.get(leaf), list) and isinstance(value, list):
        node[leaf] = node[leaf] + value  # several maps may add tags to one list
    else:
        node[leaf] = value


def lifecycle_to_remote(system: str, key: str, stages: list[LifecycleStage] | None = None) -> str:
    """The CRM's value for our stage ``key``; unknown stages raise MappingError."""
    for stage in stages if stages is not None else _stages():
        if stage.key == key:
            return stage.remote_value
    raise MappingError(f"{system}: lifecycle stage “{key}” is not in this tenant's taxonomy.")


def lifecycle_from_remote(system: str, value: str, stages: list[LifecycleStage] | None = None) -> str:
    """Our stage key for a CRM's stage value (its own name or our key, case-insensitive)."""
    wanted = str(value).strip().lower()
    for stage in stages if stages is not None else _stages():
        if wanted in (stage.remote_value.lower(), stage.key.lower()):
            return stage.key
    raise MappingError(
        f"{system}: lifecycle stage “{value}” matches no stage of this tenant's taxonomy; "
        "add it (or its CRM value) under Campaigns → Lifecycle stages."
    )


def _out(fmap: FieldMap, value: Any, stages: list[LifecycleStage] | None) -> Any:
    if value is None or value == "":
        return None
    match fmap.transform:
        case Transform.LOWER:
            return str(value).lower()
        case Transform.UPPER:
            return str(value).upper()
        case Transform.LIFECYCLE:
            return lifecycle_to_remote(fmap.system, value, stages)
        case Transform.TIER_TAG:
            tier = str(value).upper()
            if tier not in _TIERS:
                raise MappingError(f"{fmap.system}: ICP tier “{value}” is not one of A, B, C, D.")
            return [f"{_TIER_TAG_PREFIX}{_TIERS.index(tier) + 1}"]
    if isinstance(value, Decimal):
        return str(value)
    return value


def _in(fmap: FieldMap, value: Any, stages: list[LifecycleStage] | None) -> tuple[bool, Any]:
    if value is None:
        return False, None
    match fmap.transform:
        case Transform.LOWER:
            return True, str(value).lower()
        case Transform.UPPER:
            return True, str(value).upper()
        case Transform.LIFECYCLE:
            return (True, lifecycle_from_remote(fmap.system, value, stages)) if value != "" else (False, None)
        case Transform.TIER_TAG:
            tags = value if isinstance(value, list) else [value]
            for tag in tags:
                suffix = str(tag).removeprefix(_TIER_TAG_PREFIX)
                if str(tag).startswith(_TIER_TAG_PREFIX) and suffix.isdigit() and 1 <= int(suffix) <= 4:
                    return True, _TIERS[int(suffix) - 1]
            return False, None
    return True, value


def _needs_stages(maps: list[FieldMap]) -> list[LifecycleStage] | None:
    return _stages() if any(m.transform == Transform.LIFECYCLE for m in maps) else None


def to_remote(system: str, lead_dict: dict[str, Any]) -> dict[str, Any]:
    """The record ``system`` expects for a canonical lead (only mapped, non-empty fields)."""
    maps = _maps(system, (Direction.BOTH, Direction.OUT))
    stages = _needs_stages(maps)
    remote: dict[str, Any] = {}
    for fmap in maps:
        if fmap.canonical_field not in lead_dict:
            continue
        value = _out(fmap, lead_dict[fmap.canonical_field], stages)
        if value is not None:
            _set_path(remote, fmap.remote_field, value)
    return remote


def from_remote(system: str, remote_dict: dict[str, Any]) -> dict[str, Any]:
    """The canonical lead fields found in a ``system`` record (unmapped remote fields ignored)."""
    maps = _maps(system, (Direction.BOTH, Direction.IN))
    stages = _needs_stages(maps)
    custom = remote_dict.get("customFields")
    if isinstance(custom, list) and "customField" not in remote_dict:
        # GoHighLevel lists custom fields; the map names them ``customField.<key>``
        remote_dict = {
            **remote_dict,
            "customField": {
                str(item.get("key") or item.get("id")): item.get("field_value", item.get("value"))
                for item in custom
                if isinstance(item, dict)
            },
        }
    lead: dict[str, Any] = {}
    for fmap in maps:
        found, raw = _get_path(remote_dict, fmap.remote_field)
        if not found:
            continue
        present, value = _in(fmap, raw, stages)
        if present:
            lead[fmap.canonical_field] = value
    return lead


def crm_properties(system: str, lead_dict: dict[str, Any]) -> dict[str, Any]:
    """The properties to write for a lead in a CRM, in the shape its write API takes.

    HubSpot takes flat properties. GoHighLevel's custom fields (``customField.<key>`` in the map)
    go as ``customFields: [{"key", "field_value"}]`` and tags as a list.
    """
    remote = to_remote(system, lead_dict)
    custom = remote.pop("customField", None)
    if isinstance(custom, dict) and custom:
        remote["customFields"] = [{"key": key, "field_value": value} for key, value in custom.items()]
    return remote
