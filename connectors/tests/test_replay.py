"""Replay: every documented Instantly, HubSpot and GoHighLevel webhook type (shared/VENDORS.md),
signed as the vendor signs, is stored once; a repeat gets the same answer and has no second
effect; each do-not-contact form suppresses the address.

Instantly goes through both the lean accept path and Django's view (connectors/tests/test_ingest.py
keeps them equal); HubSpot is signed v3 and v1; GoHighLevel with an Ed25519 test key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from approvals.models import Status
from approvals.tests.factories import email_payload, propose_email, set_phase
from connectors.api import INSTANTLY_EVENTS
from connectors.models import Credential, Suppression, WebhookEndpoint, WebhookEvent
from connectors.sandbox import SandboxServer
from connectors.tests.test_crm_webhooks import GHL_KEY, GHL_PUBLIC_PEM
from connectors.tests.test_ingest import (  # noqa: F401 - fixtures: the accept path and Django's
    _wsgi_in_test_transaction,
    app,
    call,
    django_app,
    endpoint_secret,
    events_in,
    fast_app,
)
from skills.models import SkillRun

pytestmark = pytest.mark.django_db

# --------------------------------------------------------------------------------------- Instantly

# What each suppressing event does; every other type is stored and does nothing.
INSTANTLY_SUPPRESSING = {"lead_unsubscribed": "unsubscribed", "email_bounced": "bounced"}
# Documented types, the labels Instantly sends as events, a workspace's own label, a type added later.
INSTANTLY_TYPES = sorted(INSTANTLY_EVENTS | {"Hot lead (custom label)", "lead_some_future_event"})


def _instantly(event_type: str) -> dict:
    return {
        "timestamp": "2026-01-05T10:00:00.000Z",
        "event_type": event_type,
        "workspace": "ws-1",
        "campaign_id": "camp-1",
        "campaign_name": "Q1 outbound",
        "lead_email": "Replay.Person@Prospect.example",
        "email_account": "sender@mh1.example",
        "email_id": f"em-{event_type}",
    }


@pytest.mark.parametrize("event_type", INSTANTLY_TYPES)
def test_instantly_every_type_is_stored_once_and_repeats_change_nothing(app, alpha, event_type):  # noqa: F811
    secret = endpoint_secret(alpha)
    with tenant_context(alpha):
        set_phase("assisted")
        open_send = propose_email(payload=email_payload(to="replay.person@prospect.example"))
    connection.set_schema_to_public()

    answers = [call(app, alpha, body=_instantly(event_type), secret=secret) for _ in range(3)]

    assert [a.status for a in answers] == [200, 200, 200]
    first = answers[0].data
    assert first["status"] == "stored"
    assert [a.data for a in answers[1:]] == [{"status": "duplicate", "id": first["id"]}] * 2
    [event] = events_in(alpha)
    assert (event.event_type, event.email) == (event_type, "replay.person@prospect.example")
    with tenant_context(alpha):
        open_send.refresh_from_db()
        if event_type in INSTANTLY_SUPPRESSING:
            [entry] = Suppression.objects.all()
            assert (entry.email, entry.reason) == (
                "replay.person@prospect.example",
                INSTANTLY_SUPPRESSING[event_type],
            )
            assert first["outcome"].endswith("cancelled 1 open send(s)")
            assert open_send.status == Status.CANCELLED
        elif event_type == "auto_reply_received":  # an auto-reply: out of office, one run for it
            assert first["outcome"] == "reply: out_of_office; reply-handler started"
            assert not Suppression.objects.exists() and open_send.status == Status.PENDING
            assert SkillRun.objects.get().inputs == {"event_id": event.pk}
        elif event_type == "reply_received":  # a reply without text: kept, nothing to classify
            assert first["outcome"] == "stored: the reply has no text"
            assert not Suppression.objects.exists() and not SkillRun.objects.exists()
        else:
            assert first["outcome"] == "stored"
            assert not Suppression.objects.exists() and open_send.status == Status.PENDING


# ---------------------------------------------------------------------------------------- HubSpot

HUBSPOT_URI = "http://alpha.localhost/api/v1/webhooks/hubspot/"
# The CRM subscription types of HubSpot's webhooks API (a batch may mix them).
HUBSPOT_TYPES = [
    "contact.creation",
    "contact.deletion",
    "contact.propertyChange",
    "contact.privacyDeletion",
    "contact.merge",
    "contact.associationChange",
    "contact.restore",
    "company.creation",
    "company.deletion",
    "company.propertyChange",
    "deal.creation",
    "deal.deletion",
    "deal.propertyChange",
    "ticket.creation",
    "ticket.propertyChange",
]


def _hubspot_signed(secret: str, body: bytes, version: str) -> dict:
    if version == "v1":
        signature = hashlib.sha256(secret.encode() + body).hexdigest()
        return {"HTTP_X_HUBSPOT_SIGNATURE": signature, "HTTP_X_HUBSPOT_SIGNATURE_VERSION": "v1"}
    timestamp = str(int(time.time() * 1000))
    message = b"POST" + HUBSPOT_URI.encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {"HTTP_X_HUBSPOT_SIGNATURE_V3": signature, "HTTP_X_HUBSPOT_REQUEST_TIMESTAMP": timestamp}


def _hubspot_batch(contact_id: int) -> list[dict]:
    batch = []
    for n, subscription in enumerate(HUBSPOT_TYPES, start=1):
        event = {
            "eventId": 9000 + n,
            "subscriptionId": 77,
            "portalId": 62515,
            "appId": 1160452,
            "occurredAt": 1700000000000 + n,
            "subscriptionType": subscription,
            "attemptNumber": 0,
            "objectId": contact_id if subscription.startswith("contact.") else 500 + n,
            "changeSource": "CRM_UI",
        }
        if subscription.endswith("propertyChange"):
            event.update(propertyName="firstname", propertyValue="Ana")
        batch.append(event)
    opt_out = {**batch[0], "eventId": 9999, "subscriptionType": "contact.propertyChange"}
    opt_out.update(propertyName="hs_email_optout", propertyValue="true", objectId=contact_id)
    opted_back_in = {**opt_out, "eventId": 9998, "propertyValue": "false"}
    return [*batch, opt_out, opted_back_in]


@pytest.mark.parametrize("version", ["v3", "v1"])
def test_hubspot_every_type_is_stored_once_and_an_opt_out_suppresses(alpha, client_for, version):
    connection.set_tenant(alpha)
    with SandboxServer() as sandbox:
        contact = httpx.post(
            f"{sandbox.url}/crm/v3/objects/contacts",
            json={"properties": {"email": "Opted.Out@CRM.example"}},
            headers={"Authorization": "Bearer t"},
        ).json()
        Credential.objects.create(system="hubspot", base_url=sandbox.url, secret={"token": "t"})
        endpoint = WebhookEndpoint.objects.create(system="hubspot", secret="hubspot-app-secret")
        batch = _hubspot_batch(int(contact["id"]))
        body = json.dumps(batch).encode()
        client = client_for(alpha)

        answers = []
        for _ in range(2):
            headers = _hubspot_signed(endpoint.secret, body, version)
            answers.append(
                client.post(
                    "/api/v1/webhooks/hubspot/", data=body, content_type="application/json", **headers
                )
            )
            connection.set_tenant(alpha)

    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == {"status": "ok", "stored": len(batch), "duplicates": 0, "rejected": 0}
    assert answers[1].json() == {"status": "ok", "stored": 0, "duplicates": len(batch), "rejected": 0}
    stored = WebhookEvent.objects.filter(system="hubspot")
    assert set(stored.values_list("event_type", flat=True)) == set(HUBSPOT_TYPES)
    assert stored.count() == len(batch)
    [entry] = Suppression.objects.all()
    assert (entry.email, entry.reason, entry.source) == ("opted.out@crm.example", "dnc", "hubspot")
    assert stored.get(event_id="9999").outcome.startswith("suppressed opted.out@crm.example")
    assert stored.get(event_id="9998").outcome == "stored"
    connection.set_schema_to_public()


# ------------------------------------------------------------------------------------ GoHighLevel


def _ghl(type_: str, **fields) -> dict:
    return {
        "type": type_,
        "locationId": "loc-1",
        "webhookId": f"wh-{type_}-{sorted(fields)}",
        "timestamp": timezone.now().isoformat(),
        **fields,
    }


CONTACT = {"id": "ghl-c-1", "email": "Pat <Pat@GHL.example>", "firstName": "Pat", "tags": []}
# (payload, suppressed): every documented type, and each do-not-contact form.
GHL_EVENTS = {
    "ContactCreate": (_ghl("ContactCreate", **CONTACT), False),
    "ContactUpdate": (_ghl("ContactUpdate", **CONTACT), False),
    "ContactDelete": (_ghl("ContactDelete", **CONTACT), False),
    "ContactDndUpdate": (_ghl("ContactDndUpdate", **CONTACT, dnd=False), False),
    "ContactTagUpdate": (_ghl("ContactTagUpdate", **{**CONTACT, "tags": ["Customer"]}), False),
    "InboundMessage": (
        _ghl("InboundMessage", contactId="ghl-c-1", messageType="Email", direction="inbound", body="Hi"),
        False,
    ),
    "OutboundMessage": (
        _ghl("OutboundMessage", contactId="ghl-c-1", messageType="SMS", direction="outbound", body="Hi"),
        False,
    ),
    "OpportunityStageUpdate": (
        _ghl("OpportunityStageUpdate", id="opp-1", contactId="ghl-c-1", pipelineStageId="stage-2"),
        False,
    ),
    "LCEmailStats": (
        _ghl("LCEmailStats", email_id="e-1", event="delivered", recipient="pat@ghl.example"),
        False,
    ),
    "ContactDndUpdate email DND": (
        _ghl("ContactDndUpdate", **CONTACT, dndSettings={"Email": {"status": "active", "message": "x"}}),
        True,
    ),
    "ContactTagUpdate DNC tag": (_ghl("ContactTagUpdate", **{**CONTACT, "tags": ["VIP", "DNC"]}), True),
    "ContactUpdate dnd true": (_ghl("ContactUpdate", **CONTACT, dnd=True), True),
}


@pytest.mark.parametrize("name", list(GHL_EVENTS))
def test_ghl_every_type_is_stored_once_and_each_do_not_contact_form_suppresses(
    alpha, client_for, settings, name
):
    settings.GHL_WEBHOOK_PUBLIC_KEY = GHL_PUBLIC_PEM
    payload, suppresses = GHL_EVENTS[name]
    payload = {**payload, "timestamp": timezone.now().isoformat()}
    body = json.dumps(payload).encode()
    client = client_for(alpha)

    answers = []
    for _ in range(3):
        signature = base64.b64encode(GHL_KEY.sign(body)).decode()
        answers.append(
            client.post(
                "/api/v1/webhooks/gohighlevel/",
                data=body,
                content_type="application/json",
                HTTP_X_GHL_SIGNATURE=signature,
            )
        )

    assert [a.status_code for a in answers] == [200, 200, 200]
    first = answers[0].json()
    assert first["status"] == "stored"
    assert [a.json() for a in answers[1:]] == [{"status": "duplicate", "id": first["id"]}] * 2
    with tenant_context(alpha):
        [event] = WebhookEvent.objects.all()
        assert event.event_type == payload["type"]
        if suppresses:
            [entry] = Suppression.objects.all()
            assert (entry.email, entry.reason, entry.source) == ("pat@ghl.example", "dnc", "gohighlevel")
            assert "suppressed pat@ghl.example" in first["outcome"]
        else:
            assert not Suppression.objects.exists()
