"""Clay webhook sources (``/clay/webhook/{source_id}``) and the table's HTTP API column, which
posts each accepted row's enrichment results back to us."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, Any

from connectors.sandbox.common import CLAY, Request, Response, SandboxError, now_iso, post_json, route

if TYPE_CHECKING:
    from connectors.sandbox.state import SandboxState

VENDOR = CLAY
PATH_PREFIXES = ("/clay/",)
CLAY_SUBMISSION_LIMIT = 50_000


def clay_webhook(state: SandboxState, req: Request) -> Response:
    data = req.data
    if isinstance(data, dict):
        rows = [data]
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        rows = data
    else:
        raise SandboxError(400, "body must be a JSON object (one row) or an array of objects")
    source = req.params["source_id"]
    with state.lock:
        limit = int(state.config["clay_submission_limit"])
        used = state.clay_submissions.get(source, 0)
        if used + len(rows) > limit:
            raise SandboxError(
                422,
                f"This webhook source has reached its limit of {limit} submissions; "
                "create a new webhook source",
            )
        state.clay_submissions[source] = used + len(rows)
        kept = state.clay_rows.setdefault(source, [])
        kept.extend(copy.deepcopy(rows[: max(0, 1000 - len(kept))]))  # keep the first 1000 for inspection
        column = copy.deepcopy(state.config["clay_columns"].get(source))
        timeout = float(state.config["webhook_timeout"])
    after = []
    if column:
        # Clay enriches later and sends the results through the table's HTTP API column
        for row in rows:
            after.append(lambda row=row: clay_column_post(state, source, column, row, timeout))
    return Response(202, {"status": "ok"}, after=after)


def clay_enrichment(row: dict[str, Any]) -> dict[str, Any]:
    """Deterministic enrichment output for a row (seed 001's Clay spec), echoing its mh1_ref."""
    email = str(row.get("email") or "").lower()
    local, _, domain = email.partition("@")
    digest = int(hashlib.sha256(email.encode()).hexdigest()[:8], 16)
    company = (domain.split(".")[0] or "example").replace("-", " ").title()
    titles = ["VP Marketing", "Head of Growth", "Marketing Manager", "CMO", "RevOps Lead"]
    title = titles[digest % len(titles)]
    seniority = "c_suite" if title == "CMO" else ("vp" if title.startswith(("VP", "Head")) else "manager")
    return {
        "mh1_ref": row.get("mh1_ref"),
        "email": email,
        "phone": f"+1415555{digest % 10000:04d}",
        "title": title,
        "company_name": row.get("company") or company,
        "company_domain": domain,
        "company_size": [12, 48, 180, 650, 2400][digest % 5],
        "company_industry": ["Software", "Logistics", "Healthcare", "Retail"][digest % 4],
        "company_revenue": [1_000_000, 8_000_000, 40_000_000, 250_000_000][digest % 4],
        "technologies": ["HubSpot", "Google Workspace"] if digest % 2 else ["Salesforce", "Outreach"],
        "seniority_level": seniority,
        "department": "marketing",
        "data_source": "clay",
        "data_collected_at": now_iso(),
        "legal_basis": "legitimate_interest",
        "first_name": row.get("first_name") or local.split(".")[0].title(),
    }


def clay_column_post(
    state: SandboxState, source: str, column: dict[str, Any], row: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Clay's HTTP API column: POST one row's enrichment results to the configured URL."""
    payload = clay_enrichment(row)
    headers = {"Content-Type": "application/json", "User-Agent": "MH1-Sandbox-Clay-HTTP-API/1.0"}
    headers.update(column.get("headers") or {})
    status, error = post_json(column["url"], json.dumps(payload).encode(), headers, timeout)
    record = {
        "clay_source": source,
        "target_url": column["url"],
        "event_type": "clay_http_api",
        "lead_email": payload["email"],
        "timestamp": now_iso(),
        "header_names": sorted((column.get("headers") or {}).keys()),
        "status": status,
        "ok": status is not None and 200 <= status < 300,
        "error": error,
    }
    with state.lock:
        state.deliveries.append(record)
    return record


ROUTES = [route("POST", "/clay/webhook/{source_id}", clay_webhook, "clay", "webhook")]
