"""Instantly API v2 clients. ``InstantlyWriteClient`` is for executors only.

Campaigns are created in Draft (``status: 0``) and send only once activated (1 = active,
2 = paused). The workspace limit (6 000/min, shared by every key and by v1 and v2) is what
``ClientConfig.requests_per_minute`` should stay under; ``GET /api/v2/emails`` has its own 20/min.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from connectors.errors import VendorValidationError
from connectors.http import VendorClient, VendorHTTP

BASE_URL = "https://api.instantly.ai"
MAX_LEADS_PER_ADD = 1000
EMAILS_PER_MINUTE = 20

CAMPAIGN_DRAFT, CAMPAIGN_ACTIVE, CAMPAIGN_PAUSED = 0, 1, 2

# ``campaign_schedule.schedules[].timezone`` is a closed enum in Instantly's v2 spec, not IANA at
# large: it lacks e.g. America/New_York and Europe/London. Transcribed from that enum (and checked
# against other integrations' copies of it); if Instantly adds names, add them here.
INSTANTLY_TIMEZONES: frozenset[str] = frozenset(
    {
        "Etc/GMT+12", "Etc/GMT+11", "Etc/GMT+10", "America/Anchorage", "America/Dawson",
        "America/Creston", "America/Chihuahua", "America/Boise", "America/Belize", "America/Chicago",
        "America/Bahia_Banderas", "America/Regina", "America/Bogota", "America/Detroit",
        "America/Indiana/Marengo", "America/Caracas", "America/Asuncion", "America/Glace_Bay",
        "America/Campo_Grande", "America/Anguilla", "America/Santiago", "America/St_Johns",
        "America/Sao_Paulo", "America/Argentina/La_Rioja", "America/Araguaina", "America/Godthab",
        "America/Montevideo", "America/Bahia", "America/Noronha", "America/Scoresbysund",
        "Atlantic/Cape_Verde", "Africa/Casablanca", "America/Danmarkshavn", "Europe/Isle_of_Man",
        "Atlantic/Canary", "Africa/Abidjan", "Arctic/Longyearbyen", "Europe/Belgrade", "Africa/Ceuta",
        "Europe/Sarajevo", "Africa/Algiers", "Africa/Windhoek", "Asia/Nicosia", "Asia/Beirut",
        "Africa/Cairo", "Asia/Damascus", "Europe/Bucharest", "Africa/Blantyre", "Europe/Helsinki",
        "Europe/Istanbul", "Asia/Jerusalem", "Africa/Tripoli", "Asia/Amman", "Asia/Baghdad",
        "Europe/Kaliningrad", "Asia/Aden", "Africa/Addis_Ababa", "Europe/Kirov", "Europe/Astrakhan",
        "Asia/Tehran", "Asia/Dubai", "Asia/Baku", "Indian/Mahe", "Asia/Tbilisi", "Asia/Yerevan",
        "Asia/Kabul", "Antarctica/Mawson", "Asia/Yekaterinburg", "Asia/Karachi", "Asia/Kolkata",
        "Asia/Colombo", "Asia/Kathmandu", "Antarctica/Vostok", "Asia/Dhaka", "Asia/Rangoon",
        "Antarctica/Davis", "Asia/Novokuznetsk", "Asia/Hong_Kong", "Asia/Krasnoyarsk", "Asia/Brunei",
        "Australia/Perth", "Asia/Taipei", "Asia/Choibalsan", "Asia/Irkutsk", "Asia/Dili",
        "Asia/Pyongyang", "Australia/Adelaide", "Australia/Darwin", "Australia/Brisbane",
        "Australia/Melbourne", "Antarctica/DumontDUrville", "Australia/Currie", "Asia/Chita",
        "Antarctica/Macquarie", "Asia/Sakhalin", "Pacific/Auckland", "Etc/GMT-12", "Pacific/Fiji",
        "Asia/Anadyr", "Asia/Kamchatka", "Etc/GMT-13", "Pacific/Apia",
    }
)  # fmt: skip

# Only exact equivalents (same offset and same DST rules), offered in the error message.
_TIMEZONE_EQUIVALENTS = {
    "America/New_York": "America/Detroit",
    "US/Eastern": "America/Detroit",
    "Europe/London": "Europe/Isle_of_Man",
    "UTC": "Africa/Abidjan",
    "Etc/UTC": "Africa/Abidjan",
}


def validate_timezone(name: str) -> str:
    """Return ``name`` if Instantly accepts it as a schedule time zone, else raise."""
    if name in INSTANTLY_TIMEZONES:
        return name
    hint = _TIMEZONE_EQUIVALENTS.get(name)
    suggestion = f"; use {hint!r}, which keeps the same clock" if hint else ""
    raise VendorValidationError(
        "instantly", f"time zone {name!r} is not in Instantly's schedule list{suggestion}"
    )


class InstantlyHTTP(VendorHTTP):
    system = "instantly"
    default_base_url = BASE_URL


def _segment(value: str) -> str:
    return quote(str(value), safe="")


# Webhook subscriptions read per page (Instantly's maximum) and pages read at most.
WEBHOOK_PAGE_SIZE = 100
WEBHOOK_PAGES_MAX = 10


def _page_params(limit: int, starting_after: str | None, **filters: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if starting_after:
        params["starting_after"] = starting_after
    params.update({key: value for key, value in filters.items() if value is not None})
    return params


class InstantlyReadClient(VendorClient):
    """Reads campaigns, analytics, emails (replies) and the block list; never mutates."""

    http_class = InstantlyHTTP

    def get_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        response = self.http.request("GET", f"/api/v2/campaigns/{_segment(campaign_id)}", ok_statuses=(404,))
        if response.status_code == 404:
            return None
        return self._json(response)

    def list_campaigns(
        self,
        *,
        limit: int = 100,
        starting_after: str | None = None,
        search: str | None = None,
        status: int | None = None,
    ) -> dict[str, Any]:
        """One page: ``{"items": [...], "next_starting_after": ...}``."""
        params = _page_params(limit, starting_after, search=search, status=status)
        return self._json(self.http.request("GET", "/api/v2/campaigns", params=params))

    def campaign_analytics(
        self, campaign_id: str, *, start_date: str | None = None, end_date: str | None = None
    ) -> dict[str, Any] | None:
        """The campaign's analytics row (sent, opened, replies, bounces, ...), or None."""
        params = {"id": campaign_id, "start_date": start_date, "end_date": end_date}
        response = self.http.request(
            "GET",
            "/api/v2/campaigns/analytics",
            params={key: value for key, value in params.items() if value is not None},
        )
        rows = self._json(response) or []
        if isinstance(rows, dict):  # tolerate a single object
            rows = [rows]
        return next((row for row in rows if row.get("campaign_id") == campaign_id), rows[0] if rows else None)

    def list_emails(
        self,
        *,
        campaign_id: str | None = None,
        email_type: str | None = "received",
        lead: str | None = None,
        is_unread: bool | None = None,
        limit: int = 100,
        starting_after: str | None = None,
    ) -> dict[str, Any]:
        """One page of emails, replies (``email_type="received"``) by default. Limited to 20/min."""
        params = _page_params(
            limit,
            starting_after,
            campaign_id=campaign_id,
            email_type=email_type,
            lead=lead,
            is_unread=None if is_unread is None else str(is_unread).lower(),
        )
        response = self.http.request(
            "GET", "/api/v2/emails", params=params, endpoint_limit=("emails", EMAILS_PER_MINUTE)
        )
        return self._json(response)

    def list_block_list(
        self, *, limit: int = 100, starting_after: str | None = None, search: str | None = None
    ) -> dict[str, Any]:
        params = _page_params(limit, starting_after, search=search)
        return self._json(self.http.request("GET", "/api/v2/block-lists-entries", params=params))

    def list_webhooks(self, *, max_pages: int = WEBHOOK_PAGES_MAX) -> list[dict[str, Any]]:
        """The workspace's webhook subscriptions, every page (``status`` 1 is active; Instantly
        disables one after repeated failed deliveries)."""
        hooks: list[dict[str, Any]] = []
        cursor = None
        for _ in range(max_pages):
            params = _page_params(WEBHOOK_PAGE_SIZE, cursor)
            page = self._json(self.http.request("GET", "/api/v2/webhooks", params=params)) or {}
            hooks.extend(page.get("items") or [])
            cursor = page.get("next_starting_after")
            if not cursor:
                break
        return hooks


class InstantlyWriteClient(InstantlyReadClient):
    """Adds leads, starts and pauses campaigns, blocks addresses. For executors only."""

    def add_leads(
        self, campaign_id: str, leads: list[dict[str, Any]], *, skip_if_in_campaign: bool = True
    ) -> dict[str, Any]:
        """Add up to 1 000 leads (each needs ``email``) to a campaign; returns Instantly's counts.

        ``skip_if_in_campaign`` defaults on so that a retried call (after a time-out) adds nobody twice.
        """
        if not leads:
            raise VendorValidationError(self.system, "no leads to add")
        if len(leads) > MAX_LEADS_PER_ADD:
            raise VendorValidationError(
                self.system, f"{len(leads)} leads in one call; Instantly takes at most {MAX_LEADS_PER_ADD}"
            )
        missing = [index for index, lead in enumerate(leads) if not lead.get("email")]
        if missing:
            raise VendorValidationError(self.system, f"leads without an email at positions {missing[:10]}")
        body = {"campaign_id": campaign_id, "leads": leads, "skip_if_in_campaign": skip_if_in_campaign}
        # with skip_if_in_campaign a repeat adds nobody twice; without it a repeat duplicates leads
        response = self.http.request("POST", "/api/v2/leads/add", json=body, idempotent=skip_if_in_campaign)
        return self._json(response)

    def activate_campaign(self, campaign_id: str) -> dict[str, Any]:
        """Start (or resume) sending; a Draft campaign sends nothing until this is called."""
        # sets the campaign's status: activating an active campaign changes nothing
        path = f"/api/v2/campaigns/{_segment(campaign_id)}/activate"
        return self._json(self.http.request("POST", path, idempotent=True))

    def pause_campaign(self, campaign_id: str) -> dict[str, Any]:
        path = f"/api/v2/campaigns/{_segment(campaign_id)}/pause"
        return self._json(self.http.request("POST", path, idempotent=True))  # sets the status, like activate

    def add_block_list_entry(self, value: str) -> dict[str, Any]:
        """Block an email address or a whole domain for the workspace."""
        value = value.strip().lower()
        if not value or any(char.isspace() for char in value) or "." not in value:
            raise VendorValidationError(self.system, f"{value!r} is neither an email address nor a domain")
        return self._json(self.http.request("POST", "/api/v2/block-lists-entries", json={"bl_value": value}))

    def register_webhook(
        self, target_hook_url: str, headers: dict[str, str], event_type: str = "all_events"
    ) -> dict:
        """Subscribe our endpoint; Instantly does not sign webhooks, so a secret header is registered."""
        body = {"target_hook_url": target_hook_url, "event_type": event_type, "headers": headers}
        return self._json(self.http.request("POST", "/api/v2/webhooks", json=body))

    def resume_webhook(self, webhook_id: str) -> dict[str, Any]:
        """Re-enable a webhook Instantly disabled after repeated delivery failures."""
        return self._json(self.http.request("POST", f"/api/v2/webhooks/{_segment(webhook_id)}/resume"))

    def delete_webhook(self, webhook_id: str) -> dict[str, Any]:
        return self._json(self.http.request("DELETE", f"/api/v2/webhooks/{_segment(webhook_id)}"))
