"""GoHighLevel v2: ``/contacts/...`` and ``/opportunities/...`` (every call needs ``Version``)."""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING, Any

from connectors.sandbox.common import GHL, Request, Response, SandboxError, now_iso, route

if TYPE_CHECKING:
    from connectors.sandbox.state import SandboxState

VENDOR = GHL
PATH_PREFIXES = ("/contacts", "/opportunities")
GHL_VERSION = "2021-07-28"
DEMO_PIPELINE_ID = "pl-demo-1"


def demo_pipeline() -> dict[str, Any]:
    """The one pipeline every fresh sandbox location has."""
    stages = ["New Lead", "Contacted", "Qualified", "Proposal Sent", "Won"]
    return {
        "id": DEMO_PIPELINE_ID,
        "name": "Sales Pipeline",
        "stages": [
            {"id": f"{DEMO_PIPELINE_ID}-stage-{i + 1}", "name": name, "position": i}
            for i, name in enumerate(stages)
        ],
        "showInFunnel": True,
        "showInPieChart": True,
    }


_GHL_CONTACT_FIELDS = (
    "firstName",
    "lastName",
    "name",
    "email",
    "phone",
    "companyName",
    "website",
    "address1",
    "city",
    "state",
    "postalCode",
    "country",
    "timezone",
    "source",
    "dnd",
    "dndSettings",
    "customFields",
    "tags",
    "assignedTo",
)


def _ghl_norm_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SandboxError(400, ["tags must be an array of strings"])
    out: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if tag and tag not in out:
            out.append(tag)
    return out


def _ghl_contact_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = {k: copy.deepcopy(body[k]) for k in _GHL_CONTACT_FIELDS if k in body}
    if fields.get("email"):
        fields["email"] = str(fields["email"]).strip().lower()
    if "tags" in fields:
        fields["tags"] = _ghl_norm_tags(fields["tags"])
    return fields


def _ghl_get_contact(state: SandboxState, contact_id: str) -> dict[str, Any]:
    contact = state.ghl_contacts.get(contact_id)
    if contact is None:
        raise SandboxError(404, "Contact not found")
    return contact


def _ghl_find(state: SandboxState, location_id: str, email: str | None, phone: str | None) -> dict | None:
    for contact in state.ghl_contacts.values():
        if contact["locationId"] != location_id:
            continue
        if email and contact.get("email") == email.strip().lower():
            return contact
    if phone:
        for contact in state.ghl_contacts.values():
            if contact["locationId"] == location_id and contact.get("phone") == phone:
                return contact
    return None


def _ghl_name(contact: dict[str, Any]) -> None:
    contact["contactName"] = " ".join(p for p in (contact.get("firstName"), contact.get("lastName")) if p)


def ghl_upsert(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    location_id = body.get("locationId")
    if not location_id:
        raise SandboxError(400, ["locationId should not be empty"])
    fields = _ghl_contact_fields(body)
    if not fields.get("email") and not fields.get("phone"):
        raise SandboxError(400, ["email or phone is required"])
    with state.lock:
        if state.config["ghl_allow_duplicate_contact"]:
            # duplicates allowed: only the first-priority field (email) identifies a contact
            contact = _ghl_find(
                state, location_id, fields.get("email"), None if fields.get("email") else fields.get("phone")
            )
        else:
            contact = _ghl_find(state, location_id, fields.get("email"), fields.get("phone"))
        ts = now_iso()
        new = contact is None
        if new:
            contact = {
                "id": uuid.uuid4().hex[:20],
                "locationId": location_id,
                "type": "lead",
                "tags": [],
                "customFields": [],
                "dnd": False,
                "dateAdded": ts,
            }
            state.ghl_contacts[contact["id"]] = contact
        contact.update(fields)  # like the vendor's update, a given tags list replaces the tags
        contact["dateUpdated"] = ts
        _ghl_name(contact)
        return Response(200, {"new": new, "contact": copy.deepcopy(contact), "traceId": str(uuid.uuid4())})


def ghl_get_contact(state: SandboxState, req: Request) -> Response:
    with state.lock:
        return Response(200, {"contact": copy.deepcopy(_ghl_get_contact(state, req.params["id"]))})


def ghl_update_contact(state: SandboxState, req: Request) -> Response:
    fields = _ghl_contact_fields(req.obj())
    with state.lock:
        contact = _ghl_get_contact(state, req.params["id"])
        contact.update(fields)
        contact["dateUpdated"] = now_iso()
        _ghl_name(contact)
        return Response(200, {"succeded": True, "contact": copy.deepcopy(contact)})


def ghl_duplicate(state: SandboxState, req: Request) -> Response:
    location_id = req.query.get("locationId")
    if not location_id:
        raise SandboxError(400, ["locationId should not be empty"])
    email, number = req.query.get("email"), req.query.get("number")
    if not email and not number:
        raise SandboxError(400, ["email or number is required"])
    with state.lock:
        contact = _ghl_find(state, location_id, email, number)
        return Response(200, {"contact": copy.deepcopy(contact) if contact else None})


def ghl_search(state: SandboxState, req: Request) -> Response:
    """POST /contacts/search: the location's contacts, oldest first, paged by ``searchAfter``."""
    body = req.obj()
    location_id = body.get("locationId")
    if not location_id:
        raise SandboxError(400, ["locationId should not be empty"])
    try:
        limit = int(body.get("pageLimit") or 20)
    except (TypeError, ValueError) as exc:
        raise SandboxError(400, ["pageLimit must be a number"]) from exc
    if not 1 <= limit <= 500:
        raise SandboxError(422, ["pageLimit must not be greater than 500"])
    after = body.get("searchAfter") or [0, ""]
    if not isinstance(after, list) or len(after) != 2:
        raise SandboxError(422, ["searchAfter must be an array of two values"])
    with state.lock:
        # contacts are never deleted here: the creation order is a stable sort key
        rows = [
            (seq, c) for seq, c in enumerate(state.ghl_contacts.values(), 1) if c["locationId"] == location_id
        ]
        rest = [(seq, c) for seq, c in rows if seq > int(after[0] or 0)]
        page = [{**copy.deepcopy(c), "searchAfter": [seq, c["id"]]} for seq, c in rest[:limit]]
        return Response(200, {"contacts": page, "total": len(rows)})


def ghl_add_tags(state: SandboxState, req: Request) -> Response:
    tags = _ghl_norm_tags(req.obj().get("tags"))
    with state.lock:
        contact = _ghl_get_contact(state, req.params["id"])
        contact["tags"] = contact["tags"] + [t for t in tags if t not in contact["tags"]]
        contact["dateUpdated"] = now_iso()
        return Response(201, {"tags": list(contact["tags"])})


def ghl_remove_tags(state: SandboxState, req: Request) -> Response:
    tags = _ghl_norm_tags(req.obj().get("tags"))
    with state.lock:
        contact = _ghl_get_contact(state, req.params["id"])
        contact["tags"] = [t for t in contact["tags"] if t not in tags]
        contact["dateUpdated"] = now_iso()
        return Response(200, {"tags": list(contact["tags"])})


def ghl_pipelines(state: SandboxState, req: Request) -> Response:
    location_id = req.query.get("locationId")
    if not location_id:
        raise SandboxError(400, ["locationId should not be empty"])
    with state.lock:
        return Response(
            200, {"pipelines": [{**copy.deepcopy(p), "locationId": location_id} for p in state.ghl_pipelines]}
        )


_GHL_OPP_STATUSES = ("open", "won", "lost", "abandoned")


def _ghl_check_stage(state: SandboxState, pipeline_id: str, stage_id: str | None) -> None:
    pipeline = next((p for p in state.ghl_pipelines if p["id"] == pipeline_id), None)
    if pipeline is None:
        raise SandboxError(400, "Pipeline not found")
    if stage_id is not None and stage_id not in {s["id"] for s in pipeline["stages"]}:
        raise SandboxError(400, "Pipeline stage not found in pipeline")


def ghl_create_opportunity(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    missing = [k for k in ("pipelineId", "locationId", "name", "contactId") if not body.get(k)]
    if missing:
        raise SandboxError(400, [f"{k} should not be empty" for k in missing])
    status = body.get("status", "open")
    if status not in _GHL_OPP_STATUSES:
        raise SandboxError(
            400, [f"status must be one of the following values: {', '.join(_GHL_OPP_STATUSES)}"]
        )
    with state.lock:
        _ghl_check_stage(state, body["pipelineId"], body.get("pipelineStageId"))
        if body["contactId"] not in state.ghl_contacts:
            raise SandboxError(400, "Contact not found")
        ts = now_iso()
        stage_id = body.get("pipelineStageId") or f"{body['pipelineId']}-stage-1"
        opp = {
            "id": uuid.uuid4().hex[:20],
            "name": body["name"],
            "monetaryValue": body.get("monetaryValue", 0),
            "pipelineId": body["pipelineId"],
            "pipelineStageId": stage_id,
            "assignedTo": body.get("assignedTo"),
            "status": status,
            "source": body.get("source"),
            "contactId": body["contactId"],
            "locationId": body["locationId"],
            "createdAt": ts,
            "updatedAt": ts,
            "lastStatusChangeAt": ts,
            "lastStageChangeAt": ts,
            "stageHistory": [stage_id],
        }
        state.ghl_opportunities[opp["id"]] = opp
        return Response(201, {"opportunity": copy.deepcopy(opp)})


def _ghl_get_opp(state: SandboxState, opp_id: str) -> dict[str, Any]:
    opp = state.ghl_opportunities.get(opp_id)
    if opp is None:
        raise SandboxError(404, "Opportunity not found")
    return opp


def ghl_get_opportunity(state: SandboxState, req: Request) -> Response:
    with state.lock:
        return Response(200, {"opportunity": copy.deepcopy(_ghl_get_opp(state, req.params["id"]))})


def ghl_update_opportunity(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    if "status" in body and body["status"] not in _GHL_OPP_STATUSES:
        raise SandboxError(
            400, [f"status must be one of the following values: {', '.join(_GHL_OPP_STATUSES)}"]
        )
    with state.lock:
        opp = _ghl_get_opp(state, req.params["id"])
        pipeline_id = body.get("pipelineId") or opp["pipelineId"]
        _ghl_check_stage(state, pipeline_id, body.get("pipelineStageId"))
        ts = now_iso()
        if body.get("pipelineStageId") and body["pipelineStageId"] != opp["pipelineStageId"]:
            opp["lastStageChangeAt"] = ts
            opp["stageHistory"].append(body["pipelineStageId"])
        if body.get("status") and body["status"] != opp["status"]:
            opp["lastStatusChangeAt"] = ts
        for key in ("name", "pipelineId", "pipelineStageId", "status", "monetaryValue", "assignedTo"):
            if key in body:
                opp[key] = body[key]
        opp["updatedAt"] = ts
        return Response(200, {"opportunity": copy.deepcopy(opp)})


ROUTES = [
    route("POST", "/contacts/upsert", ghl_upsert, "contacts", "contacts.write"),
    route("GET", "/contacts/search/duplicate", ghl_duplicate, "contacts", "contacts.readonly"),
    route("POST", "/contacts/search", ghl_search, "contacts", "contacts.readonly"),
    route("POST", "/contacts/{id}/tags", ghl_add_tags, "contacts", "contacts.write"),
    route("DELETE", "/contacts/{id}/tags", ghl_remove_tags, "contacts", "contacts.write"),
    route("GET", "/contacts/{id}", ghl_get_contact, "contacts", "contacts.readonly"),
    route("PUT", "/contacts/{id}", ghl_update_contact, "contacts", "contacts.write"),
    route("GET", "/opportunities/pipelines", ghl_pipelines, "opportunities", "opportunities.readonly"),
    route("POST", "/opportunities", ghl_create_opportunity, "opportunities", "opportunities.write"),
    route("GET", "/opportunities/{id}", ghl_get_opportunity, "opportunities", "opportunities.readonly"),
    route("PUT", "/opportunities/{id}", ghl_update_opportunity, "opportunities", "opportunities.write"),
]
