"""Which vendor a path belongs to, which route serves it, and the vendors' gateways in front of
every route: authentication, scopes and the informative rate-limit headers.

Token conventions: a token starting with ``bad-`` is rejected (401); a token containing
``noscope-<area>`` (``contacts``, ``opportunities``, ``campaigns``, ``leads``, ``emails``,
``blocklists``, ``webhooks``, ``clay`` or ``all``) gets 403 on that area's routes.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any

from connectors.sandbox import clay, gohighlevel, hubspot, instantly
from connectors.sandbox.common import CLAY, CONTROL, GHL, HUBSPOT, INSTANTLY, Route, SandboxError
from connectors.sandbox.gohighlevel import GHL_VERSION

if TYPE_CHECKING:
    from connectors.sandbox.state import SandboxState

VENDOR_MODULES = (hubspot, gohighlevel, instantly, clay)
ROUTES: list[Route] = [r for module in VENDOR_MODULES for r in module.ROUTES]

_NOSCOPE_RE = re.compile(r"noscope-([a-z0-9_]+)")


def vendor_for(path: str) -> str | None:
    if path.startswith("/_sandbox"):
        return CONTROL
    for module in VENDOR_MODULES:
        if path.startswith(module.PATH_PREFIXES):
            return module.VENDOR
    return None


def match_route(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, params, path_known): path_known tells 405 from 404 when no route matched."""
    path_known = False
    for route in ROUTES:
        m = route.pattern.match(path)
        if m is None:
            continue
        path_known = True
        if route.method == method:
            return route, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}, True
    return None, {}, path_known


def _bearer(headers: Any) -> str | None:
    value = headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def check_auth(vendor: str, headers: Any) -> SandboxError | None:
    """401 / 400 (GoHighLevel Version) before routing, like the vendors' gateways."""
    token = _bearer(headers)
    if token is None and vendor == CLAY:
        token = (headers.get("x-clay-webhook-auth") or "").strip() or None
    if token is None or token.startswith("bad-"):
        message = {
            HUBSPOT: "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            GHL: "Invalid JWT",
            INSTANTLY: "Invalid API key",
            CLAY: "Unauthorized",
        }[vendor]
        if token is not None and vendor == HUBSPOT:
            message = "The OAuth token used to make this call expired or is invalid."
        return SandboxError(401, message, category="INVALID_AUTHENTICATION")
    if vendor == GHL and headers.get("Version") != GHL_VERSION:
        return SandboxError(400, f"Version header was not found or is not {GHL_VERSION}")
    return None


def check_scope(vendor: str, headers: Any, route: Route) -> SandboxError | None:
    token = _bearer(headers) or (headers.get("x-clay-webhook-auth") or "")
    missing = set(_NOSCOPE_RE.findall(token.lower()))
    if route.area not in missing and "all" not in missing:
        return None
    if vendor == HUBSPOT:
        return SandboxError(
            403,
            "This app hasn't been granted all required scopes to make this call. Read more about "
            "required scopes here: https://developers.hubspot.com/scopes.",
            category="MISSING_SCOPES",
            body={
                "status": "error",
                "message": "This app hasn't been granted all required scopes to make this call.",
                "correlationId": str(uuid.uuid4()),
                "errors": [
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [route.scope]},
                    }
                ],
                "category": "MISSING_SCOPES",
            },
        )
    if vendor == GHL:
        return SandboxError(403, f"The token is not authorized for this scope: {route.scope}")
    return SandboxError(403, f"Missing required scope: {route.scope} (area {route.area})")


def rate_headers(state: SandboxState, vendor: str) -> dict[str, str]:
    if vendor == HUBSPOT:
        used = state.hit(vendor, 10.0)
        return {
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": str(max(0, 100 - used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        }
    if vendor == GHL:
        used = state.hit(vendor, 10.0)
        return {
            "X-RateLimit-Max": "100",
            "X-RateLimit-Remaining": str(max(0, 100 - used)),
            "X-RateLimit-Interval-Milliseconds": "10000",
            "X-RateLimit-Limit-Daily": "200000",
        }
    return {}
