"""Inbound webhook signatures, as each vendor documents them (see shared/VENDORS.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

# Requests older than this are refused as replays (both vendors document five minutes).
MAX_AGE_SECONDS = 300


def hubspot_v3_valid(
    *,
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now: float | None = None,
) -> bool:
    """X-HubSpot-Signature-v3: base64 HMAC-SHA256 of method + URI + body + timestamp (ms)."""
    try:
        sent_ms = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now or time.time()) * 1000 - sent_ms) > MAX_AGE_SECONDS * 1000:
        return False
    message = method.encode() + uri.encode() + body + timestamp.encode()
    expected = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature or "")


def hubspot_v1_valid(*, secret: str, body: bytes, signature: str) -> bool:
    """X-HubSpot-Signature (version v1, older apps): hex SHA-256 of the client secret + raw body.

    v1 carries no timestamp, so there is no replay window: the event id dedup is what stops a
    replayed event from acting twice.
    """
    expected = hashlib.sha256(secret.encode() + body).hexdigest()
    return bool(signature) and hmac.compare_digest(expected, signature.strip().lower())


def ghl_ed25519_valid(*, public_key_pem: str, body: bytes, signature: str) -> bool:
    """x-ghl-signature: base64 Ed25519 signature of the raw body with GoHighLevel's published key."""
    try:
        key = load_pem_public_key(public_key_pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            return False
        key.verify(base64.b64decode(signature or ""), body)
    except (InvalidSignature, ValueError):
        return False
    return True
