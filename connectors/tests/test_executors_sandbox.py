"""Approved CRM and campaign actions executed against the loopback sandbox: one effect each, even
through rate limits and a timeout after the remote applied the write."""

from __future__ import annotations

import pytest
from django.db import connection

from approvals.models import Status
from approvals.services import action_approve, action_execute, action_propose
from approvals.tests.factories import set_phase
from connectors.http import reset_circuit_breakers
from connectors.models import CallLedger, CallStatus, Credential
from connectors.sandbox import SandboxServer
from tenants.roles import Role

pytestmark = pytest.mark.django_db
CONTACTS = "/crm/v3/objects/contacts"


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def tenant_ready(alpha, make_user, sandbox):
    sandbox.reset()
    reset_circuit_breakers()
    approver = make_user(alpha, Role.AE)
    connection.set_tenant(alpha)
    set_phase("assisted")
    for system in ("hubspot", "gohighlevel", "instantly"):
        Credential.objects.create(
            system=system,
            base_url=sandbox.url,
            secret={"token": "sandbox-token", "extra": {"location_id": "loc-1"}},
            timeout_seconds=1,
        )
    yield approver
    connection.set_schema_to_public()


def _approved(approver, kind, payload, key):
    request = action_propose(kind=kind, payload=payload, idempotency_key=key, skill_run="test")
    action_approve(request_id=request.pk, acting_user=approver)
    return request


def _upsert(approver, key, system="hubspot", email="dana@northwind.example"):
    return _approved(
        approver,
        "crm.upsert_contact",
        {"system": system, "email": email, "properties": {"firstname": "Dana", "lifecyclestage": "lead"}},
        key,
    )


def test_rate_limited_twice_then_success_is_one_contact(tenant_ready, sandbox):
    sandbox.state.add_fault(method="PATCH", path_prefix=CONTACTS, status=429, times=2, retry_after=1)
    request = _upsert(tenant_ready, "rl-1")

    assert action_execute(request.pk) == Status.EXECUTED

    assert sandbox.state.counts()["contacts"]["hubspot"] == 1
    statuses = [r["status"] for r in sandbox.state.requests_log(None, CONTACTS)]
    assert statuses[:2] == [429, 429] and statuses.count(201) == 1
    request.refresh_from_db()
    assert request.result["created"] is True


def test_timeout_after_the_remote_applied_is_reconciled_without_duplicate(tenant_ready, sandbox):
    sandbox.state.add_fault(
        mode="timeout_after_apply", method="POST", path_prefix=CONTACTS, times=1, delay=1.5
    )
    request = _upsert(tenant_ready, "slow-1")

    assert action_execute(request.pk) == Status.EXECUTED

    request.refresh_from_db()
    assert request.result["reconciled"] is True
    assert sandbox.state.counts()["contacts"]["hubspot"] == 1
    assert [r["status"] for r in sandbox.state.requests_log("POST", CONTACTS)] == [201]
    assert CallLedger.objects.get(idempotency_key="action:slow-1").status == CallStatus.SUCCEEDED


def test_repeat_with_the_same_key_makes_no_call(tenant_ready, sandbox):
    request = _upsert(tenant_ready, "once-1", system="gohighlevel")
    action_execute(request.pk)
    calls = len(sandbox.state.requests_log())

    from approvals.models import ActionRequest

    ActionRequest.objects.filter(pk=request.pk).update(status=Status.EXECUTING)
    assert action_execute(request.pk) == Status.EXECUTED

    assert len(sandbox.state.requests_log()) == calls
    request.refresh_from_db()
    assert request.result["repeat"] is True


def test_vendor_validation_error_fails_with_the_vendors_message(tenant_ready, sandbox):
    sandbox.state.add_fault(
        method="PATCH",
        path_prefix=CONTACTS,
        status=400,
        times=1,
        body={"status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR"},
    )
    request = _upsert(tenant_ready, "bad-1")

    assert action_execute(request.pk) == Status.FAILED

    request.refresh_from_db()
    assert "Property values were not valid" in request.error
    assert len(sandbox.state.requests_log("PATCH", CONTACTS)) == 1  # not retried


def test_campaign_pause_reaches_instantly(tenant_ready, sandbox):
    request = _approved(
        tenant_ready,
        "campaign.pause",
        {"system": "instantly", "campaign_id": "cmp-demo-1", "reason": "bounce spike"},
        "pause-1",
    )

    assert action_execute(request.pk) == Status.EXECUTED
    assert sandbox.state.requests_log("POST", "/api/v2/campaigns/cmp-demo-1/pause")[0]["status"] == 200


def test_suppression_is_pushed_to_instantly_and_tags_the_crm_contact_once(tenant_ready, sandbox):
    from connectors.models import Suppression
    from connectors.services import suppression_add
    from connectors.sync import push_suppression

    action_execute(_upsert(tenant_ready, "pre-1", email="optout@prospect.example").pk)
    entry, _ = suppression_add(email="optout@prospect.example", reason="unsubscribed", source="admin")

    pushed = push_suppression(entry.pk)
    calls = len(sandbox.state.requests_log())
    push_suppression(entry.pk)  # a retried task

    assert set(pushed) == {"instantly", "hubspot"}
    assert len(sandbox.state.requests_log()) == calls + 2  # only the two look-ups, no second write
    block = sandbox.state.requests_log("POST", "/api/v2/block-lists-entries")
    assert [r["json"]["bl_value"] for r in block] == ["optout@prospect.example"]
    optout = [r for r in sandbox.state.requests_log("PATCH", CONTACTS) if "hs_email_optout" in str(r["json"])]
    assert len(optout) == 1
    assert set(Suppression.objects.get(pk=entry.pk).pushed_to) == {"instantly", "hubspot"}


def test_instantly_block_list_is_pulled_and_cancels_open_sends(tenant_ready, sandbox):
    import httpx

    from approvals.tests.factories import email_payload, propose_email
    from connectors.models import Suppression
    from connectors.sync import pull_instantly_block_list

    pending = propose_email(payload=email_payload(to="blocked@vendor-side.example"))
    for value in ("blocked@vendor-side.example", "whole-domain.example"):
        httpx.post(
            f"{sandbox.url}/api/v2/block-lists-entries",
            json={"bl_value": value},
            headers={"Authorization": "Bearer sandbox-token"},
        ).raise_for_status()

    assert pull_instantly_block_list() == 2
    assert pull_instantly_block_list() == 0  # already known

    assert Suppression.objects.get(email="blocked@vendor-side.example").source == "instantly"
    assert Suppression.objects.filter(domain="whole-domain.example").exists()
    pending.refresh_from_db()
    assert pending.status == Status.CANCELLED


def test_connection_test_names_the_scope_the_token_lacks(tenant_ready, sandbox, alpha, make_user, client_for):
    from connectors.probe import connection_test

    assert set(connection_test("instantly").values()) == {"ok"}

    Credential.objects.filter(system="instantly").update(secret={"token": "tok-noscope-blocklists"})
    result = connection_test("instantly")

    assert result["campaigns:read"] == "ok"
    assert (
        result["block_list_entries:read"].startswith("failed:") and "403" in result["block_list_entries:read"]
    )
    assert Credential.objects.get(system="instantly").last_test_result == result

    # the admin action reports it, and never shows the token
    admin = make_user(alpha, Role.TENANT_ADMIN)
    connection.set_tenant(alpha)
    credential = Credential.objects.get(system="instantly")
    page = client_for(alpha, admin).post(
        "/admin/connectors/credential/",
        {"action": "test_connection", "_selected_action": [credential.pk]},
        follow=True,
    )
    connection.set_tenant(alpha)
    body = page.content.decode()
    assert "block_list_entries:read: failed" in body and "tok-noscope-blocklists" not in body
