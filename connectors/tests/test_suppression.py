"""Suppression list, inbound webhooks, one-click unsubscribe, the email executor and its ledger."""

from __future__ import annotations

import json
import logging

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import tenant_context

from approvals.gates import ProposalRefused
from approvals.models import ActionRequest, Status
from approvals.services import action_approve, action_execute
from approvals.tests.factories import email_payload, propose_email, set_phase
from connectors.executors import unsubscribe_token
from connectors.ledger import action_key
from connectors.models import CallLedger, CallStatus, Credential, Suppression, WebhookEndpoint, WebhookEvent
from connectors.services import suppression_add
from tenants.roles import Role

pytestmark = pytest.mark.django_db
HOOK = "/api/v1/webhooks/instantly/"


@pytest.fixture
def ae(alpha, make_user):
    user = make_user(alpha, Role.AE)
    connection.set_tenant(alpha)
    set_phase("assisted")
    yield user
    connection.set_schema_to_public()


@pytest.fixture
def hook(ae, alpha, client_for):
    endpoint = WebhookEndpoint.objects.create(system="instantly")
    client = client_for(alpha)

    def post(body, secret=None, raw=None):
        data = raw if raw is not None else json.dumps(body)
        response = client.post(
            HOOK,
            data=data,
            content_type="application/json",
            HTTP_X_MH1_WEBHOOK_SECRET=endpoint.secret if secret is None else secret,
        )
        connection.set_tenant(alpha)
        return response

    return post


def _approved_email(ae, to="lead@prospect.example", key=None):
    request = propose_email(payload=email_payload(to=to), key=key)
    action_approve(request_id=request.pk, acting_user=ae)
    return request


def test_approved_email_is_sent_once_with_one_click_unsubscribe_headers(ae):
    request = _approved_email(ae)

    assert action_execute(request.pk) == Status.EXECUTED
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["Lee Lead <lead@prospect.example>"]
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        sent.extra_headers["List-Unsubscribe"].startswith("<http")
        and "/u/" in sent.extra_headers["List-Unsubscribe"]
    )
    assert (
        CallLedger.objects.get(idempotency_key=action_key(request.idempotency_key)).status
        == CallStatus.SUCCEEDED
    )

    # a redelivered task after the send: the ledger answers, nothing is sent again
    ActionRequest.objects.filter(pk=request.pk).update(status=Status.EXECUTING)
    assert action_execute(request.pk) == Status.EXECUTED
    assert len(mail.outbox) == 1


def test_send_whose_outcome_is_unknown_is_not_repeated(ae):
    request = _approved_email(ae)
    CallLedger.objects.create(
        idempotency_key=action_key(request.idempotency_key), system="smtp", operation="send", request={}
    )  # a worker started this send and died

    assert action_execute(request.pk) == Status.UNKNOWN  # shown as unknown, not failed

    request.refresh_from_db()
    assert "outcome is unknown" in request.error and mail.outbox == []
    assert (
        CallLedger.objects.get(idempotency_key=action_key(request.idempotency_key)).status
        == CallStatus.UNKNOWN
    )


def test_unsubscribe_webhook_suppresses_and_cancels_open_sends(ae, hook):
    pending = propose_email(payload=email_payload(to="gone@prospect.example"))
    approved = _approved_email(ae, to="gone@prospect.example")
    other = propose_email(payload=email_payload(to="stay@prospect.example"))

    response = hook(
        {"event_type": "lead_unsubscribed", "lead_email": "Gone@Prospect.example", "email_id": "e-1"}
    )

    assert response.status_code == 200 and response.json()["status"] == "stored"
    assert Suppression.objects.get(email="gone@prospect.example").reason == "unsubscribed"
    for request in (pending, approved):
        request.refresh_from_db()
        assert request.status == Status.CANCELLED
        assert request.cancel_reason == "Recipient suppressed (unsubscribed, from instantly)."
    other.refresh_from_db()
    assert other.status == Status.PENDING


def test_second_email_to_a_suppressed_address_is_cancelled_at_execution(ae):
    request = _approved_email(ae, to="late@prospect.example")
    # suppressed after approval, by a path that did not cancel it (e.g. a CRM DNC sync)
    Suppression.objects.create(email="late@prospect.example", reason="dnc", source="hubspot")

    assert action_execute(request.pk) == Status.CANCELLED
    request.refresh_from_db()
    assert (
        request.cancel_reason
        == "Recipient suppressed: late@prospect.example (do-not-contact tag, from hubspot, today)."
    )
    assert mail.outbox == []


def test_domain_suppression_covers_every_address(ae):
    request = _approved_email(ae, to="anyone@competitor.example")
    suppression_add(domain="@Competitor.example", reason="manual", source="admin")

    request.refresh_from_db()
    assert request.status == Status.CANCELLED
    with pytest.raises(ProposalRefused, match=r"the domain competitor\.example"):
        _approved_email(ae, to="Someone <Other@COMPETITOR.example>", key="second")


def test_duplicate_webhook_three_times_is_one_event(hook):
    body = {"event_type": "email_bounced", "lead_email": "b@x.example", "email_id": "bounce-7"}

    answers = [hook(body).json()["status"] for _ in range(3)]

    assert answers == ["stored", "duplicate", "duplicate"]
    assert WebhookEvent.objects.filter(event_type="email_bounced").count() == 1
    assert Suppression.objects.get(email="b@x.example").reason == "bounced"


@pytest.mark.parametrize(
    ("secret", "raw", "status", "message"),
    [
        ("wrong", None, 401, "Missing or wrong X-MH1-Webhook-Secret header."),
        ("", None, 401, "Missing or wrong X-MH1-Webhook-Secret header."),
        (None, "{not json", 400, "Body is not valid JSON."),
        (None, "[1, 2]", 400, "Body must be a JSON object."),
        (None, json.dumps({"event_type": "email_sent", "pad": "x" * 300_000}), 413, "Body larger than"),
    ],
)
def test_bad_webhooks_are_refused_and_nothing_is_stored(hook, secret, raw, status, message):
    response = hook(
        None, secret=secret, raw=raw if raw is not None else json.dumps({"event_type": "email_sent"})
    )

    assert response.status_code == status
    assert message in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_known_event_for_unknown_contact_is_stored_and_acknowledged(hook):
    response = hook(
        {"event_type": "reply_received", "lead_email": "nobody@nowhere.example", "email_id": "r-1"}
    )

    assert response.status_code == 200
    assert WebhookEvent.objects.get(event_type="reply_received").outcome == "stored: the reply has no text"


def test_one_click_unsubscribe(ae, alpha, bravo, client_for):
    pending = propose_email(payload=email_payload(to="click@prospect.example"))
    token = unsubscribe_token("click@prospect.example")
    client = client_for(alpha)

    page = client.get(f"/u/{token}/")
    response = client.post(f"/u/{token}/", {"List-Unsubscribe": "One-Click"})
    connection.set_tenant(alpha)

    assert page.status_code == 200 and "Unsubscribe click@prospect.example?" in page.content.decode()
    assert response.status_code == 200 and "You are unsubscribed" in response.content.decode()
    assert Suppression.objects.filter(email="click@prospect.example", source="mh1").exists()
    pending.refresh_from_db()
    assert pending.status == Status.CANCELLED
    assert client_for(alpha).post(f"/u/{token}x/", {}).status_code == 400
    assert client_for(bravo).post(f"/u/{token}/", {}).status_code == 400  # another tenant's link
    connection.set_tenant(alpha)


def test_credentials_are_encrypted_at_rest_and_never_shown_back(ae, alpha, make_user, client_for, caplog):
    caplog.set_level(logging.DEBUG)
    Credential.objects.create(system="hubspot", secret={"token": "pat-na1-SECRET-123"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM connectors_credential")
        stored = cursor.fetchone()[0]
    assert "SECRET-123" not in stored
    assert Credential.objects.get(system="hubspot").secret == {"token": "pat-na1-SECRET-123"}

    admin_user = make_user(alpha, Role.TENANT_ADMIN)
    connection.set_tenant(alpha)
    credential = Credential.objects.get(system="hubspot")
    page = client_for(alpha, admin_user).get(f"/admin/connectors/credential/{credential.pk}/change/")
    connection.set_tenant(alpha)
    assert page.status_code == 200
    assert "SECRET-123" not in page.content.decode()
    assert "SECRET-123" not in caplog.text


def test_suppression_is_per_tenant(ae, bravo):
    suppression_add(email="shared@prospect.example", reason="manual", source="admin")
    with tenant_context(bravo):
        assert not Suppression.objects.filter(email="shared@prospect.example").exists()


def test_rotating_keys_keeps_old_secrets_readable(ae, settings):
    from connectors import crypto

    old_key_only = [settings.FIELD_ENCRYPTION_KEYS[1]]
    settings.FIELD_ENCRYPTION_KEYS = old_key_only
    Credential.objects.create(system="instantly", secret={"token": "old-token"})

    settings.FIELD_ENCRYPTION_KEYS = ["Lq1Uu0jyzD2pTpUZ6GQ3gY2o0k8H3qWmXz2b6r8Jc5M=", *old_key_only]
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM connectors_credential WHERE system = 'instantly'")
        old_ciphertext = cursor.fetchone()[0]
    assert Credential.objects.get(system="instantly").secret == {"token": "old-token"}
    rotated = crypto.rotate(old_ciphertext)
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]
    assert crypto.decrypt(rotated) == {"token": "old-token"}


def test_an_event_recorded_by_any_path_stores_nul_and_lone_surrogates_replaced(alpha):
    """One helper (mh1.parsers.json_storable) makes every stored event storable, not only the
    bodies the webhook parser read: a NUL or a lone surrogate never makes the insert fail."""
    from connectors.services import webhook_event_record

    with tenant_context(alpha):
        event, created = webhook_event_record(
            system="instantly",
            event_id="e-nul",
            event_type="reply",
            email="",
            payload={"text": "a\x00b", "k\ud800": ["\udfff"]},
        )
        event.refresh_from_db()
    connection.set_schema_to_public()
    assert created and event.payload == {"text": "a\ufffdb", "k\ufffd": ["\ufffd"]}
