"""GoHighLevel / LeadConnector API v2 clients. ``GoHighLevelWriteClient`` is for executors only.

Every call carries ``Version: 2021-07-28`` beside the Bearer token; most calls are scoped to the
sub-account's ``location_id`` (``ClientConfig.extra["location_id"]``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from connectors.errors import FatalError, VendorValidationError
from connectors.http import ClientConfig, VendorClient, VendorHTTP

BASE_URL = "https://services.leadconnectorhq.com"
API_VERSION = "2021-07-28"
OPPORTUNITY_STATUSES = ("open", "won", "lost", "abandoned")


class GoHighLevelHTTP(VendorHTTP):
    system = "gohighlevel"
    default_base_url = BASE_URL

    def default_headers(self) -> dict[str, str]:
        return {**super().default_headers(), "Version": API_VERSION}


def _segment(value: str) -> str:
    return quote(str(value), safe="")


class GoHighLevelReadClient(VendorClient):
    """Reads contacts and pipelines; never calls a mutating endpoint."""

    http_class = GoHighLevelHTTP

    def __init__(self, config: ClientConfig, **kwargs: Any):
        location_id = (config.extra or {}).get("location_id")
        if not location_id:
            raise FatalError(
                "gohighlevel", "the connection has no location_id: set the sub-account's location id"
            )
        self.location_id = str(location_id)
        super().__init__(config, **kwargs)

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        response = self.http.request("GET", f"/contacts/{_segment(contact_id)}", ok_statuses=(404,))
        if response.status_code == 404:
            return None
        return (self._json(response) or {}).get("contact")

    def search_contact_by_email(self, email: str) -> dict[str, Any] | None:
        """The location's contact with this email (per its duplicate rules), or None."""
        response = self.http.request(
            "GET", "/contacts/search/duplicate", params={"locationId": self.location_id, "email": email}
        )
        return (self._json(response) or {}).get("contact") or None

    def search_contacts(self, page_limit: int = 100, *, search_after: list | None = None) -> dict[str, Any]:
        """One page of ``POST /contacts/search`` for the location: ``{"contacts", "total"}``; each
        contact's ``searchAfter`` is the cursor of the page after it."""
        if not 1 <= page_limit <= 500:
            raise VendorValidationError(self.system, f"page limit must be 1..500, got {page_limit}")
        body: dict[str, Any] = {"locationId": self.location_id, "pageLimit": page_limit}
        if search_after:
            body["searchAfter"] = list(search_after)
        # a search is a read sent as POST: repeating it is harmless
        response = self.http.request("POST", "/contacts/search", json=body, idempotent=True)
        return self._json(response) or {"contacts": []}

    def list_pipelines(self) -> list[dict[str, Any]]:
        response = self.http.request(
            "GET", "/opportunities/pipelines", params={"locationId": self.location_id}
        )
        return (self._json(response) or {}).get("pipelines", [])


class GoHighLevelWriteClient(GoHighLevelReadClient):
    """Upserts contacts, tags them and moves opportunities. For executors only."""

    def upsert_contact(self, email: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create or update by email; ``{"id", "created", "contact"}`` from the response's ``new`` flag.

        Whether an existing contact is updated follows the location's "allow duplicate contact"
        setting, so ``created`` is read from the vendor rather than assumed.
        """
        body = {**(fields or {}), "locationId": self.location_id, "email": email}
        data = self._json(self.http.request("POST", "/contacts/upsert", json=body)) or {}
        contact = data.get("contact") or {}
        return {"id": contact.get("id"), "created": bool(data.get("new")), "contact": contact}

    def add_tags(self, contact_id: str, tags: list[str]) -> list[str]:
        """Add tags; returns the contact's tags as the vendor reports them."""
        return self._tags("POST", contact_id, tags)

    def remove_tags(self, contact_id: str, tags: list[str]) -> list[str]:
        return self._tags("DELETE", contact_id, tags)

    def _tags(self, method: str, contact_id: str, tags: list[str]) -> list[str]:
        if not tags:
            raise VendorValidationError(self.system, "no tags given")
        # adding a tag the contact has leaves one tag: a repeated add (POST) is harmless
        response = self.http.request(
            method, f"/contacts/{_segment(contact_id)}/tags", json={"tags": list(tags)}, idempotent=True
        )
        return (self._json(response) or {}).get("tags", [])

    def create_opportunity(
        self,
        *,
        pipeline_id: str,
        stage_id: str,
        contact_id: str,
        name: str,
        status: str = "open",
        monetary_value: float | None = None,
        assigned_to: str | None = None,
    ) -> dict[str, Any]:
        if status not in OPPORTUNITY_STATUSES:
            raise VendorValidationError(
                self.system, f"opportunity status must be one of {OPPORTUNITY_STATUSES}"
            )
        body: dict[str, Any] = {
            "locationId": self.location_id,
            "pipelineId": pipeline_id,
            "pipelineStageId": stage_id,
            "contactId": contact_id,
            "name": name,
            "status": status,
        }
        if monetary_value is not None:
            body["monetaryValue"] = monetary_value
        if assigned_to:
            body["assignedTo"] = assigned_to
        return (self._json(self.http.request("POST", "/opportunities/", json=body)) or {}).get(
            "opportunity", {}
        )

    def update_opportunity_stage(
        self, opportunity_id: str, stage_id: str, *, pipeline_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"pipelineStageId": stage_id}
        if pipeline_id:
            body["pipelineId"] = pipeline_id
        response = self.http.request("PUT", f"/opportunities/{_segment(opportunity_id)}", json=body)
        return (self._json(response) or {}).get("opportunity", {})
