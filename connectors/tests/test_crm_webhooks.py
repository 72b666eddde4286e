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

    assert first.json() == {"status": "ok", "stored": 1, "duplicates": 0, "rejected": 0}
    assert again.json() == {"status": "ok", "stored": 0, "duplicates": 1, "rejected": 0}
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


def _optout(event_id, object_id, value="true"):
    return {
        "eventId": event_id,
        "subscriptionType": "contact.propertyChange",
        "objectId": int(object_id),
        "propertyName": "hs_email_optout",
        "propertyValue": value,
        "occurredAt": 1700000000000,
        "attemptNumber": 0,
    }


@pytest.fixture
def hubspot(in_alpha):
    """A HubSpot sandbox holding one contact, the tenant's credentials and its webhook endpoint."""
    with SandboxServer() as sandbox:
        sandbox.contact = httpx.post(
            f"{sandbox.url}/crm/v3/objects/contacts",
            json={"properties": {"email": "Opted.Out@CRM.example"}},
            headers={"Authorization": "Bearer t"},
        ).json()
        Credential.objects.create(system="hubspot", base_url=sandbox.url, secret={"token": "t"})
        sandbox.endpoint = WebhookEndpoint.objects.create(system="hubspot")
        yield sandbox


def _fail_contact_reads(sandbox):
    httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"method": "GET", "path_prefix": "/crm/v3/objects/contacts", "status": 401, "times": None},
    ).raise_for_status()


def _heal(sandbox):
    httpx.delete(f"{sandbox.url}/_sandbox/faults").raise_for_status()


def test_hubspot_opt_out_whose_contact_cannot_be_read_is_kept_pending_and_resolved_by_a_task(
    in_alpha, hubspot, client_for, django_capture_on_commit_callbacks
):
    from connectors.services import webhook_event_resolve
    from connectors.tasks import resolve_webhook_event_task

    _fail_contact_reads(hubspot)
    with django_capture_on_commit_callbacks() as enqueued:
        answer = _hubspot_post(
            client_for(in_alpha), in_alpha, hubspot.endpoint.secret, [_optout(201, hubspot.contact["id"])]
        )

    assert answer.status_code == 200 and answer.json()["stored"] == 1
    event = WebhookEvent.objects.get()
    assert event.pending and event.outcome.startswith("pending: contact not read")
    assert not Suppression.objects.exists()
    assert len(enqueued) == 1  # the resolving task, enqueued once the event is committed
    # while HubSpot still cannot be read, the event stays pending (the task retries)
    with pytest.raises(Exception, match="401"):
        webhook_event_resolve(event_pk=event.pk)
    assert WebhookEvent.objects.get().pending

    _heal(hubspot)
    resolve_webhook_event_task.apply(args=(in_alpha.schema_name, event.pk))
    connection.set_tenant(in_alpha)

    event.refresh_from_db()
    assert not event.pending and event.email == "opted.out@crm.example"
    assert event.outcome.startswith("suppressed opted.out@crm.example")
    assert Suppression.objects.get(email="opted.out@crm.example").reason == "dnc"
    assert webhook_event_resolve(event_pk=event.pk) == "not pending"  # a second run does nothing


def test_pending_events_the_task_never_resolved_are_picked_up_by_the_sweep(in_alpha, hubspot, client_for):
    from connectors.services import webhook_events_pending_sweep

    _fail_contact_reads(hubspot)
    _hubspot_post(
        client_for(in_alpha), in_alpha, hubspot.endpoint.secret, [_optout(301, hubspot.contact["id"])]
    )
    assert webhook_events_pending_sweep() == {"resolved": 0, "still_pending": 1}

    _heal(hubspot)
    assert webhook_events_pending_sweep() == {"resolved": 1, "still_pending": 0}
    assert Suppression.objects.filter(email="opted.out@crm.example").exists()
    assert not WebhookEvent.objects.filter(pending=True).exists()


def test_hubspot_opt_out_of_a_deleted_contact_is_final_not_pending(in_alpha, hubspot, client_for):
    answer = _hubspot_post(client_for(in_alpha), in_alpha, hubspot.endpoint.secret, [_optout(401, 999999)])

    assert answer.status_code == 200
    event = WebhookEvent.objects.get()
    assert not event.pending and event.outcome == "not applied: HubSpot contact 999999 not found"


def test_hubspot_batch_with_malformed_events_applies_each_other_event_and_answers_2xx(
    in_alpha, hubspot, client_for
):
    client = client_for(in_alpha)
    batch = [
        {"eventId": 501, "subscriptionType": "contact.creation", "objectId": 7},
        {"eventId": 502, "subscriptionType": "contact.deletion", "objectId": 8},
        {"eventId": 503, "subscriptionType": "contact.creation", "objectId": 9, "email": "x" * 300},
        "not an event",
        {"subscriptionType": "contact.creation", "objectId": 10},
        _optout(504, hubspot.contact["id"]),
    ]

    first = _hubspot_post(client, in_alpha, hubspot.endpoint.secret, batch)
    again = _hubspot_post(client, in_alpha, hubspot.endpoint.secret, batch)

    assert first.status_code == 200
    assert first.json() == {"status": "ok", "stored": 3, "duplicates": 0, "rejected": 3}
    assert again.json() == {"status": "ok", "stored": 0, "duplicates": 6, "rejected": 0}
    assert Suppression.objects.get(email="opted.out@crm.example").source == "hubspot"
    rejected = WebhookEvent.objects.filter(outcome__startswith="rejected").order_by("pk")
    assert [e.outcome[:24] for e in rejected] == [
        "rejected: email: 'xxxxxx",
        "rejected: an event must ",
        "rejected: eventId must b",
    ]
    assert WebhookEvent.objects.count() == 6


def test_hubspot_body_that_is_not_an_array_is_400(in_alpha, hubspot, client_for):
    answer = _hubspot_post(client_for(in_alpha), in_alpha, hubspot.endpoint.secret, {"eventId": 1})

    assert answer.status_code == 400 and not WebhookEvent.objects.exists()


def test_hubspot_v1_signature_of_older_apps_is_verified(in_alpha, client_for):
    endpoint = WebhookEndpoint.objects.create(system="hubspot", secret="client-secret-v1")
    client = client_for(in_alpha)
    body = json.dumps([{"eventId": 601, "subscriptionType": "contact.creation", "objectId": 1}]).encode()

    def post(signature):
        response = client.post(
            "/api/v1/webhooks/hubspot/",
            data=body,
            content_type="application/json",
            HTTP_X_HUBSPOT_SIGNATURE=signature,
            HTTP_X_HUBSPOT_SIGNATURE_VERSION="v1",
        )
        connection.set_tenant(in_alpha)
        return response

    forged = post(hashlib.sha256(b"other-secret" + body).hexdigest())
    signed = post(hashlib.sha256(endpoint.secret.encode() + body).hexdigest())

    assert forged.status_code == 401 and "X-HubSpot-Signature" in forged.json()["detail"]
    assert signed.status_code == 200 and signed.json()["stored"] == 1


def test_hubspot_app_secret_is_entered_write_only_in_the_endpoint_admin(in_alpha, make_user, client_for):
    from tenants.roles import Role

    client = client_for(in_alpha, make_user(in_alpha, Role.TENANT_ADMIN))
    connection.set_tenant(in_alpha)

    added = client.post(
        "/admin/connectors/webhookendpoint/add/",
        {"system": "hubspot", "is_active": "on", "new_secret": "hs-app-secret-42"},
    )
    connection.set_tenant(in_alpha)
    endpoint = WebhookEndpoint.objects.get(system="hubspot")
    page = client.get(f"/admin/connectors/webhookendpoint/{endpoint.pk}/change/").content.decode()
    connection.set_tenant(in_alpha)
    kept = client.post(
        f"/admin/connectors/webhookendpoint/{endpoint.pk}/change/",
        {"system": "hubspot", "is_active": "on", "new_secret": ""},
    )
    connection.set_tenant(in_alpha)

    assert added.status_code == kept.status_code == 302
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == "hs-app-secret-42"
    assert "hs-app-secret-42" not in page and "X-MH1-Webhook-Secret" not in page
    assert "client secret" in page
    body = [{"eventId": 701, "subscriptionType": "contact.creation", "objectId": 1}]
    assert _hubspot_post(client_for(in_alpha), in_alpha, "hs-app-secret-42", body).status_code == 200


def test_instantly_endpoint_admin_still_shows_the_header_to_register(in_alpha, make_user, client_for):
    from tenants.roles import Role

    client = client_for(in_alpha, make_user(in_alpha, Role.TENANT_ADMIN))
    connection.set_tenant(in_alpha)
    endpoint = WebhookEndpoint.objects.create(system="instantly")

    page = client.get(f"/admin/connectors/webhookendpoint/{endpoint.pk}/change/").content.decode()
    connection.set_tenant(in_alpha)

    assert "X-MH1-Webhook-Secret" in page and endpoint.secret in page


def _ghl(webhook_id, type_, **fields):
    return {"type": type_, "webhookId": webhook_id, "timestamp": timezone.now().isoformat(), **fields}


@pytest.mark.parametrize(
    "payload",
    [
        _ghl("t-1", "ContactTagUpdate", id="c1", email="Tag@GHL.example", tags=["Customer", "DNC"]),
        _ghl("t-2", "ContactTagUpdate", id="c1", email="Tag@GHL.example", tags=["do not contact"]),
        _ghl("t-3", "ContactTagUpdate", id="c1", email="Tag@GHL.example", tags=[], dnd=True),
        _ghl(
            "t-4",
            "ContactDndUpdate",
            id="c1",
            email="Tag@GHL.example",
            dnd=False,
            dndSettings={"Email": {"status": "active"}, "SMS": {"status": "inactive"}},
        ),
    ],
    ids=["dnc-tag", "do-not-contact-tag", "dnd-on-tag-update", "email-dnd"],
)
def test_ghl_do_not_contact_in_any_webhook_suppresses(in_alpha, client_for, settings, payload):
    settings.GHL_WEBHOOK_PUBLIC_KEY = GHL_PUBLIC_PEM

    answer = _ghl_post(client_for(in_alpha), in_alpha, payload).json()

    assert answer["status"] == "stored" and "suppressed tag@ghl.example" in answer["outcome"]
    entry = Suppression.objects.get(email="tag@ghl.example")
    assert (entry.reason, entry.source) == ("dnc", "gohighlevel")
    assert WebhookEvent.objects.get().event_type == payload["type"]


def test_ghl_sms_only_dnd_or_other_tags_do_not_suppress(in_alpha, client_for, settings):
    settings.GHL_WEBHOOK_PUBLIC_KEY = GHL_PUBLIC_PEM
    client = client_for(in_alpha)
    sms_only = _ghl(
        "n-1", "ContactDndUpdate", email="a@ghl.example", dndSettings={"SMS": {"status": "active"}}
    )
    tags = _ghl("n-2", "ContactTagUpdate", email="a@ghl.example", tags=["Customer", "dnc-review"])

    assert _ghl_post(client, in_alpha, sms_only).json()["outcome"] == "stored"
    assert _ghl_post(client, in_alpha, tags).json()["outcome"] == "stored"
    assert not Suppression.objects.exists()


def test_ghl_contact_update_with_dnd_suppresses_even_when_the_lead_cannot_be_mapped(
    in_alpha, client_for, settings, monkeypatch
):
    from campaigns import mapping

    settings.GHL_WEBHOOK_PUBLIC_KEY = GHL_PUBLIC_PEM

    def unmappable(system, record):
        raise mapping.MappingError("tier 'Z' is not a tier")

    monkeypatch.setattr(mapping, "from_remote", unmappable)
    payload = _ghl("u-1", "ContactUpdate", id="c9", email="Dnd@GHL.example", dnd=True)

    answer = _ghl_post(client_for(in_alpha), in_alpha, payload).json()

    assert answer["outcome"].startswith("skipped: tier 'Z' is not a tier; suppressed")
    assert Suppression.objects.get(email="dnd@ghl.example").reason == "dnc"


def test_hubspot_opt_out_kept_pending_is_answered_at_once_when_the_broker_is_down(
    in_alpha, hubspot, client_for, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    from mh1.celery import app

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("Redis is down")

    monkeypatch.setattr(app, "connection_for_write", broker_down)
    _fail_contact_reads(hubspot)
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        answer = _hubspot_post(
            client_for(in_alpha), in_alpha, hubspot.endpoint.secret, [_optout(801, hubspot.contact["id"])]
        )

    assert answer.status_code == 200 and time.monotonic() - started < 5
    assert WebhookEvent.objects.get().pending  # the sweep resolves it once HubSpot can be read
    assert "could not enqueue pending webhook event" in caplog.text
