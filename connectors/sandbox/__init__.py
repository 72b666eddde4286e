"""Loopback sandbox for the vendor APIs we call (HubSpot, GoHighLevel, Instantly, Clay) and for SMTP.

Standard library only: usable from tests in-process (``SandboxServer(port=0).start()``,
``SandboxSMTP(port=0, state=server.state).start()``) and from the command line
(``python -m connectors.sandbox --port 8025 --smtp-port 2525``).

Where each piece lives:

* :mod:`.server` the HTTP server and request handler; :mod:`.routing` vendor by path, routes,
  authentication, scopes, rate-limit headers; :mod:`.control` the ``/_sandbox/`` control API;
* :mod:`.hubspot`, :mod:`.gohighlevel`, :mod:`.instantly` (with its webhook emission),
  :mod:`.clay` (with its HTTP API column): one module per vendor, its routes and records;
* :mod:`.state` everything remembered, under one lock; :mod:`.faults` HTTP and SMTP fault specs;
  :mod:`.common` the request, response, error and vendor error shapes every module shares;
* :mod:`.smtp` the SMTP listener, which reports mail back as Instantly events.
"""

from connectors.sandbox.clay import CLAY_SUBMISSION_LIMIT
from connectors.sandbox.common import SandboxError
from connectors.sandbox.faults import SMTP_FAULT_KINDS
from connectors.sandbox.gohighlevel import DEMO_PIPELINE_ID, GHL_VERSION
from connectors.sandbox.instantly import DEMO_CAMPAIGN_ID, INSTANTLY_MAX_LEADS
from connectors.sandbox.server import MAX_BODY_BYTES, SandboxServer
from connectors.sandbox.smtp import SandboxSMTP
from connectors.sandbox.state import SandboxState

__all__ = [
    "CLAY_SUBMISSION_LIMIT",
    "DEMO_CAMPAIGN_ID",
    "DEMO_PIPELINE_ID",
    "GHL_VERSION",
    "INSTANTLY_MAX_LEADS",
    "MAX_BODY_BYTES",
    "SMTP_FAULT_KINDS",
    "SandboxError",
    "SandboxSMTP",
    "SandboxServer",
    "SandboxState",
]
