"""The subscription job keeps our Instantly webhook alive: Instantly disables a webhook after
repeated failed deliveries, and then unsubscribes stop arriving."""

from __future__ import annotations

import logging

import pytest
from django.db import connection

from connectors.models import Credential, WebhookEndpoint
from connectors.sandbox import SandboxServer
from connectors.selectors import tenant_url
from connectors.sync import ensure_instantly_webhook

pytestmark = pytest.mark.django_db
SECRET_HEADER = "X-MH1-Webhook-Secret"


@pytest.fixture
def sandbox(alpha):
    connection.set_tenant(alpha)
    with SandboxServer() as server:
        Credential.objects.create(system="instantly", base_url=server.url, secret={"token": "t"})
        yield server
    connection.set_schema_to_public()


@pytest.fixture
def endpoint(sandbox):
    return WebhookEndpoint.objects.create(system="instantly")


def _ours(sandbox) -> list[dict]:
    target = tenant_url("/api/v1/webhooks/instantly/")
    return [h for h in sandbox.state.instantly_webhooks.values() if h["target_hook_url"] == target]


def test_missing_webhook_is_created_with_an_alert(sandbox, endpoint, caplog):
    with caplog.at_level(logging.WARNING, logger="connectors.sync"):
        result = ensure_instantly_webhook()

    [hook] = _ours(sandbox)
    assert result.startswith("subscribed") and hook["status"] == 1
    assert hook["headers"] == {SECRET_HEADER: endpoint.secret}
    assert "no webhook subscribed" in caplog.text
    assert ensure_instantly_webhook() == "already subscribed"
    assert len(_ours(sandbox)) == 1


def test_webhook_disabled_by_failed_deliveries_is_resumed_with_an_alert(sandbox, endpoint, caplog):
    ensure_instantly_webhook()
    [hook] = _ours(sandbox)
    hook["status"], hook["consecutive_failures"] = 0, 5  # as Instantly leaves it after failures

    with caplog.at_level(logging.WARNING, logger="connectors.sync"):
        result = ensure_instantly_webhook()

    assert result == f"resumed disabled webhook {hook['id']}"
    assert [h["status"] for h in _ours(sandbox)] == [1]
    assert "was disabled" in caplog.text and hook["id"] in caplog.text


def test_webhook_with_a_stale_secret_header_is_replaced(sandbox, endpoint, caplog):
    ensure_instantly_webhook()
    [old] = _ours(sandbox)
    endpoint.secret = "rotated-secret"
    endpoint.save()

    with caplog.at_level(logging.WARNING, logger="connectors.sync"):
        result = ensure_instantly_webhook()

    [new] = _ours(sandbox)
    assert result.startswith("re-subscribed") and new["id"] != old["id"]
    assert new["headers"] == {SECRET_HEADER: "rotated-secret"} and new["status"] == 1
    assert "rotated-secret" not in caplog.text


def test_our_webhook_is_found_beyond_the_first_page(sandbox, endpoint):
    from connectors import clients

    with clients.write_client("instantly") as writer:
        for n in range(12):  # the sandbox, like Instantly, pages 10 by default
            writer.register_webhook(f"https://elsewhere.example/{n}", {})
    ensure_instantly_webhook()

    assert ensure_instantly_webhook() == "already subscribed"
    assert len(_ours(sandbox)) == 1
