"""HubSpot CRM v3 clients. ``HubSpotWriteClient`` is for executors only (an approved action).

Upserts go by email (``PATCH .../contacts/{email}?idProperty=email``), never search-then-create:
HubSpot search lags behind writes, so a contact just created may not be found yet.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from connectors.errors import FatalError, VendorValidationError
from connectors.http import VendorClient, VendorHTTP

BASE_URL = "https://api.hubapi.com"
CONTACTS = "/crm/v3/objects/contacts"
COMPANIES = "/crm/v3/objects/companies"
SEARCH_LIMIT_MAX = 200  # HubSpot's page size cap for CRM search

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


class HubSpotHTTP(VendorHTTP):
    system = "hubspot"
    default_base_url = BASE_URL


def _segment(value: str) -> str:
    # An email as a path segment: keep "@" readable, escape "/", "?", "#", "+" and the like.
    return quote(str(value), safe="@")


def _properties_param(properties: list[str] | None) -> dict[str, str]:
    return {"properties": ",".join(properties)} if properties else {}


class HubSpotReadClient(VendorClient):
    """Reads contacts and companies; never calls a mutating endpoint (search is a read-only POST)."""

    http_class = HubSpotHTTP

    def get_contact(self, contact_id: str, properties: list[str] | None = None) -> dict[str, Any] | None:
        """GET /crm/v3/objects/contacts/{id}; None when it does not exist."""
        response = self.http.request(
            "GET",
            f"{CONTACTS}/{_segment(contact_id)}",
            params=_properties_param(properties or ["email"]),
            ok_statuses=(404,),
        )
        return None if response.status_code == 404 else self._json(response)

    def get_contact_by_email(self, email: str, properties: list[str] | None = None) -> dict[str, Any] | None:
        response = self.http.request(
            "GET",
            f"{CONTACTS}/{_segment(email)}",
            params={"idProperty": "email", **_properties_param(properties)},
            ok_statuses=(404,),
        )
        if response.status_code == 404:
            return None
        return self._json(response)

    def list_contacts(
        self, limit: int = 100, *, after: str | None = None, properties: list[str] | None = None
    ) -> dict[str, Any]:
        """One page of ``GET /crm/v3/objects/contacts`` (oldest id first): ``{"results", "paging"?}``;
        ``paging.next.after`` is the cursor of the next page."""
        if not 1 <= limit <= 100:
            raise VendorValidationError(self.system, f"list limit must be 1..100, got {limit}")
        params: dict[str, Any] = {"limit": limit, **_properties_param(properties)}
        if after:
            params["after"] = after
        return self._json(self.http.request("GET", CONTACTS, params=params)) or {"results": []}

    def search_contacts(
        self,
        filters: list[dict[str, Any]],
        limit: int = 10,
        *,
        properties: list[str] | None = None,
        after: str | None = None,
    ) -> dict[str, Any]:
        """One page of ``POST /crm/v3/objects/contacts/search``: ``{"total", "results", "paging"?}``.

        ``filters`` are ANDed (``{"propertyName", "operator", "value"}``). Search lags behind writes.
        """
        if not 1 <= limit <= SEARCH_LIMIT_MAX:
            raise VendorValidationError(
                self.system, f"search limit must be 1..{SEARCH_LIMIT_MAX}, got {limit}"
            )
        body: dict[str, Any] = {"filterGroups": [{"filters": filters}], "limit": limit}
        if properties:
            body["properties"] = properties
        if after:
            body["after"] = after
        # a search is a read sent as POST: repeating it is harmless
        return self._json(self.http.request("POST", f"{CONTACTS}/search", json=body, idempotent=True))

    def get_company(self, company_id: str, properties: list[str] | None = None) -> dict[str, Any] | None:
        response = self.http.request(
            "GET",
            f"{COMPANIES}/{_segment(company_id)}",
            params=_properties_param(properties) or None,
            ok_statuses=(404,),
        )
        if response.status_code == 404:
            return None
        return self._json(response)


class HubSpotWriteClient(HubSpotReadClient):
    """Creates and updates contacts. For executors only."""

    def upsert_contact_by_email(self, email: str, properties: dict[str, Any]) -> dict[str, Any]:
        """Update the contact with this email, or create it; ``{"id", "created", "properties"}``."""
        response = self.http.request(
            "PATCH",
            f"{CONTACTS}/{_segment(email)}",
            params={"idProperty": "email"},
            json={"properties": properties},
            ok_statuses=(404,),
            idempotent=True,  # sets properties on the contact keyed by email: a repeat sets them again
        )
        if response.status_code != 404:
            return self._result(self._json(response), created=False)

        response = self.http.request(
            "POST", CONTACTS, json={"properties": {**properties, "email": email}}, ok_statuses=(409,)
        )
        if response.status_code != 409:
            return self._result(self._json(response), created=True)

        # Created in between (another worker, a form, an import): HubSpot names the existing id.
        body = self._json(response) or {}
        match = _EXISTING_ID.search(str(body.get("message", "")))
        if match is None:
            raise FatalError(
                self.system,
                str(body.get("message") or "contact conflict without an existing id"),
                status_code=409,
                vendor_code=str(body.get("category", "")),
            )
        return {**self.set_properties(match.group(1), properties), "created": False}

    def set_properties(self, contact_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        """Set properties on a contact by id (tags, lifecycle stage, custom fields)."""
        response = self.http.request(
            "PATCH", f"{CONTACTS}/{_segment(contact_id)}", json={"properties": properties}, idempotent=True
        )
        return self._result(self._json(response), created=False)

    @staticmethod
    def _result(body: dict[str, Any], *, created: bool) -> dict[str, Any]:
        return {"id": str(body["id"]), "created": created, "properties": body.get("properties", {})}
