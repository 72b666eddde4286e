"""Clay: rows go in through a table's webhook source. ``ClayWriteClient`` is for executors only.

There is no read client: enrichment runs later and comes back through an HTTP API column we
template ourselves (unsigned, so it carries a per-tenant secret), not through this acknowledgement.
A webhook source accepts 50 000 submissions over its lifetime: the caller counts and rotates.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from connectors.errors import VendorValidationError
from connectors.http import VendorClient, VendorHTTP

WEBHOOK_SUBMISSIONS_MAX = 50_000
AUTH_HEADER = "x-clay-webhook-auth"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class ClayHTTP(VendorHTTP):
    system = "clay"

    def default_headers(self) -> dict[str, str]:
        # The webhook URL and its optional per-source token are the credentials, not a Bearer token.
        return {"Accept": "application/json", "User-Agent": "mh1-console"}


class ClayWriteClient(VendorClient):
    http_class = ClayHTTP

    def submit_row(self, webhook_url: str, row: dict[str, Any], auth_token: str | None = None) -> None:
        """POST one row; Clay's acknowledgement carries no enriched data, so nothing is returned."""
        parts = urlsplit(webhook_url)
        loopback = parts.hostname in LOOPBACK_HOSTS  # the sandbox
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise VendorValidationError(self.system, "a Clay webhook URL must be https")
        if not isinstance(row, dict) or not row:
            raise VendorValidationError(self.system, "a Clay row must be a non-empty JSON object")
        headers = {AUTH_HEADER: auth_token} if auth_token else None
        self.http.request("POST", webhook_url, json=row, headers=headers)
