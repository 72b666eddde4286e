"""HubSpot CRM v3 contacts: ``/crm/v3/objects/contacts[...]``."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from connectors.sandbox.common import HUBSPOT, Request, Response, SandboxError, now_iso, route

if TYPE_CHECKING:
    from connectors.sandbox.state import SandboxState

VENDOR = HUBSPOT
PATH_PREFIXES = ("/crm/",)
HUBSPOT_BATCH_MAX = 100


def _hs_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _hs_find(state: SandboxState, key: str, id_property: str | None) -> dict[str, Any] | None:
    if id_property in (None, "", "hs_object_id"):
        return state.hubspot_contacts.get(key)
    wanted = key.lower() if id_property == "email" else key
    for contact in state.hubspot_contacts.values():
        value = contact["properties"].get(id_property)
        if value is not None and (value.lower() if id_property == "email" else value) == wanted:
            return contact
    return None


def _hs_public(contact: dict[str, Any], properties: list[str] | None) -> dict[str, Any]:
    out = copy.deepcopy(contact)
    if properties:
        keep = set(properties) | {"hs_object_id", "createdate", "lastmodifieddate"}
        out["properties"] = {name: contact["properties"].get(name) for name in sorted(keep)}
    return out


def _hs_props_arg(req: Request) -> list[str] | None:
    raw = req.query.get("properties")
    return [p for p in raw.split(",") if p] if raw else None


def _hs_properties(body: dict[str, Any]) -> dict[str, str | None]:
    props = body.get("properties")
    if not isinstance(props, dict):
        raise SandboxError(400, "Invalid input JSON: properties is required and must be an object")
    out = {str(k): _hs_value(v) for k, v in props.items()}
    if out.get("email"):
        out["email"] = out["email"].strip().lower()
    return out


def _hs_conflict(state: SandboxState, email: str | None, own_id: str | None = None) -> None:
    if not email:
        return
    existing = _hs_find(state, email, "email")
    if existing is not None and existing["id"] != own_id:
        raise SandboxError(409, f"Contact already exists. Existing ID: {existing['id']}", category="CONFLICT")


def _hs_create(state: SandboxState, props: dict[str, str | None]) -> dict[str, Any]:
    contact_id = str(state._hubspot_next_id)
    state._hubspot_next_id += 1
    ts = now_iso()
    contact = {
        "id": contact_id,
        "properties": {**props, "createdate": ts, "lastmodifieddate": ts, "hs_object_id": contact_id},
        "createdAt": ts,
        "updatedAt": ts,
        "archived": False,
    }
    state.hubspot_contacts[contact_id] = contact
    state._hubspot_created_mono[contact_id] = time.monotonic()
    return contact


def _hs_update(contact: dict[str, Any], props: dict[str, str | None]) -> None:
    ts = now_iso()
    contact["properties"].update({k: v for k, v in props.items() if k not in ("hs_object_id", "createdate")})
    contact["properties"]["lastmodifieddate"] = ts
    contact["updatedAt"] = ts


def hubspot_list(state: SandboxState, req: Request) -> Response:
    with state.lock:
        contacts = sorted(state.hubspot_contacts.values(), key=lambda c: int(c["id"]))
        try:
            limit = max(1, min(100, int(req.query.get("limit", "10"))))
        except ValueError as exc:
            raise SandboxError(400, "limit must be an integer") from exc
        after = int(req.query.get("after", "0") or 0)
        rest = [c for c in contacts if int(c["id"]) > after]
        page = rest[:limit]
        body: dict[str, Any] = {"results": [_hs_public(c, _hs_props_arg(req)) for c in page]}
        if len(rest) > limit:
            body["paging"] = {"next": {"after": page[-1]["id"]}}
        return Response(200, body)


def hubspot_get(state: SandboxState, req: Request) -> Response:
    with state.lock:
        contact = _hs_find(state, req.params["id"], req.query.get("idProperty"))
        if contact is None or contact["archived"]:
            raise SandboxError(404, "resource not found", category="OBJECT_NOT_FOUND")
        return Response(200, _hs_public(contact, _hs_props_arg(req)))


def hubspot_patch(state: SandboxState, req: Request) -> Response:
    props = _hs_properties(req.obj())
    with state.lock:
        contact = _hs_find(state, req.params["id"], req.query.get("idProperty"))
        if contact is None or contact["archived"]:
            raise SandboxError(404, "resource not found", category="OBJECT_NOT_FOUND")
        _hs_conflict(state, props.get("email"), contact["id"])
        _hs_update(contact, props)
        return Response(200, _hs_public(contact, None))


def hubspot_create(state: SandboxState, req: Request) -> Response:
    props = _hs_properties(req.obj())
    with state.lock:
        _hs_conflict(state, props.get("email"))
        return Response(201, _hs_public(_hs_create(state, props), None))


def hubspot_batch_upsert(state: SandboxState, req: Request) -> Response:
    inputs = req.obj().get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise SandboxError(400, "Invalid input JSON: inputs is required")
    if len(inputs) > HUBSPOT_BATCH_MAX:
        raise SandboxError(400, f"Batch input limit exceeded: at most {HUBSPOT_BATCH_MAX} inputs")
    started = now_iso()
    results = []
    with state.lock:
        for item in inputs:
            if not isinstance(item, dict) or not item.get("id"):
                raise SandboxError(400, "Invalid input JSON: every input needs id and idProperty")
            id_property = item.get("idProperty") or "email"
            if id_property == "hs_object_id":
                raise SandboxError(400, "idProperty must be a unique property other than hs_object_id")
            props = _hs_properties({"properties": item.get("properties") or {}})
            contact = _hs_find(state, str(item["id"]), id_property)
            if contact is None:
                props.setdefault(
                    id_property, str(item["id"]).lower() if id_property == "email" else item["id"]
                )
                contact, new = _hs_create(state, props), True
            else:
                _hs_update(contact, props)
                new = False
            results.append({**_hs_public(contact, None), "new": new})
    return Response(
        200, {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": now_iso()}
    )


def _hs_filter_match(contact: dict[str, Any], flt: dict[str, Any]) -> bool:
    name, op = flt.get("propertyName"), (flt.get("operator") or "EQ").upper()
    value = contact["properties"].get(name)
    norm = value.lower() if isinstance(value, str) else value
    if op == "EQ":
        return norm == str(flt.get("value", "")).lower()
    if op == "NEQ":
        return norm != str(flt.get("value", "")).lower()
    if op == "IN":
        return norm in {str(v).lower() for v in flt.get("values") or []}
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    raise SandboxError(400, f"Unsupported filter operator in sandbox: {op}")


def hubspot_search(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise SandboxError(400, "filterGroups must be a list")
    limit = max(1, min(200, int(body.get("limit") or 10)))
    after = int(body.get("after") or 0)
    with state.lock:
        lag = float(state.config["hubspot_search_lag_seconds"])
        now = time.monotonic()
        visible = [
            c
            for c in sorted(state.hubspot_contacts.values(), key=lambda c: int(c["id"]))
            if not c["archived"] and now - state._hubspot_created_mono.get(c["id"], 0.0) >= lag
        ]
        matched = [
            c
            for c in visible
            if not groups or any(all(_hs_filter_match(c, f) for f in g.get("filters") or []) for g in groups)
        ]
        page = matched[after : after + limit]
        out: dict[str, Any] = {
            "total": len(matched),
            "results": [_hs_public(c, body.get("properties") or None) for c in page],
        }
        if after + limit < len(matched):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return Response(200, out)


_C = "/crm/v3/objects/contacts"
ROUTES = [
    route("GET", _C, hubspot_list, "contacts", "crm.objects.contacts.read"),
    route("POST", _C, hubspot_create, "contacts", "crm.objects.contacts.write"),
    route("POST", f"{_C}/search", hubspot_search, "contacts", "crm.objects.contacts.read"),
    route("POST", f"{_C}/batch/upsert", hubspot_batch_upsert, "contacts", "crm.objects.contacts.write"),
    route("GET", f"{_C}/{{id}}", hubspot_get, "contacts", "crm.objects.contacts.read"),
    route("PATCH", f"{_C}/{{id}}", hubspot_patch, "contacts", "crm.objects.contacts.write"),
]
