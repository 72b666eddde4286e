"""Instantly v2 (``/api/v2/...``) and its webhooks: events are recorded, applied to the leads and
e-mails, and POSTed to every matching registration."""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connectors.sandbox.common import (
    INSTANTLY,
    Request,
    Response,
    SandboxError,
    now_iso,
    post_json,
    route,
)

if TYPE_CHECKING:
    from connectors.sandbox.state import SandboxState

VENDOR = INSTANTLY
PATH_PREFIXES = ("/api/v2",)
INSTANTLY_MAX_LEADS = 1000
DEMO_CAMPAIGN_ID = "cmp-demo-1"
WORKSPACE_ID = "00000000-0000-4000-8000-00000000a11c"
SANDBOX_SENDER = "sender@sandbox.mh1.local"

INSTANTLY_EVENT_TYPES = frozenset(
    {
        "email_sent",
        "email_opened",
        "reply_received",
        "auto_reply_received",
        "link_clicked",
        "email_bounced",
        "lead_unsubscribed",
        "lead_interested",
        "lead_not_interested",
        "lead_neutral",
        "lead_out_of_office",
        "lead_meeting_booked",
        "lead_meeting_completed",
        "lead_closed",
        "lead_wrong_person",
        "account_error",
        "campaign_completed",
    }
)
# subscription names that differ from the delivered event name
_SUBSCRIPTION_ALIASES = {"email_link_clicked": "link_clicked"}

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def seed(state: SandboxState) -> None:
    """The demo campaign every fresh sandbox starts with."""
    ts = now_iso()
    state.instantly_campaigns[DEMO_CAMPAIGN_ID] = {
        "id": DEMO_CAMPAIGN_ID,
        "name": "Demo campaign",
        "status": 1,
        "campaign_schedule": {
            "schedules": [
                {
                    "name": "Weekdays",
                    "timing": {"from": "09:00", "to": "17:00"},
                    "days": {str(d): d in range(1, 6) for d in range(7)},
                    "timezone": "America/Chicago",
                }
            ]
        },
        "email_list": [SANDBOX_SENDER],
        "daily_limit": 50,
        "stop_on_reply": True,
        "timestamp_created": ts,
        "timestamp_updated": ts,
        "organization": WORKSPACE_ID,
    }


def emit(state: SandboxState, event_type: str, **fields: Any) -> dict[str, Any]:
    """Record an Instantly event and POST it to every matching webhook registration.

    Synchronous; returns ``{"event": payload, "deliveries": [...]}``.
    """
    if not isinstance(event_type, str) or not event_type:
        raise SandboxError(400, "event_type is required")
    with state.lock:
        payload = _event_payload(state, event_type, fields)
        _apply_event(state, payload)
        targets = [
            copy.deepcopy(w) for w in state.instantly_webhooks.values() if _webhook_matches(w, payload)
        ]
        timeout = float(state.config["webhook_timeout"])
    deliveries = [_deliver(state, hook, payload, timeout) for hook in targets]
    return {"event": payload, "deliveries": deliveries}


def _event_payload(state: SandboxState, event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    campaign_id = fields.get("campaign_id") or DEMO_CAMPAIGN_ID
    campaign = state.instantly_campaigns.get(campaign_id, {})
    lead_email = fields.get("lead_email")
    payload: dict[str, Any] = {
        "timestamp": now_iso(),
        "event_type": event_type,
        "workspace": WORKSPACE_ID,
        "campaign_id": campaign_id,
        "campaign_name": campaign.get("name", ""),
    }
    if lead_email:
        previous = [
            e
            for e in state.instantly_events
            if e["event_type"] == event_type
            and e.get("lead_email") == lead_email
            and e["campaign_id"] == campaign_id
        ]
        payload.update(
            {
                "lead_email": lead_email,
                "email_account": SANDBOX_SENDER,
                "step": 1,
                "variant": 1,
                "is_first": not previous,
            }
        )
    if event_type == "email_sent":
        payload.update(
            {
                "email_id": str(uuid.uuid4()),
                "email_subject": f"Quick question for {lead_email or 'you'}",
                "email_text": "Hello from the sandbox.",
                "email_html": "<p>Hello from the sandbox.</p>",
            }
        )
    elif event_type in ("reply_received", "auto_reply_received"):
        sent = [
            e
            for e in state.instantly_emails
            if e["ue_type"] == 1 and e["lead"] == lead_email and e["campaign_id"] == campaign_id
        ]
        reply_text = fields.get("reply_text") or "Thanks, tell me more."
        payload.update(
            {
                "email_id": sent[-1]["id"] if sent else str(uuid.uuid4()),
                "reply_subject": "Re: Quick question",
                "reply_text": reply_text,
                "reply_text_snippet": reply_text[:100],
                "reply_html": f"<p>{reply_text}</p>",
                "unibox_url": f"https://app.instantly.ai/app/unibox?thread_search={lead_email}",
            }
        )
    elif lead_email:
        sent = [e for e in state.instantly_emails if e["ue_type"] == 1 and e["lead"] == lead_email]
        if sent:
            payload["email_id"] = sent[-1]["id"]
    payload.update({k: v for k, v in fields.items() if k != "event_type"})
    payload["campaign_id"] = campaign_id
    return payload


def _apply_event(state: SandboxState, payload: dict[str, Any]) -> None:
    state.instantly_events.append(copy.deepcopy(payload))
    event_type, lead_email = payload["event_type"], payload.get("lead_email")
    lead = next(
        (
            lead
            for lead in state.instantly_leads.values()
            if lead["email"] == lead_email and lead["campaign"] == payload["campaign_id"]
        ),
        None,
    )
    if event_type == "email_sent":
        state.instantly_emails.append(
            {
                "id": payload.get("email_id") or str(uuid.uuid4()),
                "timestamp_email": payload["timestamp"],
                "timestamp_created": payload["timestamp"],
                "ue_type": 1,
                "campaign_id": payload["campaign_id"],
                "lead": lead_email,
                "eaccount": payload.get("email_account", SANDBOX_SENDER),
                "from_address_email": payload.get("email_account", SANDBOX_SENDER),
                "to_address_email_list": lead_email,
                "subject": payload.get("email_subject", ""),
                "body": {"text": payload.get("email_text", ""), "html": payload.get("email_html", "")},
                "step": payload.get("step"),
                "thread_id": payload.get("email_id"),
                "is_unread": 0,
            }
        )
    elif event_type in ("reply_received", "auto_reply_received"):
        state.instantly_emails.append(
            {
                "id": str(uuid.uuid4()),
                "timestamp_email": payload["timestamp"],
                "timestamp_created": payload["timestamp"],
                "ue_type": 2,
                "campaign_id": payload["campaign_id"],
                "lead": lead_email,
                "eaccount": payload.get("email_account", SANDBOX_SENDER),
                "from_address_email": lead_email,
                "to_address_email_list": payload.get("email_account", SANDBOX_SENDER),
                "subject": payload.get("reply_subject", ""),
                "body": {"text": payload.get("reply_text", ""), "html": payload.get("reply_html", "")},
                "reply_to_uuid": payload.get("email_id"),
                "thread_id": payload.get("email_id"),
                "is_unread": 1,
                "is_auto_reply": int(event_type == "auto_reply_received"),
            }
        )
    if lead is not None:
        lead["timestamp_updated"] = payload["timestamp"]
        if event_type == "email_bounced":
            lead["status"] = -1
        elif event_type == "lead_unsubscribed":
            lead["status"] = -2
        elif event_type in ("reply_received", "lead_interested"):
            lead["lt_interest_status"] = 1


def _deliver(
    state: SandboxState, hook: dict[str, Any], payload: dict[str, Any], timeout: float
) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "MH1-Sandbox-Instantly-Webhook/1.0"}
    headers.update(hook.get("headers") or {})
    record: dict[str, Any] = {
        "webhook_id": hook["id"],
        "target_hook_url": hook["target_hook_url"],
        "event_type": payload["event_type"],
        "lead_email": payload.get("lead_email"),
        "timestamp": now_iso(),
        # header names only: the values are the subscriber's secret
        "header_names": sorted((hook.get("headers") or {}).keys()),
        "status": None,
        "ok": False,
        "error": None,
    }
    status, error = post_json(hook["target_hook_url"], body, headers, timeout)
    record["status"], record["error"] = status, error
    record["ok"] = record["status"] is not None and 200 <= record["status"] < 300
    with state.lock:
        state.deliveries.append(record)
        live = state.instantly_webhooks.get(hook["id"])
        if live is not None:
            live["consecutive_failures"] = 0 if record["ok"] else live["consecutive_failures"] + 1
            limit = int(state.config["webhook_disable_after"])
            if limit and live["consecutive_failures"] >= limit:
                live["status"] = 0
    return dict(record)


def webhook_public(hook: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hook.items() if k != "consecutive_failures"} | {
        "consecutive_failures": hook.get("consecutive_failures", 0)
    }


def _webhook_matches(hook: dict[str, Any], payload: dict[str, Any]) -> bool:
    if hook["status"] != 1:
        return False
    wanted = _SUBSCRIPTION_ALIASES.get(hook["event_type"], hook["event_type"])
    if wanted not in ("all_events", payload["event_type"]):
        return False
    return not hook.get("campaign") or hook["campaign"] == payload.get("campaign_id")


def _paginate(items: list[dict[str, Any]], query: dict[str, str], key: str = "id") -> dict[str, Any]:
    try:
        limit = max(1, min(100, int(query.get("limit", "10"))))
    except ValueError as exc:
        raise SandboxError(400, "querystring/limit must be integer") from exc
    after = query.get("starting_after")
    if after:
        ids = [item[key] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {"items": page, "next_starting_after": page[-1][key] if len(items) > limit else None}


def _in_get_campaign(state: SandboxState, campaign_id: str) -> dict[str, Any]:
    campaign = state.instantly_campaigns.get(campaign_id)
    if campaign is None:
        raise SandboxError(404, "Campaign not found")
    return campaign


def instantly_list_campaigns(state: SandboxState, req: Request) -> Response:
    with state.lock:
        items = list(state.instantly_campaigns.values())
        search = req.query.get("search")
        if search:
            items = [c for c in items if search.lower() in c["name"].lower()]
        return Response(200, copy.deepcopy(_paginate(items, req.query)))


def instantly_create_campaign(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    if not body.get("name"):
        raise SandboxError(400, "body must have required property 'name'")
    if not isinstance(body.get("campaign_schedule"), dict):
        raise SandboxError(400, "body must have required property 'campaign_schedule'")
    ts = now_iso()
    campaign = {
        **copy.deepcopy(body),
        "id": str(uuid.uuid4()),
        "status": 0,
        "timestamp_created": ts,
        "timestamp_updated": ts,
        "organization": WORKSPACE_ID,
    }
    with state.lock:
        state.instantly_campaigns[campaign["id"]] = campaign
        return Response(200, copy.deepcopy(campaign))


def instantly_get_campaign(state: SandboxState, req: Request) -> Response:
    with state.lock:
        return Response(200, copy.deepcopy(_in_get_campaign(state, req.params["id"])))


def _in_set_status(state: SandboxState, req: Request, status: int) -> Response:
    with state.lock:
        campaign = _in_get_campaign(state, req.params["id"])
        campaign["status"] = status
        campaign["timestamp_updated"] = now_iso()
        return Response(200, copy.deepcopy(campaign))


def instantly_activate(state: SandboxState, req: Request) -> Response:
    return _in_set_status(state, req, 1)


def instantly_pause(state: SandboxState, req: Request) -> Response:
    return _in_set_status(state, req, 2)


def instantly_analytics(state: SandboxState, req: Request) -> Response:
    wanted = [i for i in (req.query.get("id"), *req.query.get("ids", "").split(",")) if i]
    with state.lock:
        campaigns = (
            [_in_get_campaign(state, i) for i in wanted]
            if wanted
            else list(state.instantly_campaigns.values())
        )
        out = []
        for c in campaigns:
            events = [e for e in state.instantly_events if e.get("campaign_id") == c["id"]]

            def count(event_type: str, unique: bool = False, _events: list = events) -> int:
                hits = [e for e in _events if e["event_type"] == event_type]
                return len({e.get("lead_email") for e in hits}) if unique else len(hits)

            out.append(
                {
                    "campaign_name": c["name"],
                    "campaign_id": c["id"],
                    "campaign_status": c["status"],
                    "campaign_is_evergreen": False,
                    "leads_count": sum(
                        1 for lead in state.instantly_leads.values() if lead["campaign"] == c["id"]
                    ),
                    "contacted_count": count("email_sent", unique=True),
                    "emails_sent_count": count("email_sent"),
                    "open_count": count("email_opened"),
                    "open_count_unique": count("email_opened", unique=True),
                    "reply_count": count("reply_received"),
                    "reply_count_unique": count("reply_received", unique=True),
                    "link_click_count": count("link_clicked"),
                    "bounced_count": count("email_bounced"),
                    "unsubscribed_count": count("lead_unsubscribed"),
                    "completed_count": 0,
                    "new_leads_contacted_count": count("email_sent", unique=True),
                    "total_opportunities": count("lead_interested", unique=True),
                    "total_opportunity_value": 0,
                }
            )
        return Response(200, out)


def _in_blocked(state: SandboxState, email: str) -> bool:
    domain = email.rsplit("@", 1)[-1]
    values = {e["bl_value"] for e in state.instantly_blocklist.values()}
    return email in values or domain in values


def instantly_add_leads(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    leads = body.get("leads")
    if not isinstance(leads, list):
        raise SandboxError(400, "body must have required property 'leads'")
    if len(leads) > INSTANTLY_MAX_LEADS:
        raise SandboxError(400, f"body/leads must NOT have more than {INSTANTLY_MAX_LEADS} items")
    if not leads:
        raise SandboxError(400, "body/leads must NOT have fewer than 1 items")
    campaign_id, list_id = body.get("campaign_id"), body.get("list_id")
    if not campaign_id and not list_id:
        raise SandboxError(400, "body must have required property 'campaign_id' or 'list_id'")
    counters = dict.fromkeys(
        (
            "in_blocklist",
            "already_in_campaign",
            "skipped_count",
            "invalid_email_count",
            "duplicate_email_count",
        ),
        0,
    )
    created: list[dict[str, Any]] = []
    after: list[Callable[[], Any]] = []
    with state.lock:
        campaign = _in_get_campaign(state, campaign_id) if campaign_id else None
        seen: set[str] = set()
        for index, lead in enumerate(leads):
            email = str((lead or {}).get("email") or "").strip().lower() if isinstance(lead, dict) else ""
            if not _EMAIL_RE.match(email):
                counters["invalid_email_count"] += 1
                continue
            if email in seen:
                counters["duplicate_email_count"] += 1
                continue
            seen.add(email)
            if _in_blocked(state, email):
                counters["in_blocklist"] += 1
                continue
            existing = [x for x in state.instantly_leads.values() if x["email"] == email]
            if campaign_id and any(x["campaign"] == campaign_id for x in existing):
                counters["already_in_campaign"] += 1
                continue
            if existing and body.get("skip_if_in_workspace"):
                counters["skipped_count"] += 1
                continue
            ts = now_iso()
            record = {
                "id": str(uuid.uuid4()),
                "email": email,
                "first_name": lead.get("first_name"),
                "last_name": lead.get("last_name"),
                "company_name": lead.get("company_name"),
                "phone": lead.get("phone"),
                "website": lead.get("website"),
                "personalization": lead.get("personalization"),
                "custom_variables": copy.deepcopy(lead.get("custom_variables") or {}),
                "campaign": campaign_id,
                "list_id": list_id,
                "status": 1,
                "timestamp_created": ts,
                "timestamp_updated": ts,
                "organization": WORKSPACE_ID,
            }
            state.instantly_leads[record["id"]] = record
            created.append({"id": record["id"], "index": index, "email": email})
        auto = bool(state.config["auto_events"]) and campaign is not None and campaign["status"] == 1
    if auto:
        for lead in created:
            after.append(
                lambda email=lead["email"]: state.emit(
                    "email_sent", lead_email=email, campaign_id=campaign_id
                )
            )
    return Response(
        200,
        {
            "status": "success",
            "total_sent": len(leads),
            "leads_uploaded": len(created),
            "blocklist_used": body.get("blocklist_id"),
            **counters,
            "remaining_in_plan": 1_000_000,
            "created_leads": created,
        },
        after=after,
    )


def instantly_emails(state: SandboxState, req: Request) -> Response:
    q = req.query
    type_filter = {"received": {2}, "sent": {1, 3}, "manual": {3}}.get(q.get("email_type", ""))
    with state.lock:
        items = [
            e
            for e in reversed(state.instantly_emails)
            if (not q.get("campaign_id") or e["campaign_id"] == q["campaign_id"])
            and (not q.get("lead") or e["lead"] == q["lead"].lower())
            and (type_filter is None or e["ue_type"] in type_filter)
            and (q.get("is_unread") in (None, "") or e["is_unread"] == int(q["is_unread"] in ("true", "1")))
        ]
        return Response(200, copy.deepcopy(_paginate(items, q)))


def instantly_add_blocklist(state: SandboxState, req: Request) -> Response:
    value = str(req.obj().get("bl_value") or "").strip().lower()
    if not value:
        raise SandboxError(400, "body must have required property 'bl_value'")
    with state.lock:
        existing = next((e for e in state.instantly_blocklist.values() if e["bl_value"] == value), None)
        if existing is not None:
            return Response(200, copy.deepcopy(existing))
        entry = {
            "id": str(uuid.uuid4()),
            "timestamp_created": now_iso(),
            "bl_value": value,
            "is_domain": "@" not in value,
            "organization_id": WORKSPACE_ID,
        }
        state.instantly_blocklist[entry["id"]] = entry
        return Response(200, copy.deepcopy(entry))


def instantly_list_blocklist(state: SandboxState, req: Request) -> Response:
    with state.lock:
        items = list(state.instantly_blocklist.values())
        if req.query.get("search"):
            items = [e for e in items if req.query["search"].lower() in e["bl_value"]]
        if req.query.get("domains_only") in ("true", "1"):
            items = [e for e in items if e["is_domain"]]
        return Response(200, copy.deepcopy(_paginate(items, req.query)))


def instantly_delete_blocklist(state: SandboxState, req: Request) -> Response:
    with state.lock:
        entry = state.instantly_blocklist.pop(req.params["id"], None)
        if entry is None:
            raise SandboxError(404, "Block list entry not found")
        return Response(200, entry)


def instantly_create_webhook(state: SandboxState, req: Request) -> Response:
    body = req.obj()
    url = body.get("target_hook_url")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise SandboxError(400, "body/target_hook_url must be an http(s) URL")
    event_type = body.get("event_type") or "all_events"
    known = INSTANTLY_EVENT_TYPES | set(_SUBSCRIPTION_ALIASES) | {"all_events"}
    if event_type not in known:
        raise SandboxError(400, f"body/event_type must be one of {sorted(known)}")
    headers = body.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise SandboxError(400, "body/headers must be an object of strings")
    hook = {
        "id": str(uuid.uuid4()),
        "name": body.get("name"),
        "target_hook_url": url,
        "event_type": event_type,
        "campaign": body.get("campaign"),
        "headers": dict(headers),
        "status": 1,
        "timestamp_created": now_iso(),
        "organization": WORKSPACE_ID,
        "consecutive_failures": 0,
    }
    with state.lock:
        state.instantly_webhooks[hook["id"]] = hook
        return Response(200, webhook_public(hook))


def instantly_list_webhooks(state: SandboxState, req: Request) -> Response:
    with state.lock:
        items = [webhook_public(w) for w in state.instantly_webhooks.values()]
        return Response(200, copy.deepcopy(_paginate(items, req.query)))


def instantly_delete_webhook(state: SandboxState, req: Request) -> Response:
    with state.lock:
        hook = state.instantly_webhooks.pop(req.params["id"], None)
        if hook is None:
            raise SandboxError(404, "Webhook not found")
        return Response(200, webhook_public(hook))


def instantly_resume_webhook(state: SandboxState, req: Request) -> Response:
    with state.lock:
        hook = state.instantly_webhooks.get(req.params["id"])
        if hook is None:
            raise SandboxError(404, "Webhook not found")
        hook["status"], hook["consecutive_failures"] = 1, 0
        return Response(200, webhook_public(hook))


ROUTES = [
    route("GET", "/api/v2/campaigns", instantly_list_campaigns, "campaigns", "campaigns:read"),
    route("POST", "/api/v2/campaigns", instantly_create_campaign, "campaigns", "campaigns:create"),
    route("GET", "/api/v2/campaigns/analytics", instantly_analytics, "campaigns", "campaigns:read"),
    route("GET", "/api/v2/campaigns/{id}", instantly_get_campaign, "campaigns", "campaigns:read"),
    route("POST", "/api/v2/campaigns/{id}/activate", instantly_activate, "campaigns", "campaigns:update"),
    route("POST", "/api/v2/campaigns/{id}/pause", instantly_pause, "campaigns", "campaigns:update"),
    route("POST", "/api/v2/leads/add", instantly_add_leads, "leads", "leads:create"),
    route("GET", "/api/v2/emails", instantly_emails, "emails", "emails:read"),
    route(
        "POST",
        "/api/v2/block-lists-entries",
        instantly_add_blocklist,
        "blocklists",
        "block_list_entries:create",
    ),
    route(
        "GET",
        "/api/v2/block-lists-entries",
        instantly_list_blocklist,
        "blocklists",
        "block_list_entries:read",
    ),
    route(
        "DELETE",
        "/api/v2/block-lists-entries/{id}",
        instantly_delete_blocklist,
        "blocklists",
        "block_list_entries:delete",
    ),
    route("POST", "/api/v2/webhooks", instantly_create_webhook, "webhooks", "webhooks:create"),
    route("GET", "/api/v2/webhooks", instantly_list_webhooks, "webhooks", "webhooks:read"),
    route("DELETE", "/api/v2/webhooks/{id}", instantly_delete_webhook, "webhooks", "webhooks:delete"),
    route("POST", "/api/v2/webhooks/{id}/resume", instantly_resume_webhook, "webhooks", "webhooks:update"),
]
