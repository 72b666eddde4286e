"""Loopback sandbox for the vendor APIs we call (HubSpot, GoHighLevel, Instantly, Clay).

Standard library only: usable from tests in-process (``SandboxServer(port=0).start()``) and from the
command line (``python -m connectors.sandbox --port 8025``).
"""

from connectors.sandbox.server import (
    CLAY_SUBMISSION_LIMIT,
    DEMO_CAMPAIGN_ID,
    DEMO_PIPELINE_ID,
    GHL_VERSION,
    INSTANTLY_MAX_LEADS,
    MAX_BODY_BYTES,
    SandboxError,
    SandboxServer,
    SandboxState,
)

__all__ = [
    "CLAY_SUBMISSION_LIMIT",
    "DEMO_CAMPAIGN_ID",
    "DEMO_PIPELINE_ID",
    "GHL_VERSION",
    "INSTANTLY_MAX_LEADS",
    "MAX_BODY_BYTES",
    "SandboxError",
    "SandboxServer",
    "SandboxState",
]
