"""HubSpot (signature v3) and GoHighLevel (Ed25519) webhooks: verified, deduplicated, and a
do-not-contact change suppresses at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.db import connection
from django.utils import timezone

from connectors.models import Credential, Suppression, WebhookEndpoint, WebhookEvent
from connectors.sandbox import SandboxServer

pytestmark = pytest.mark.django_db
GHL_KEY = Ed25519PrivateKey.generate()
GHL_PUBLIC_PEM = GHL_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def in_alpha(alpha):
    connection.set_tenant(alpha)
    yield alpha
    connection.set_schema_to_public()


def _hubspot_post(client, alpha, secret, events, *, age_ms=0, tamper=False):
    body = json.dumps(events).encode()
    timestamp = str(int(time.time() * 1000) - age_ms)
    uri = "http://alpha.localhost/api/v1/webhooks/hubspot/"
    signature = base64.b64encode(
        hmac.new(secret.encode(), b"POST" + uri.encode() + body + timestamp.encode(), hashlib.sha256).digest()
    ).decode()
    response = client.post(
        "/api/v1/webhooks/hubspot/",
        data=body + (b" " if tamper else b""),
        content_type="application/json",
        HTTP_X_HUBSPOT_SIGNATURE_V3=signature,
        HTTP_X_HUBSPOT_REQUEST_TIMESTAMP=timestamp,
    )
    connection.set_tenant(alpha)
    return response


def test_hubspot_opt_out_suppresses_the_contact_read_by_id(in_alpha, client_for):
    with SandboxServer() as sandbox:
        created = httpx.post(
            f"{sandbox.url}/crm/v3/objects/contacts",
            json={"properties": {"email": "optout@crm.example"}},
            headers={"Authorization": "Bearer t"},
        ).json()
        Credential.objects.create(system="hubspot", base_url=sandbox.url, secret={"token": "t"})
        endpoint = WebhookEndpoint.objects.create(system="hubspot")
        event = {
            "eventId": 101,
            "subscriptionType": "contact.propertyChange",
            "objectId": int(created["id"]),
            "propertyName": "hs_email_optout",
            "propertyValue": "true",
            "occurredAt": 1700000000000,
        }
        client = client_for(in_alpha)

        first = _hubspot_post(client, in_alpha, endpoint.secret, [event])
        again = _hubspot_post(client, in_alpha, endpoint.secret, [event])

    assert first.json() == {"status": "ok", "stored": 1, "duplicates": 0}
    assert again.json() == {"status": "ok", "stored": 0, "duplicates": 1}
    assert Suppression.objects.get(email="optout@crm.example").source == "hubspot"


@pytest.mark.parametrize(("age_ms", "tamper"), [(0, True), (6 * 60 * 1000, False)])
def test_hubspot_bad_or_expired_signature_is_401_and_nothing_stored(in_alpha, client_for, age_ms, tamper):
    endpoint = WebhookEndpoint.objects.create(system="hubspot")

    response = _hubspot_post(
        client_for(in_alpha), in_alpha, endpoint.secret, [{"eventId": 1}], age_ms=age_ms, tamper=tamper
    )

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def _ghl_post(client, alpha, payload, *, key=GHL_KEY):
    body = json.dumps(payload).encode()
    response = client.post(
        "/api/v1/webhooks/gohighlevel/",
        data=body,
        content_type="application/json",
        HTTP_X_GHL_SIGNATURE=base64.b64encode(key.sign(body)).decode(),
    )
    connection.set_tenant(alpha)
    return response


def test_ghl_dnd_update_suppresses_once(in_alpha, client_for, settings):
    settings.GHL_WEBHOOK_PUBLIC_KEY = GHL_PUBLIC_PEM
    payload = {
        "type": "ContactDndUpdate",
        "webhookId": "wh-1",
        "timestamp": timezone.now().isoformat(),
        "email": "dnd@ghl.example",
        "dnd": True,
    }
    client = client_for(in_alpha)

    assert _ghl_post(client, in_alpha, payload).json()["status"] == "stored"
    assert _ghl_post(client, in_alpha, payload).json()["status"] == "duplicate"
    assert Suppression.objects.get(email="dnd@ghl.example").reason == "dnc"


def test_ghl_wrong_key_or_old_timestamp_is_refused(in_alpha, client_for, settings):
    settings.GHL_WEBHOOK_PUBLIC_KEY = GHL_PUBLIC_PEM
    client = client_for(in_alpha)
    fresh = {"type": "ContactUpdate", "webhookId": "wh-2", "timestamp": timezone.now().isoformat()}
    stale = {**fresh, "webhookId": "wh-3", "timestamp": (timezone.now() - timedelta(minutes=6)).isoformat()}

    forged = _ghl_post(client, in_alpha, fresh, key=Ed25519PrivateKey.generate())
    replayed = _ghl_post(client, in_alpha, stale)
    malformed = _ghl_post(client, in_alpha, {"type": "ContactUpdate"})

    assert forged.status_code == 401 and replayed.status_code == 401
    assert "replay" in replayed.json()["detail"]
    assert malformed.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_ghl_contact_update_reaches_the_lead_through_the_field_map(in_alpha, client_for, settings):
    from campaigns.models import Lead

    settings.GHL_WEBHOOK_PUBLIC_KEY = GHL_PUBLIC_PEM
    client = client_for(in_alpha)
    contact = {
        "type": "ContactUpdate",
        "timestamp": timezone.now().isoformat(),
        "locationId": "loc-1",
        "id": "ghl-c-9",
        "email": "Ana@Tailspin.example",
        "firstName": "Ana",
        "companyName": "Tailspin",
        "tags": ["tier_2"],
        "customFields": [{"id": "title", "value": "RevOps Manager"}],
    }

    created = _ghl_post(client, in_alpha, {**contact, "webhookId": "wh-c1"}).json()
    renamed = _ghl_post(client, in_alpha, {**contact, "webhookId": "wh-c2", "firstName": "Anabel"}).json()
    unknown = _ghl_post(client, in_alpha, {**contact, "webhookId": "wh-c3", "email": ""}).json()

    assert created["outcome"] == "created lead ana@tailspin.example"
    assert renamed["outcome"] == "updated lead ana@tailspin.example"
    assert unknown["status"] == "stored" and unknown["outcome"] == "skipped: no email"
    lead = Lead.objects.get()
    assert (lead.first_name, lead.company, lead.title, lead.icp_tier) == (
        "Anabel",
        "Tailspin",
        "RevOps Manager",
        "B",
    )
    assert (lead.source_system, lead.source_id) == ("gohighlevel", "ghl-c-9")
