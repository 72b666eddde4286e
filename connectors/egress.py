"""Where a vendor client may send a tenant's token: the vendor's own origin, or one operators allowed.

A tenant admin edits a credential's base URL; without this check that URL could point at loopback, the
cloud metadata service or any host, and every call would carry the tenant's bearer token there (SSRF).
The model (and so the admin form and any serializer) and the HTTP client both ask ``url_refusal``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings

# The origins each vendor documents for its API (and Clay's webhook sources).
VENDOR_ORIGINS: dict[str, frozenset[str]] = {
    "hubspot": frozenset({"https://api.hubapi.com"}),
    "gohighlevel": frozenset({"https://services.leadconnectorhq.com"}),
    "instantly": frozenset({"https://api.instantly.ai"}),
    "clay": frozenset({"https://api.clay.com"}),
    "anthropic": frozenset({"https://api.anthropic.com"}),
    "openai": frozenset({"https://api.openai.com"}),
}
VENDOR_NAMES = {
    "hubspot": "HubSpot",
    "gohighlevel": "GoHighLevel",
    "instantly": "Instantly",
    "clay": "Clay",
    "anthropic": "Anthropic",
    "openai": "OpenAI",
}
LOOPBACK_NAMES = frozenset({"localhost"})


def _origin(url: str) -> tuple[str, str, str] | None:
    """(scheme, host, origin) of ``url``, or None when it is not a plain http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    netloc = f"[{host}]" if ":" in host else host
    origin = f"{parts.scheme}://{netloc}" + (f":{port}" if port not in (None, default) else "")
    return parts.scheme, host, origin


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed_origins(system: str) -> set[str]:
    allowed = set(VENDOR_ORIGINS.get(system, ()))
    for entry in getattr(settings, "CONNECTOR_BASE_URL_ALLOWLIST", ()):
        parsed = _origin(entry)
        if parsed:
            allowed.add(parsed[2])
    return allowed


def url_refusal(system: str, url: str) -> str | None:
    """Why ``system``'s client may not call ``url`` (empty: the vendor's default), or None when it may."""
    if not url:
        return None
    name = VENDOR_NAMES.get(system, system)
    parsed = _origin(url)
    if parsed is not None:
        _scheme, host, origin = parsed
        if origin in _allowed_origins(system):
            return None
        # Tests point clients at sandboxes on random loopback ports; production never does.
        if getattr(settings, "CONNECTOR_ALLOW_LOOPBACK", False) and _loopback(host):
            return None
    return (
        f"“{url[:100]}” is not an address of {name}: leave it empty for {name}'s own API, or ask an "
        "operator to add the origin to CONNECTOR_BASE_URL_ALLOWLIST."
    )
